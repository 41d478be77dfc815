"""``docker save`` archives: the classic layout (``manifest.json`` + ``<id>/layer.tar``) and the
Docker 25+ one (an OCI layout plus ``manifest.json``). Both are read through manifest.json; from a
file by random access (``DockerArchive``), from standard input in one pass (``StdinArchive``)."""

from __future__ import annotations

import sys
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

from secretscan.errors import SourceError, UsageError
from secretscan.image.compression import XzMemoryLimit, open_uncompressed, prefixed, sniff
from secretscan.image.model import ImageConfig, LayerHandle, SaveEntry, parse_save_manifest
from secretscan.limits import Limits
from secretscan.sources.reference import STDIN_HINT, STDIN_IS_A_TERMINAL
from secretscan.sources.savestream import SaveStream
from secretscan.sources.tarblobs import TarBlobs
from secretscan.walk.content import DECODE_ERRORS

MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass
class ArchiveImage:
    blobs: TarBlobs
    entry: SaveEntry
    name: str

    @property
    def digest(self) -> str | None:
        hexpart = self.entry.config.rsplit("/", 1)[-1].removesuffix(".json")
        return f"sha256:{hexpart}" if len(hexpart) == 64 else None

    @property
    def annotations(self) -> dict[str, str]:
        return {}

    def config(self) -> ImageConfig:
        return self._config

    @cached_property
    def _config(self) -> ImageConfig:
        name = self.entry.config
        return ImageConfig.parse(self.blobs.read(name, MAX_MANIFEST_BYTES), f"{self.name}: {name}")

    def layers(self) -> Sequence[LayerHandle]:
        diff_ids = self._config.diff_ids
        handles = []
        for i, member in enumerate(self.entry.layers):  # a missing member fails when opened: the rest is scanned
            blob_digest = f"sha256:{member.split('/')[-1]}" if member.startswith("blobs/sha256/") else None
            handles.append(
                LayerHandle(
                    index=i,
                    diff_id=diff_ids[i] if i < len(diff_ids) else None,
                    blob_digest=blob_digest,
                    size=self.blobs.size(member) if self.blobs.has(member) else None,
                    open=lambda m=member: self.blobs.open(m),  # type: ignore[misc]
                    forkable=True,
                    open_range=lambda start, end, m=member: self.blobs.open(m, start, end),  # type: ignore[misc]
                )
            )
        return handles


class DockerArchive:
    def __init__(self, path: Path, ref: str | None) -> None:
        self.path, self.ref = path, ref
        self.blobs = TarBlobs(path)
        if not self.blobs.has("manifest.json"):
            raise SourceError(f"{path}: no manifest.json: not a docker-archive (docker save) file")
        self.entries = parse_save_manifest(
            self.blobs.read("manifest.json", MAX_MANIFEST_BYTES), f"{path}: manifest.json"
        )

    @property
    def description(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.ref}" if self.ref else "")

    def images(self) -> Iterator[ArchiveImage]:
        chosen = list(enumerate(self.entries))
        if self.ref is not None:
            chosen = [(i, e) for i, e in chosen if self._selected(i, e)]
            if not chosen:
                tags = sorted(t for e in self.entries for t in e.tags)
                raise UsageError(
                    f"{self.path}: no image {self.ref!r} in the archive (it has: {', '.join(tags) or 'untagged images'}; or use @N)"
                )
        for i, entry in chosen:
            name = entry.tags[0] if entry.tags else f"{self.path.name}@{i}"
            yield ArchiveImage(self.blobs, entry, name)

    def _selected(self, index: int, entry: SaveEntry) -> bool:
        assert self.ref is not None
        if self.ref.startswith("@"):
            return self.ref[1:].isdigit() and int(self.ref[1:]) == index
        tags = entry.tags
        return self.ref in tags or f"{self.ref}:latest" in tags or any(t.endswith("/" + self.ref) for t in tags)


STDIN_HOLDS = (
    "standard input takes a docker save archive, plain or compressed (docker save IMAGE | gzip), or an OCI layout tar"
)


class StdinArchive:
    """``-``: an archive piped in (``docker save IMAGE | secretscan scan -``): a docker save tar or
    an OCI layout tar, plain or compressed (gzip, zstd, xz, bzip2, told by its first bytes).

    A pipe can be read once, and a docker save stream names its images in ``manifest.json`` only
    after the layers, so it is read as the daemon's save stream is (``savestream``): each layer
    held in memory or scanned as it passes (``streamlayers``), nothing extracted or spooled to disk,
    memory bounded by the limits that bound every layer. The first bytes are checked here, so that what is not a tar archive at all
    gets a message that says what standard input can hold."""

    label = "stdin"

    def __init__(self, stream: BinaryIO | None = None, xz_memory: int = Limits().max_xz_memory) -> None:
        self._stream = stream
        """None: the process's standard input, looked up when the stream is opened."""
        self._xz_memory = xz_memory

    @property
    def description(self) -> str:
        return self.label

    def open_stream(self) -> SaveStream:
        raw = self._stream if self._stream is not None else (sys.stdin.buffer if sys.stdin is not None else None)
        if raw is not None and raw.isatty():
            raise UsageError(STDIN_IS_A_TERMINAL)
        head = raw.read(8) if raw is not None else b""
        if not head:
            raise UsageError(f"standard input is empty; {STDIN_HINT}")
        assert raw is not None
        compression = sniff(head)
        try:
            reader, _ = open_uncompressed(prefixed(head, raw), xz_memory=self._xz_memory)
            block = reader.read(tarfile.BLOCKSIZE)
        except XzMemoryLimit as exc:
            raise SourceError(f"{self.label}: {exc}") from None
        except DECODE_ERRORS:
            raise SourceError(
                f"{self.label}: not a tar archive (it starts as {compression} data that does not decompress); "
                f"{STDIN_HOLDS}"
            ) from None
        _check_tar_start(block, "" if compression == "none" else f" ({compression}-compressed)", self.label)
        return SaveStream(self.label, prefixed(block, reader))


def _check_tar_start(block: bytes, what: str, label: str) -> None:
    """A one-line error unless ``block`` is a tar header (right size, valid checksum)."""
    if len(block) == tarfile.BLOCKSIZE and not block.strip(b"\0"):  # the end-of-archive block first
        raise SourceError(f"{label}: an empty tar archive{what}: not an image; {STDIN_HOLDS}")
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        raise SourceError(f"{label}: not a tar archive{what}; {STDIN_HOLDS}") from None
