"""Open a possibly compressed stream by its magic bytes, not by what a manifest claims.

Media types lie (docker-archive stores uncompressed tars under names that suggest otherwise, and
hand-made images mislabel blobs), so the first bytes decide.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import BinaryIO

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
_MAGIC = {"gzip": GZIP_MAGIC, "bzip2": BZIP2_MAGIC, "xz": XZ_MAGIC}
_READ = 1 << 20


def read_some(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, b"" only at the end: one read of what is at hand (``read1``), not a wait
    for all ``n``. A wrapper that read ahead in full would hit damage in a nested stream (and give
    up) before the entries in front of the damage were scanned."""
    read1 = getattr(stream, "read1", None)
    return read1(n) if read1 is not None else stream.read(n)


def sniff(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC) and len(head) > 3 and head[3:4].isdigit():
        return "bzip2"
    return "none"


class _Peeked(io.RawIOBase):
    """A stream with its already-read head put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = read_some(self._rest, len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Decompressing(io.RawIOBase):
    """Streaming decompression with a hard output cap per read call (no bomb can make one
    ``read`` return more than asked) and a clear error on truncated input."""

    def __init__(self, raw: BinaryIO, kind: str) -> None:
        self._raw, self._kind = raw, kind
        self._d = self._new()
        self._pending = b""
        self._eof = False

    def _new(self):  # type: ignore[no-untyped-def]
        if self._kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self._kind == "xz":
            return lzma.LZMADecompressor()
        raise ValueError(self._kind)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        while not self._pending and not self._eof:
            self._fill(want)
        n = min(want, len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fill(self, want: int) -> None:
        d = self._d
        if self._kind == "gzip":
            if d.unconsumed_tail:
                self._pending = d.decompress(d.unconsumed_tail, want)
                return
            if d.eof:
                self._next_stream(want)
                return
            chunk = read_some(self._raw, _READ)
            if not chunk:
                raise EOFError("compressed stream ends early (truncated gzip)")
            self._pending = d.decompress(chunk, want)
            return
        # bzip2 / xz: max_length bounds output; needs_input tells when to feed more
        if d.eof:
            self._next_stream(want)
            return
        if d.needs_input:
            chunk = read_some(self._raw, _READ)
            if not chunk:
                raise EOFError(f"compressed stream ends early (truncated {self._kind})")
            self._pending = d.decompress(chunk, want)
        else:
            self._pending = d.decompress(b"", want)

    def _next_stream(self, want: int) -> None:
        """At the end of one compressed stream, go on with the next one if another follows
        (concatenated gzip members, pbzip2/lbzip2 and multi-stream xz); zero padding is skipped.
        The next stream's start may not have been read yet, so read until its magic can be told."""
        magic = _MAGIC[self._kind]
        rest = self._d.unused_data.lstrip(b"\0")
        while len(rest) < len(magic):
            more = read_some(self._raw, _READ)
            if not more:
                break
            rest += more.lstrip(b"\0") if not rest else more
        if not rest.startswith(magic):
            self._eof = True
            return
        self._d = self._new()
        self._pending = self._d.decompress(rest, want)


def prefixed(head: bytes, rest: BinaryIO) -> BinaryIO:
    """``rest`` with ``head`` (already read from it) put back in front."""
    return io.BufferedReader(_Peeked(head, rest), _READ)


def open_uncompressed(raw: BinaryIO) -> tuple[BinaryIO, str]:
    """Wrap ``raw`` so reads return uncompressed bytes; returns (stream, compression name)."""
    head = raw.read(8)
    kind = sniff(head)
    peeked = prefixed(head, raw)
    if kind == "none":
        return peeked, kind
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(peeked, read_across_frames=True)
        return io.BufferedReader(_ZstdCheckedEOF(reader), _READ), kind
    return io.BufferedReader(_Decompressing(peeked, kind), _READ), kind


class _ZstdCheckedEOF(io.RawIOBase):
    """Turns zstandard's decoder errors into EOFError, like the other decompressors.

    Known gap: zstandard's stream reader ends silently (b"") when the input stops inside a frame.
    For layers the digest check catches the truncation; a nested ``.zst`` cut short is scanned up
    to the cut without a note (to fix: walk the frame and block headers of the input alongside)."""

    def __init__(self, reader: zstandard.ZstdDecompressionReader) -> None:
        self._r = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._r.read(len(buffer))
        except zstandard.ZstdError as exc:
            raise EOFError(f"corrupt zstd stream ({exc})") from None
        buffer[: len(data)] = data
        return len(data)
