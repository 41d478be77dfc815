"""Layers that arrive over the network (a registry's blobs), held in memory as stored so that they
can be read like a local file: twice (a layer's package records before its scan) and by several
worker processes at once.

A blob streamed from a registry can be read once, by one process: its package records, which come
after the files they vouch for, were met too late to spare the search of package content, and the
layers of an image were scanned one after another. Held in an anonymous memory file
(``memfd_create``: no path, never on disk, gone when the scan closes it) it is read with ``pread``
from any offset, in the parent or a forked worker.

Only what fits ``max_held_blob_bytes`` (stored bytes, per image) is held; a blob that fails to
arrive exactly whole is left to stream as before, so its scan meets and reports the same failure
(fetched twice: a rare case, and the report is the one streaming gives). The caller holds nothing
under an overall time limit: streamed, each layer is scanned as it arrives.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import BinaryIO

from secretscan.image.compression import read_some
from secretscan.image.model import LayerHandle

FETCHES = 4
"""Blobs fetched at once: the transfer waits on the network, not on this process."""
MAX_HELD = 256
"""Memory files open at once, whatever their size: each is a file descriptor, and a process may
have as few as 1,024. An image or a stream of thousands of tiny layers would use them all up, and
then the pipes the scan's workers need could not be made."""
_PIECE = 1 << 20


def can_hold() -> bool:
    """Whether this platform has anonymous memory files (Linux)."""
    return hasattr(os, "memfd_create")


@contextmanager
def held(layers: Sequence[LayerHandle], budget: int) -> Iterator[list[LayerHandle]]:
    """``layers`` with each one that streams from a server (a blob that is neither forkable nor
    walked, of known size) held in memory, while the context lasts: in layer order, until the
    stored sizes would pass ``budget`` (or ``MAX_HELD`` are held). The others come back as they are."""
    chosen: list[int] = []
    left = budget
    for k, handle in enumerate(layers):
        if handle.forkable or handle.walk is not None or not handle.size:
            continue
        if handle.size > left or len(chosen) == MAX_HELD:
            break
        chosen.append(k)
        left -= handle.size
    if not chosen or not can_hold():
        yield list(layers)
        return
    with ExitStack() as files:
        with ThreadPoolExecutor(max_workers=min(FETCHES, len(chosen))) as pool:
            copies = list(pool.map(lambda k: _copy(layers[k]), chosen))
        out = list(layers)
        for k, fd in zip(chosen, copies, strict=True):
            if fd is None:
                continue
            files.callback(os.close, fd)
            size = layers[k].size
            assert size is not None
            out[k] = held_handle(fd, size, layers[k].index, layers[k].diff_id, layers[k].blob_digest)
        yield out


def _copy(handle: LayerHandle) -> int | None:
    """An anonymous memory file holding the blob as stored; None when it did not arrive exactly
    whole (an error, a shorter or a longer body: the layer then streams as before, and its scan
    says what is wrong)."""
    assert handle.size is not None
    fd = memory_file()
    if fd is None:
        return None
    try:
        with handle.open() as blob:
            written = fill(fd, blob, handle.size)
            longer = written == handle.size and blob.read(1)
        if written == handle.size and not longer:
            return fd
    except Exception:  # noqa: BLE001 - any failure: stream it as before, which reports it
        pass
    os.close(fd)
    return None


def memory_file() -> int | None:
    """A new anonymous memory file, or None when none can be had (not Linux, too many open files,
    a seccomp filter): the caller then streams."""
    if not can_hold():
        return None
    try:
        return os.memfd_create("secretscan-layer", os.MFD_CLOEXEC)
    except OSError:
        return None


def fill(
    fd: int,
    blob: BinaryIO,
    size: int,
    on_bytes: Callable[[int], None] = lambda n: None,
    before_write: Callable[[int], None] = lambda n: None,
) -> int:
    """Copy up to ``size`` bytes of ``blob`` into ``fd``; how many came. A failure to read is
    raised with what came before it already written (read as it comes, ``read_some``: a read
    that waited for a whole piece would lose the bytes in front of the failure; written a piece
    at a time, for a write per read costs twice the time in the kernel). ``before_write`` is told
    of each piece's size before it goes into memory (and may wait for room)."""
    written = at = 0
    piece = bytearray(_PIECE)  # one buffer, filled and written again and again
    try:
        while written + at < size and (data := read_some(blob, min(_PIECE - at, size - written - at))):
            piece[at : at + len(data)] = data
            at += len(data)
            on_bytes(len(data))
            if at == _PIECE:
                written += _write(fd, memoryview(piece), before_write)
                at = 0
    finally:
        written += _write(fd, memoryview(piece)[:at], before_write)
    return written


def _write(fd: int, view: memoryview, before: Callable[[int], None]) -> int:
    size = len(view)
    if size:
        before(size)
    while view:
        view = view[os.write(fd, view) :]
    return size


def held_handle(
    fd: int, size: int, index: int, diff_id: str | None = None, blob_digest: str | None = None
) -> LayerHandle:
    """A layer whose stored bytes are the first ``size`` of the memory file ``fd``: read like a
    local file, from any offset, in this process or a forked worker."""
    opener: Callable[[int, int], AbstractContextManager[BinaryIO]] = lambda start, end: _reader(fd, start, end)  # noqa: E731
    return LayerHandle(
        index=index,
        diff_id=diff_id,
        blob_digest=blob_digest,
        size=size,
        open=lambda: _reader(fd, 0, size),
        forkable=True,
        open_range=opener,
        held=True,
    )


@contextmanager
def _reader(fd: int, start: int, end: int) -> Iterator[BinaryIO]:
    reader = io.BufferedReader(_Range(fd, start, end), _PIECE)
    try:
        yield reader  # type: ignore[misc]
    finally:
        reader.close()


class _Range(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a memory file, read with ``pread``: a position of its own, so
    readers in several processes (or threads) never share one."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd, self._start, self._size, self._at = fd, start, max(0, end - start), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = min(max(0, base + pos), self._size)
        return self._at

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._at)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._start + self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)
