"""Random access to members of a tar file without extracting it: the store behind
docker-archive and oci-archive. Member names from the archive are only dictionary keys, never
host paths."""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from secretscan.errors import SourceError
from secretscan.walk.tarstream import each_member

MAX_MEMBERS = 1_000_000


class _Slice(io.RawIOBase):
    """``size`` bytes of a file from ``offset``, through a handle of its own: readers never share
    a file position, so layers can be read in parallel (threads or forked workers)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._f.seek(offset)
        self._offset, self._size, self._left = offset, size, size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size - self._left

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        """Within the slice (a tar's headers are walked by seeking past member data)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self._size}[whence]
        target = min(max(0, base + pos), self._size)
        self._f.seek(self._offset + target)
        self._left = self._size - target
        return target

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._f.readinto(memoryview(buffer)[: min(len(buffer), self._left)]) if self._left else 0
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass(frozen=True, slots=True)
class _Member:
    """What the index keeps of one member (a TarInfo is ten times larger, and an archive may
    have a million members): where a file's bytes are, or the member a link leads to."""

    is_file: bool
    offset_data: int
    size: int
    sparse: bool
    link_to: str | None
    """For a symbolic or hard link: the normalised name of its target."""

    @classmethod
    def of(cls, info: tarfile.TarInfo) -> _Member:
        link_to = None
        if info.islnk():
            link_to = _norm(info.linkname)
        elif info.issym():
            link_to = _norm(posixpath.join(posixpath.dirname(info.name), info.linkname))
        return cls(info.isfile(), info.offset_data, info.size, bool(info.sparse), link_to)


class TarBlobs:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._members: dict[str, _Member] = {}
        try:
            with tarfile.open(path, "r:") as tar:  # only the index is kept; each read opens the file anew
                for count, info in enumerate(each_member(tar), 1):
                    if count > MAX_MEMBERS:
                        raise SourceError(f"{path}: more than {MAX_MEMBERS} members")
                    self._members[_norm(info.name)] = _Member.of(info)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SourceError(f"{path}: not a readable tar archive ({exc})") from None

    def has(self, name: str) -> bool:
        return _norm(name) in self._members

    def _regular(self, name: str) -> _Member:
        member = self._members.get(_norm(name))
        hops = 0
        while member is not None and member.link_to is not None and hops < 8:
            hops += 1
            member = self._members.get(member.link_to)
        if member is None or not member.is_file:
            raise SourceError(f"{self.path}: missing blob {name}")
        return member

    def size(self, name: str) -> int:
        return self._regular(name).size

    def read(self, name: str, limit: int) -> bytes:
        member = self._regular(name)
        if member.size > limit:
            raise SourceError(f"{self.path}: {name} is {member.size} bytes, over the {limit}-byte limit")
        with self.open(name) as f:
            return f.read()

    @contextmanager
    def open(self, name: str, start: int = 0, end: int | None = None) -> Iterator[BinaryIO]:
        """The member's bytes, or those from ``start`` to ``end`` (seekable)."""
        member = self._regular(name)
        if member.sparse:
            raise SourceError(f"{self.path}: {name} is a sparse tar member, which a blob never is")
        start = min(max(0, start), member.size)
        stop = member.size if end is None else min(max(start, end), member.size)
        try:
            reader = io.BufferedReader(_Slice(self.path, member.offset_data + start, stop - start), 1 << 20)
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read {name} ({exc.strerror})") from None
        try:
            yield reader
        finally:
            reader.close()


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")
