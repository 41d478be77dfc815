"""Streaming tar and gzip writing: deterministic members, hashing sinks, one layer blob at a time.

Why streamed: the 2 GB variant must not be built in memory. A layer is written by `tarfile` in
stream mode through a sha256 (the diff_id) into a gzip compressor (isal's igzip when installed,
several times faster than zlib) through a second sha256 (the blob digest) into a file. Members
are sorted, their mtimes fixed, and gzip headers carry no time or name, so the same plan gives
the same bytes. bench/real.py reuses HashingWriter for its own images.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from .model import Build, LayerPlan, LayerResult, Streamed
from .params import MTIME, KiB, MiB

_igzip: ModuleType | None
try:
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - the venv has it; plain gzip is the documented fallback
    _igzip = None

HAVE_ISAL = _igzip is not None
COMPRESSOR = "isal.igzip level 2" if HAVE_ISAL else "zlib level 6"  # as recorded in planted.json


def tarinfo(name: str, size: int = 0, mode: int = 0o644, type_: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.type = size, mode, type_
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = MTIME, 0, 0, "root", "root"
    return ti


class ChunkReader:
    """A read(n)-able view of an iterator of byte chunks (what tarfile.addfile copies from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks: Iterator[bytes] = (c for c in chunks if c)
        self._cur, self._pos = b"", 0

    def read(self, n: int) -> bytes:
        out = []
        while n > 0:
            if self._pos >= len(self._cur):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._cur, self._pos = nxt, 0
            take = self._cur[self._pos : self._pos + n]
            self._pos += len(take)
            n -= len(take)
            out.append(take)
        return b"".join(out)


class HashingWriter:
    """Counts and sha256-hashes what passes through to `sink`."""

    def __init__(self, sink: Any) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def gzip_writer(sink: HashingWriter) -> BinaryIO:
    """gzip without mtime or file name: igzip (ISA-L) when installed, else zlib level 6."""
    if _igzip is not None:
        return _igzip.IGzipFile(filename="", mode="wb", fileobj=sink, compresslevel=2, mtime=0)  # type: ignore[no-any-return]
    return gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=6, mtime=0)  # type: ignore[arg-type,return-value]


def parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def write_layer(plan: LayerPlan, blob_path: Path, build: Build) -> LayerResult:
    """Stream one layer: tar (sorted members, parent dirs first) -> sha256 -> gzip -> sha256 -> file."""
    t0 = time.perf_counter()
    files = sorted(plan.files, key=lambda f: f.path)
    if len({f.path for f in files}) != len(files):
        raise AssertionError(f"duplicate paths in layer {plan.created_by!r}")
    with open(blob_path, "wb") as raw:
        blob = HashingWriter(raw)
        gz = gzip_writer(blob)
        tar_stream = HashingWriter(gz)
        with tarfile.open(
            fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT, bufsize=64 * KiB, copybufsize=MiB
        ) as tf:  # type: ignore[call-overload]
            dirs: set[str] = set()
            for spec in files:
                for d in parents(spec.path):
                    if d not in dirs:
                        dirs.add(d)
                        tf.addfile(tarinfo(d + "/", mode=0o755, type_=tarfile.DIRTYPE))
                if spec.whiteout:
                    head, _, base = spec.path.rpartition("/")
                    tf.addfile(tarinfo(f"{head}/.wh.{base}" if head else f".wh.{base}"))
                    continue
                content = spec.produce()
                if isinstance(content, Streamed):
                    tf.addfile(tarinfo(spec.path, content.size, spec.mode), ChunkReader(content.chunks))
                    size = content.size
                else:
                    tf.addfile(tarinfo(spec.path, len(content), spec.mode), io.BytesIO(content))
                    size = len(content)
                build.by_kind[spec.kind] = build.by_kind.get(spec.kind, 0) + size
        gz.close()
    build.written += tar_stream.size
    return LayerResult(
        created_by=plan.created_by,
        blob=blob_path,
        diff_id=tar_stream.digest(),
        digest=blob.digest(),
        size=blob.size,
        uncompressed_size=tar_stream.size,
        files=len(files),
        seconds=time.perf_counter() - t0,
    )
