"""One file entry of a layer, whatever the layer is stored as (tar stream or plain directory)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from enum import StrEnum
from typing import BinaryIO, NamedTuple

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class EntryKind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    WHITEOUT = "whiteout"
    """``.wh.NAME``: the layer deletes NAME."""
    OPAQUE = "opaque"
    """``.wh..wh..opq``: the layer hides everything the layers below put in the directory."""
    OTHER = "other"
    """A device, a fifo, a type the walker does not know."""


class FileEntry(NamedTuple):
    """Immutable; a named tuple because a layer has 70,000 of them (a frozen dataclass's
    constructor costs three times as much)."""

    path: str
    """Absolute POSIX path inside the image, normalised; non-UTF-8 bytes shown as ``\\xNN``."""
    kind: EntryKind
    mode: int
    size: int
    link_target: str = ""
    open: Callable[[], BinaryIO] | None = None
    """Regular files only: a reader positioned at the content (valid until the next entry)."""
    mtime: int = 0
    """Seconds since the epoch, as the archive records it: npm gives every file it extracts the
    time its package tarball carries, so a later edit shows."""
    data: bytes | None = None
    """Regular files only, when the walk had all of a small file's bytes at hand (the piece of the
    archive it had read): the content itself, which ``open`` also reads."""


def normalise(name: str) -> str:
    """Archive names are hostile: collapse ``..`` and ``.`` and anchor at ``/``. The result is only
    ever a label and a dictionary key, never a host path. (Leading slashes go first: POSIX lets
    ``normpath`` keep exactly two, and ``//etc`` would be another key than ``/etc``.)"""
    return posixpath.normpath("/" + name.replace("\\", "/").lstrip("/"))


def classify_whiteout(path: str) -> tuple[EntryKind, str] | None:
    """``/etc/.wh.passwd`` -> ("whiteout", "/etc/passwd"); ``/etc/.wh..wh..opq`` -> ("opaque", "/etc")."""
    if WHITEOUT_PREFIX not in path:  # nearly every path: no split needed
        return None
    parent, base = posixpath.split(path)
    if base == OPAQUE_MARKER:
        return EntryKind.OPAQUE, parent or "/"
    if base.startswith(WHITEOUT_PREFIX):
        return EntryKind.WHITEOUT, posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
    return None
