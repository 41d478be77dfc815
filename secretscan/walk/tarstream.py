"""Stream the entries of a tar archive in one pass, never extracting and never seeking."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO, cast

from secretscan.walk.entries import FileEntry, classify_whiteout, normalise


def iter_tar(stream: BinaryIO) -> Iterator[FileEntry]:
    """Entries in archive order. Each regular file's ``open()`` is valid until the next entry.

    Names are decoded as UTF-8 with invalid bytes kept as surrogates, then shown as ``\\xNN``.
    """
    tail = _Tail(stream)
    tar = tarfile.open(fileobj=cast(BinaryIO, tail), mode="r|", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 - the stream belongs to the caller
    yield from _entries(tar)
    # tarfile ends the iteration quietly at a header it cannot parse (bad checksum, garbage), as if
    # the archive ended there: a hostile layer could hide everything behind one bad block. A real
    # end of archive is a zero block; anything else is damage.
    stop = tail.block(tar.offset)
    if stop is not None and stop.strip(b"\0"):
        raise tarfile.ReadError(f"invalid tar header at offset {tar.offset}: the entries after it cannot be read")


def _entries(tar: tarfile.TarFile) -> Iterator[FileEntry]:
    for member in tar:
        path = _display(normalise(member.name))
        if member.size < 0:  # base-256 sizes can be negative; tarfile then misplaces the next header
            raise tarfile.ReadError(f"{path}: negative size in its tar header")
        marker = classify_whiteout(path)
        if marker is not None:
            yield FileEntry(marker[1], marker[0], member.mode, 0)
        elif member.isreg():
            yield FileEntry(path, "file", member.mode, member.size, open=lambda m=member: tar.extractfile(m))  # type: ignore[misc, arg-type]
        elif member.isdir():
            yield FileEntry(path, "dir", member.mode, 0)
        elif member.issym():
            yield FileEntry(path, "symlink", member.mode, 0, _display(member.linkname))
        elif member.islnk():
            yield FileEntry(path, "hardlink", member.mode, 0, _display(normalise(member.linkname)))
        else:
            yield FileEntry(path, "other", member.mode, 0)


class _Tail:
    """A read-only stream that remembers its last bytes, to look at the block where tarfile stopped."""

    KEEP = 64 * 1024

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._kept = bytearray()
        self._kept_from = 0  # stream offset of _kept[0]

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self._kept += data
        if len(self._kept) > 2 * self.KEEP:
            drop = len(self._kept) - self.KEEP
            del self._kept[:drop]
            self._kept_from += drop
        return data

    def block(self, offset: int) -> bytes | None:
        """The 512 bytes at ``offset``, if still kept (None if they were never read or are gone)."""
        start = offset - self._kept_from
        if start < 0 or start + 512 > len(self._kept):
            return None
        return bytes(self._kept[start : start + 512])


def _display(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
