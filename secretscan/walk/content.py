"""Scan one file's content: in overlapping windows (so no file is too big to scan), and opening
nested archives (zip/jar/war/whl/apk/nupkg, tar, gzip/bzip2/xz/zstd) in memory, recursively,
within depth, entry-count and size limits. What a limit stops is reported, never dropped silently.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from secretscan.config import Limits
from secretscan.detect.engine import Engine
from secretscan.detect.match import Match
from secretscan.image.compression import INFLATE_ERROR, open_uncompressed, prefixed, read_some, sniff
from secretscan.models import Skipped
from secretscan.walk.tarstream import iter_tar

GUARD = 4096
"""A match ending this close to a window's end is left to the next window, which sees it whole."""
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst", ".zstd")
DECODE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    INFLATE_ERROR,
    EOFError,
    OSError,
    zstandard.ZstdError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)

OnMatch = Callable[[Match, str, int | None], None]
"""(match, path including ``!/`` nesting, 1-based line) -> None."""


class LimitExceeded(Exception):
    pass


class _Bounded(io.RawIOBase):
    """Stops a nested stream after ``limit`` bytes: the defence against decompression bombs."""

    def __init__(self, inner: BinaryIO, limit: int, what: str) -> None:
        self._inner, self._left, self._what = inner, limit, what
        self.limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            probe = self._inner.read(1)
            if probe:
                raise LimitExceeded(f"{self._what}: more than {self.limit} bytes uncompressed")
            return 0
        data = read_some(self._inner, min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


@dataclass
class ContentStats:
    files: int = 0
    bytes: int = 0


class ContentScanner:
    def __init__(self, engine: Engine, limits: Limits, on_match: OnMatch, on_skip: Callable[[Skipped], None]) -> None:
        self.engine, self.limits = engine, limits
        self.on_match, self.on_skip = on_match, on_skip
        self.stats = ContentStats()

    def scan(self, path: str, stream: BinaryIO, depth: int = 0) -> None:
        """Scan a file's bytes; skip notes name the path (the caller adds image and layer)."""
        self.stats.files += 1
        head = _read_exact(stream, 512)
        kind = _nested_kind(head)
        if kind is None:
            self._scan_windows(path, head, stream)
            return
        if depth >= self.limits.max_nested_depth:
            self.on_skip(
                Skipped(
                    path,
                    f"nested archive deeper than {self.limits.max_nested_depth} levels: scanned as plain bytes, not opened",
                )
            )
            self._scan_windows(path, head, stream)
            return
        try:
            if kind == "zip":
                self._scan_zip(path, head, stream, depth)
            elif kind == "tar":
                self._scan_tar(path, prefixed(head, stream), depth)
            else:
                self._scan_compressed(path, prefixed(head, stream), depth)
        except LimitExceeded as exc:
            self.on_skip(Skipped(path, f"{exc}; the rest of this archive was not scanned"))
        except DECODE_ERRORS as exc:
            self.on_skip(
                Skipped(
                    path,
                    f"nested archive unreadable ({type(exc).__name__}: {str(exc)[:120]}); scanned up to the damage",
                )
            )

    def _scan_windows(self, path: str, head: bytes, stream: BinaryIO) -> None:
        """Scan in windows of ``chunk_bytes`` overlapping by ``overlap_bytes``; every match shorter
        than the overlap is reported exactly once, with its true line number."""
        chunk, overlap = self.limits.chunk_bytes, self.limits.overlap_bytes
        data = head + _read_exact(stream, chunk - len(head))
        line_base, seen_until, first = 1, 0, True
        while True:
            ahead = _read_exact(stream, chunk - overlap) if len(data) >= chunk else b""
            last = not ahead
            self.stats.bytes += len(data) - (0 if first else overlap)
            for m in self.engine.scan_bytes(data, path, parse=first and last):
                if m.end <= seen_until or (not last and m.end > len(data) - GUARD):
                    continue
                line = line_base + data.count(b"\n", 0, m.start)
                self.on_match(m, path, m.line if m.line and first and last else line)
            if last:
                return
            tail = data[-overlap:]
            line_base += data.count(b"\n", 0, len(data) - overlap)
            seen_until = overlap - GUARD
            data, first = tail + ahead, False

    def _scan_zip(self, path: str, head: bytes, stream: BinaryIO, depth: int) -> None:
        limit = self.limits.max_nested_bytes
        data = head + _read_exact(stream, limit + 1 - len(head))
        if len(data) > limit:
            self.on_skip(
                Skipped(
                    path,
                    f"zip archive larger than max_nested_bytes ({limit}): scanned as plain bytes, entries not opened",
                )
            )
            self._scan_windows(path, data, stream)
            return
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:  # a zip header but no readable zip (truncated, damaged)
            reason = f"zip archive unreadable ({str(exc)[:120]}): scanned as plain bytes, entries not opened"
            self.on_skip(Skipped(path, reason))
            self._scan_windows(path, data, io.BytesIO())
            return
        infos = archive.infolist()
        if len(infos) > self.limits.max_nested_entries:
            self.on_skip(
                Skipped(
                    path,
                    f"{len(infos)} entries, over max_nested_entries ({self.limits.max_nested_entries}): the rest not scanned",
                )
            )
        for info in infos[: self.limits.max_nested_entries]:
            if info.is_dir():
                continue
            inner = f"{path}!/{info.filename.lstrip('/')}"
            try:
                with archive.open(info) as member:
                    cap = self.limits.max_nested_uncompressed_bytes
                    bounded = io.BufferedReader(_Bounded(member, cap, inner))  # type: ignore[arg-type]
                    self.scan(inner, bounded, depth + 1)  # type: ignore[arg-type]
            except DECODE_ERRORS as exc:  # one damaged (or encrypted) member: the others are still read
                reason = f"zip member unreadable ({type(exc).__name__}: {str(exc)[:120]}); other members scanned"
                self.on_skip(Skipped(inner, reason))

    def _scan_tar(self, path: str, stream: BinaryIO, depth: int) -> None:
        bounded = io.BufferedReader(_Bounded(stream, self.limits.max_nested_uncompressed_bytes, path))  # type: ignore[arg-type]
        for count, entry in enumerate(iter_tar(bounded)):  # type: ignore[arg-type]
            if count >= self.limits.max_nested_entries:
                self.on_skip(
                    Skipped(
                        path,
                        f"over max_nested_entries ({self.limits.max_nested_entries}): the rest not scanned",
                    )
                )
                return
            if entry.kind == "file" and entry.open is not None:
                self.scan(f"{path}!{entry.path}", entry.open(), depth + 1)

    def _scan_compressed(self, path: str, stream: BinaryIO, depth: int) -> None:
        inner_stream, _ = open_uncompressed(stream)
        bounded = io.BufferedReader(_Bounded(inner_stream, self.limits.max_nested_uncompressed_bytes, path))  # type: ignore[arg-type]
        inner_head = _read_exact(bounded, 512)  # type: ignore[arg-type]
        if _is_tar(inner_head):
            self._scan_tar(path, prefixed(inner_head, bounded), depth)  # type: ignore[arg-type]
            return
        base = posixpath.basename(path)
        for suffix in _COMPRESSED_SUFFIXES:
            if base.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        self.scan(f"{path}!/{base}", prefixed(inner_head, bounded), depth + 1)  # type: ignore[arg-type]


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left > 0:
        data = stream.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _nested_kind(head: bytes) -> str | None:
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if _is_tar(head):
        return "tar"
    kind = sniff(head)
    return kind if kind != "none" else None
