"""Scan one layer into a ``LayerResult`` that does not depend on where the layer sits.

A layer blob is content-addressed: the same blob is the same result in every image that uses it,
at whatever index. Keeping the result free of image facts (index, build step, fate) lets sources
that stream layers out of order (``docker save``) attribute them afterwards, and is what a
per-layer cache stores.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from secretscan.config import Limits
from secretscan.detect.engine import Engine
from secretscan.detect.seal import Sealer, Sighting
from secretscan.errors import SecretScanError
from secretscan.image.compression import Observed, open_uncompressed, read_some
from secretscan.models import Skipped
from secretscan.walk.content import DECODE_ERRORS, ContentScanner
from secretscan.walk.entries import FileEntry
from secretscan.walk.fate import LayerPaths
from secretscan.walk.tarstream import iter_tar


@dataclass
class LayerResult:
    matches: list[tuple[Sighting, str, int | None]] = field(default_factory=list)
    """(sighting, path inside the layer with ``!/`` nesting, line)."""
    paths: LayerPaths = field(default_factory=LayerPaths)
    hardlinks: list[tuple[str, str]] = field(default_factory=list)
    """(link path, target path): a link ships its target's bytes under another name."""
    skipped: list[Skipped] = field(default_factory=list)
    """``what`` is the path inside the layer; the image and layer are prefixed when reported."""
    error: str | None = None
    """Set when the layer could not be read to its end (what was read before is kept)."""
    files: int = 0
    bytes: int = 0
    stored_digest: str | None = None
    """sha256 of the blob as stored (compressed or not), computed while streaming."""
    compression: str = "none"
    secrets: dict[str, str] = field(default_factory=dict, repr=False, metadata={"transient": True})
    """fingerprint -> plaintext of ``matches``: in memory only, never stored (see ``detect.seal``)."""


def scan_layer_blob(
    engine: Engine, sealer: Sealer, limits: Limits, blob: BinaryIO, on_bytes: Callable[[int], None] = lambda n: None
) -> LayerResult:
    """Stream a stored layer blob (gzip, zstd or plain tar, told by its magic bytes) to its end."""
    result = LayerResult()
    sha256 = hashlib.sha256()

    def seen(data: bytes) -> None:
        sha256.update(data)
        on_bytes(len(data))

    stored = [0]

    def count_stored(data: bytes) -> None:
        stored[0] += len(data)
        seen(data)

    hashing = Observed(blob, count_stored)
    try:
        stream, result.compression = open_uncompressed(io.BufferedReader(hashing, 1 << 20))
        stream = io.BufferedReader(_LayerBound(stream, limits, stored), 1 << 20)
        _scan_entries(engine, sealer, limits, iter_tar(stream), result)
        while stream.read(1 << 20):
            pass  # the rest of the blob (tar padding) still counts for its digest
        while hashing.read(1 << 20):
            pass
        result.stored_digest = "sha256:" + sha256.hexdigest()
    except SecretScanError as exc:
        result.error = str(exc)
    except LayerTooLarge as exc:
        result.skipped.append(Skipped("(the layer)", f"{exc}: the rest of the layer was not scanned"))
        result.stored_digest = _finish_digest(hashing, sha256)
    except DECODE_ERRORS as exc:
        result.error = f"unreadable layer: {type(exc).__name__}: {str(exc)[:160]}; files before the damage were scanned"
        result.stored_digest = _finish_digest(hashing, sha256)
    return result


class LayerTooLarge(Exception):
    """Not a decoding error: nothing inside the layer (a nested archive) may catch it."""


class _LayerBound(io.RawIOBase):
    """The uncompressed layer stream, stopped at ``max_layer_bytes`` or, past 64 MiB, at
    ``max_compression_ratio``: a decompression bomb costs bounded time, not an unbounded scan."""

    RATIO_AFTER = 64 * 1024 * 1024

    def __init__(self, inner: BinaryIO, limits: Limits, stored: list[int]) -> None:
        self._inner, self._limits, self._stored, self._read = inner, limits, stored, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = read_some(self._inner, len(buffer))
        self._read += len(data)
        if self._read > self._limits.max_layer_bytes:
            raise LayerTooLarge(
                f"layer larger than max_layer_bytes ({self._limits.max_layer_bytes} bytes uncompressed)"
            )
        if self._read > self.RATIO_AFTER and self._read > self._limits.max_compression_ratio * max(1, self._stored[0]):
            raise LayerTooLarge(
                f"layer expands more than max_compression_ratio ({self._limits.max_compression_ratio}:1): "
                "a decompression bomb, or a layer that needs a higher limit"
            )
        buffer[: len(data)] = data
        return len(data)


def _finish_digest(hashing: Observed, sha256: hashlib._Hash) -> str | None:
    """After a decoding failure, hash the rest of the blob: if its bytes do not match its digest,
    that (tampering or corruption in transit) is the error to report, not the decoder's symptom."""
    try:
        while hashing.read(1 << 20):
            pass
    except (OSError, EOFError):
        return None
    return "sha256:" + sha256.hexdigest()


def scan_layer_entries(engine: Engine, sealer: Sealer, limits: Limits, entries: Iterator[FileEntry]) -> LayerResult:
    """A layer that is not a blob (a plain directory): entries come with their own readers."""
    result = LayerResult()
    _scan_entries(engine, sealer, limits, entries, result)
    return result


def _scan_entries(
    engine: Engine, sealer: Sealer, limits: Limits, entries: Iterator[FileEntry], result: LayerResult
) -> None:
    scanner = ContentScanner(
        engine,
        limits,
        lambda m, path, line: result.matches.append((sealer.seal(m, result.secrets), path, line)),
        result.skipped.append,
    )
    try:
        for entry in entries:
            result.paths.record(entry)
            if entry.kind == "hardlink":
                result.hardlinks.append((entry.path, entry.link_target))
            elif entry.kind == "file" and entry.open is not None:
                try:
                    with entry.open() as f:
                        scanner.scan(entry.path, f)
                except OSError as exc:  # a file of a plain directory that vanished or is unreadable
                    if exc.errno is None:  # not a filesystem error (a damaged stream): the layer's problem
                        raise
                    result.skipped.append(Skipped(entry.path, f"unreadable ({exc.strerror or exc})"))
    finally:
        result.files, result.bytes = scanner.stats.files, scanner.stats.bytes
