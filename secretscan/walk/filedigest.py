"""A file's digests, computed only when a secret was seen in it.

Package records are checked against the bytes of the files that matter (those a secret was seen
in); hashing every file of an image would cost more than scanning it. A file of up to one scan
window is kept by reference while it is read (the scanner holds those bytes anyway) and hashed at
the end if asked, with every algorithm records use; a longer file is hashed as it streams, with
only the algorithms a record of its path could use (``provenance.collect.digests_for``).
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

from secretscan.image.compression import read_some
from secretscan.provenance.collect import ALL_DIGESTS, digests_for


class DigestingReader(io.RawIOBase):
    def __init__(self, inner: BinaryIO, path: str, keep: int) -> None:
        self._inner, self._path, self._keep = inner, path, keep
        self._pieces: list[bytes] = []
        self._kept = 0
        self._hashers: list[hashlib._Hash] | None = None

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        data = read_some(self._inner, n if n > 0 else 1 << 20)
        if self._hashers is None:
            self._pieces.append(data)
            self._kept += len(data)
            if self._kept > self._keep:  # a long file: hash as it streams from here on
                self._hashers = [hashlib.new(name) for name in digests_for(self._path)]
                for piece in self._pieces:
                    self._update(piece)
                self._pieces = []
        else:
            self._update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _update(self, data: bytes) -> None:
        for h in self._hashers or ():
            h.update(data)

    def digests(self) -> dict[str, str]:
        """Of the whole file: what the scanner left unread is read first."""
        while self.read1(1 << 20):
            pass
        if self._hashers is None:
            return whole_digests(b"".join(self._pieces))
        return {h.name: h.hexdigest() for h in self._hashers}


def whole_digests(data: bytes) -> dict[str, str]:
    """A whole file's digests with every algorithm package records use."""
    return {name: hashlib.new(name, data).hexdigest() for name in ALL_DIGESTS}
