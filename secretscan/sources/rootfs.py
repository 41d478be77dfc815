"""``dir:PATH``: a plain root filesystem on the host (an unpacked image, a build context).

It is one layer with no history. Symlinks are recorded, never followed, so a link inside the
tree cannot make the scanner read outside it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from secretscan.image.entries import EntryKind, FileEntry
from secretscan.image.model import ImageConfig, LayerHandle


@dataclass
class RootFsImage:
    root: Path

    @property
    def name(self) -> str:
        return f"dir:{self.root}"

    @property
    def digest(self) -> str | None:
        return None

    @property
    def annotations(self) -> dict[str, str]:
        return {}

    def config(self) -> ImageConfig:
        return ImageConfig(raw={}, history=(), diff_ids=(), platform=None)

    def layers(self) -> Sequence[LayerHandle]:
        return [LayerHandle(index=0, diff_id=None, blob_digest=None, size=None, open=_no_blob, walk=self.walk)]

    def walk(self) -> Iterator[FileEntry]:
        root = str(self.root)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                full = os.path.join(dirpath, name)
                inside = "/" + (name if rel_dir == "." else f"{rel_dir}/{name}").replace(os.sep, "/")
                inside = inside.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    yield FileEntry(inside, EntryKind.SYMLINK, st.st_mode & 0o7777, 0, os.readlink(full))
                elif stat.S_ISREG(st.st_mode):
                    yield FileEntry(
                        inside, EntryKind.FILE, st.st_mode & 0o7777, st.st_size, open=_opener(full), mtime=int(st.st_mtime)
                    )


def _opener(full: str):  # type: ignore[no-untyped-def]
    def open_nofollow() -> BinaryIO:
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    return open_nofollow


@contextmanager
def _no_blob() -> Iterator[BinaryIO]:
    raise NotImplementedError("a directory has no layer blob")
    yield  # type: ignore[unreachable]  # makes this a generator


class RootFs:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def description(self) -> str:
        return f"dir:{self.root}"

    def images(self) -> Iterator[RootFsImage]:
        yield RootFsImage(self.root)
