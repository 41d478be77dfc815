"""Stream the entries of a tar archive in one pass, never extracting and never seeking."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from secretscan.walk.entries import FileEntry, classify_whiteout, normalise


def iter_tar(stream: BinaryIO) -> Iterator[FileEntry]:
    """Entries in archive order. Each regular file's ``open()`` is valid until the next entry.

    Names are decoded as UTF-8 with invalid bytes kept as surrogates, then shown as ``\\xNN``.
    """
    tar = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 - the stream belongs to the caller
    for member in tar:
        path = _display(normalise(member.name))
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


def _display(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
