"""How the layers of a stream read once (``docker save`` from the daemon, an archive piped in) are
scanned as the stream passes (``sources.savestream.LayerReader``).

Streamed, a layer is scanned as it arrives, by one process, and its package records, which come
after the files they vouch for, are met too late to spare the search of package content: B, a
730 MB Python and Node image, took 19 s from the daemon against 1.3 s as an archive on disk.
Held in memory as it passes (an anonymous memory file, ``image.spool``: never on disk), a layer
is read like a local archive's: records first, cut into pieces, several layers side by side.

The first layer held is scanned at once, in a forked child, while the stream is read on; the
layers held meanwhile are the next batch, scanned when that one is over. Memory is bounded by
``max_held_blob_bytes`` and ``spool.MAX_HELD`` memory files (each a descriptor): past them, the
copy waits for the batch under way and its memory is given back (the sender waits meanwhile, as
a pipe makes it). A layer larger than the whole budget, or one for which no memory file can be
had, is scanned as it passes, as before.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from secretscan.image import spool
from secretscan.image.model import LayerHandle
from secretscan.walk.layer import LayerResult

ScanStreamed = Callable[[BinaryIO], LayerResult]
"""Scans a layer from a stream read once, in this process."""


class Running(Protocol):
    """The scan of a batch of held layers, under way (in a forked child) or done."""

    def result(self) -> list[LayerResult]:
        """One result per layer of the batch, once the scan is over (waits for it)."""
        ...

    def cancel(self) -> None:
        """Stop it: the run is ending without its results."""
        ...


StartHeld = Callable[[Sequence[LayerHandle]], Running]
"""Starts the scan of layers held in memory, which can be read like local files, side by side."""


class Finished:
    """A batch scanned already, in this process (no child to scan it in)."""

    def __init__(self, results: list[LayerResult]) -> None:
        self._results = results

    def result(self) -> list[LayerResult]:
        return self._results

    def cancel(self) -> None:
        return None


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

    def abandon(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Held:
    key: int
    handle: LayerHandle
    fd: int
    size: int


class HeldInMemory:
    """Layers held in memory as they pass, then scanned by ``start_held`` in batches: the first
    as soon as it is held, and the next batch (the layers held meanwhile) once that one is over.
    A batch's scan runs beside the copy of the layers after it (``start_held`` forks it), as far
    as ``budget`` stored bytes and ``spool.MAX_HELD`` memory files allow: past them, the copy
    waits for the batch under way and gives back its memory. A layer larger than the whole
    budget, or with no memory file to be had, is scanned by ``scan_streamed`` as it passes.
    ``on_bytes`` is told of the bytes held as they arrive, ``on_layers_done`` of each batch's
    layers once they are scanned (a forked scan cannot move a bar)."""

    def __init__(
        self,
        scan_streamed: ScanStreamed,
        start_held: StartHeld,
        budget: int,
        on_bytes: Callable[[int], None],
        on_layers_done: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._scan_streamed, self._start_held = scan_streamed, start_held
        self._budget = budget
        self._on_bytes, self._on_layers_done = on_bytes, on_layers_done
        self._held: list[_Held] = []
        """Layers held and waiting for the next batch."""
        self._running: tuple[list[_Held], Running] | None = None
        self._in_use = 0
        """Bytes in memory files: held, in the batch under way, and of the layer being copied."""
        self._done: dict[int, LayerResult] = {}
        self._taken = 0

    def take(self, blob: BinaryIO, size: int) -> int:
        key, self._taken = self._taken, self._taken + 1
        if not 0 < size <= self._budget:
            self._done[key] = self._scan_streamed(blob)
            return key
        while len(self._held) + (len(self._running[0]) if self._running else 0) >= spool.MAX_HELD:
            self._free_some()
        fd = spool.memory_file()
        if fd is None:
            self._done[key] = self._scan_streamed(blob)
            return key
        try:
            spool.fill(fd, blob, size, self._on_bytes, before_write=self._reserve)
        except Exception as exc:  # noqa: BLE001 - the stream broke inside this layer
            self._done[key] = self._scan_broken(fd, exc)
            return key
        written = os.fstat(fd).st_size
        self._held.append(_Held(key, spool.held_handle(fd, written, key), fd, written))
        if self._running is None:
            self._start()
        return key

    def results(self) -> dict[int, LayerResult]:
        while self._running is not None or self._held:
            if self._running is None:
                self._start()
            self._collect()
        return self._done

    def abandon(self) -> None:
        """The run ends without the results (an interrupt): the batch under way is stopped and
        every memory file closed."""
        if self._running is not None:
            batch, running = self._running
            self._running = None
            running.cancel()
            self._close(batch)
        self._close(self._held)
        self._held = []

    def _reserve(self, n: int) -> None:
        """Room for ``n`` more bytes of the layer being copied: the batch under way is waited
        for, and the held layers are scanned, until the budget has it."""
        while self._in_use + n > self._budget and (self._running is not None or self._held):
            self._free_some()
        self._in_use += n

    def _free_some(self) -> None:
        if self._running is None:
            self._start()
        self._collect()

    def _start(self) -> None:
        batch, self._held = self._held, []
        self._running = (batch, self._start_held([held.handle for held in batch]))

    def _collect(self) -> None:
        assert self._running is not None
        batch, running = self._running
        self._running = None
        try:
            found = running.result()
        finally:
            self._close(batch)
        for held, result in zip(batch, found, strict=True):
            self._done[held.key] = result
        self._on_layers_done(len(batch))

    def _close(self, batch: list[_Held]) -> None:
        for held in batch:
            os.close(held.fd)
            self._in_use -= held.size

    def _scan_broken(self, fd: int, failure: Exception) -> LayerResult:
        """The bytes of a layer that came before the stream broke, then the same failure: the
        result streaming would have given (files before the break scanned, the break reported)."""
        size = os.fstat(fd).st_size
        try:
            with spool.held_handle(fd, size, 0).open() as held:
                return self._scan_streamed(_ThenFail(held, failure))  # type: ignore[arg-type]
        finally:
            os.close(fd)
            self._in_use -= size


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
