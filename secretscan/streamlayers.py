"""How the layers of a stream read once (``docker save`` from the daemon, an archive piped in) are
scanned as the stream passes (``sources.savestream.LayerReader``).

Streamed, a layer is scanned as it arrives, by one process, and its package records, which come
after the files they vouch for, are met too late to spare the search of package content: B, a
730 MB Python and Node image, took 19 s from the daemon against 1.3 s as an archive on disk.
Held in memory as it passes (an anonymous memory file, ``image.spool``: never on disk), a layer
is read like a local archive's: records first, cut into pieces, several layers side by side.

Memory is bounded by ``max_held_blob_bytes``: layers are held until the next would pass it (or
``spool.MAX_HELD`` are held: each is a file descriptor), then
the held ones are scanned and their memory given back before the stream is read on (the sender
waits meanwhile, as a pipe makes it). A layer larger than the whole budget, or one for which no
memory file can be had, is scanned as it passes, as before.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from typing import BinaryIO

from secretscan.image import spool
from secretscan.image.model import LayerHandle
from secretscan.walk.layer import LayerResult

ScanStreamed = Callable[[BinaryIO], LayerResult]
"""Scans a layer from a stream read once, in this process."""
ScanHeld = Callable[[Sequence[LayerHandle]], list[LayerResult]]
"""Scans layers that can be read like local files, side by side; one result per layer."""


class EachAsItPasses:
    """Every layer scanned as it passes."""

    def __init__(self, scan: ScanStreamed) -> None:
        self._scan = scan
        self._done: dict[int, LayerResult] = {}

    def take(self, blob: BinaryIO, size: int) -> int:
        key = len(self._done)
        self._done[key] = self._scan(blob)
        return key

    def results(self) -> dict[int, LayerResult]:
        return self._done


class HeldInMemory:
    """Layers held in memory as they pass, as many as fit ``budget`` stored bytes together, then
    scanned by ``scan_held``; the others by ``scan_streamed`` as they pass. ``on_bytes`` is told
    of the stored bytes held as they arrive."""

    def __init__(
        self, scan_streamed: ScanStreamed, scan_held: ScanHeld, budget: int, on_bytes: Callable[[int], None]
    ) -> None:
        self._scan_streamed, self._scan_held = scan_streamed, scan_held
        self._budget = self._left = budget
        self._on_bytes = on_bytes
        self._held: list[tuple[int, LayerHandle, int]] = []
        """(key, handle, memory file) of the layers held and not yet scanned."""
        self._done: dict[int, LayerResult] = {}
        self._taken = 0

    def take(self, blob: BinaryIO, size: int) -> int:
        key, self._taken = self._taken, self._taken + 1
        fd = spool.memory_file() if 0 < size <= self._budget else None
        if fd is None:
            self._done[key] = self._scan_streamed(blob)
            return key
        if size > self._left or len(self._held) == spool.MAX_HELD:
            self._scan_all_held()
        try:
            spool.fill(fd, blob, size, self._on_bytes)
        except Exception as exc:  # noqa: BLE001 - the stream broke inside this layer
            self._done[key] = self._scan_broken(fd, exc)
            return key
        handle = spool.held_handle(fd, os.fstat(fd).st_size, key)
        self._held.append((key, handle, fd))
        self._left -= size
        return key

    def results(self) -> dict[int, LayerResult]:
        self._scan_all_held()
        return self._done

    def _scan_all_held(self) -> None:
        if not self._held:
            return
        try:
            found = self._scan_held([handle for _, handle, _ in self._held])
            for (key, _, _), result in zip(self._held, found, strict=True):
                self._done[key] = result
        finally:
            for _, _, fd in self._held:
                os.close(fd)
            self._held, self._left = [], self._budget

    def _scan_broken(self, fd: int, failure: Exception) -> LayerResult:
        """The bytes of a layer that came before the stream broke, then the same failure: the
        result streaming would have given (files before the break scanned, the break reported)."""
        try:
            size = os.fstat(fd).st_size
            with spool.held_handle(fd, size, 0).open() as held:
                return self._scan_streamed(_ThenFail(held, failure))  # type: ignore[arg-type]
        finally:
            os.close(fd)


class _ThenFail(io.RawIOBase):
    """``inner``'s bytes, then ``failure`` raised on the read after them, then an end (as the
    stream's own member reader does: ``savestream._Latched``)."""

    def __init__(self, inner: BinaryIO, failure: Exception) -> None:
        self._inner, self._failure = inner, failure
        self._raised = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        if not data:
            if self._raised:
                return 0
            self._raised = True
            raise self._failure
        buffer[: len(data)] = data
        return len(data)
