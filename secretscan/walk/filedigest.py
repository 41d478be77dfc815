"""A file's digests, computed only when a secret was seen in it.

Package records are checked against the bytes of the files that matter (those a secret was seen
in); hashing every file of an image would cost more than scanning it. A file of up to one scan
window is read whole, and hashed from memory if asked (``whole_digests``, every algorithm records
use); a longer one is hashed as it streams (``DigestingReader``), with only the algorithms a record
of its path could use (``provenance.collect.digests_for``).
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

from secretscan.image.compression import read_some
from secretscan.provenance.collect import digests_for
from secretscan.provenance.model import DIGEST_ALGORITHMS


class DigestingReader(io.RawIOBase):
    def __init__(self, inner: BinaryIO, path: str) -> None:
        self._inner = inner
        self._hashers = [hashlib.new(name) for name in digests_for(path)]

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        data = read_some(self._inner, n if n > 0 else 1 << 20)
        for h in self._hashers:
            h.update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def digests(self) -> dict[str, str]:
        """Of the whole file: what the scanner left unread is read first."""
        while self.read1(1 << 20):
            pass
        return {h.name: h.hexdigest() for h in self._hashers}


def whole_digests(data: bytes) -> dict[str, str]:
    """A whole file's digests with every algorithm package records use."""
    return {name: hash_of(data).hexdigest() for name, hash_of in DIGEST_ALGORITHMS.items()}
