"""Open a possibly compressed stream by its magic bytes, not by what a manifest claims.

Media types lie (docker-archive stores uncompressed tars under names that suggest otherwise, and
hand-made images mislabel blobs), so the first bytes decide.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Callable
from typing import BinaryIO, cast

import zstandard

try:  # ISA-L's inflate: same API as zlib, about 2-3x faster on x86-64
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; kept working without it
    _inflate = zlib  # type: ignore[assignment,misc]
INFLATE_ERROR: type[Exception] = _inflate.error  # type: ignore[assignment]
"""What the gzip inflater raises on damaged input (ISA-L's error is not zlib.error)."""

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
_MAGIC = {"gzip": GZIP_MAGIC, "bzip2": BZIP2_MAGIC, "xz": XZ_MAGIC}
_READ = 1 << 20
_FEED = 64 * 1024
_TAIL = 64
"""Bytes at the end of what was read that go to a decoder as a piece of their own (``_piece``)."""
_TRAILER = 8
"""A gzip member's trailer (CRC-32 and size): the very last bytes read go on their own."""


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


class XzMemoryLimit(Exception):
    """An xz stream whose header asks for more decoder memory (its dictionary size) than allowed.

    The header alone decides the allocation, so a few crafted bytes could demand gigabytes. This is
    a limit, not damage: the stream may be sound, it is reported as not scanned, never a crash."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"xz stream needs more than max_xz_memory ({limit} bytes) to decode: not decoded; "
            "raise max_xz_memory to scan it"
        )
        self.limit = limit


class _Decompressing(io.RawIOBase):
    """Streaming decompression with a hard output cap per read call (no bomb can make one
    ``read`` return more than asked) and a clear error on truncated input."""

    def __init__(self, raw: BinaryIO, kind: str, xz_memory: int) -> None:
        self._raw, self._kind, self._xz_memory = raw, kind, xz_memory
        self._d = self._new()
        self._pending = b""
        self._eof = False
        self._chunk, self._pos = memoryview(b""), 0

    def _new(self):  # type: ignore[no-untyped-def]
        if self._kind == "gzip":
            return _inflate.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self._kind == "xz":
            return lzma.LZMADecompressor(memlimit=self._xz_memory)
        raise ValueError(self._kind)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        while not self._pending and not self._eof:
            try:
                self._fill(want)
            except lzma.LZMAError as exc:  # liblzma names its memlimit refusal only in the message
                if "memory" in str(exc).lower() and "limit" in str(exc).lower():
                    raise XzMemoryLimit(self._xz_memory) from None
                raise
        n = min(want, len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _piece(self) -> bytes | memoryview:
        """The next ``_FEED`` bytes of input. Input goes to the decoder in small pieces so that,
        when it meets damage, what the pieces before it decoded has already been handed out (one
        big piece would fail as a whole and lose the files in front of the damage). The last
        ``_TAIL`` bytes of what was read go on their own, and their last ``_TRAILER`` apart again:
        a stream's checks come at its end (a gzip trailer's CRC and size, xz's and bzip2's), and a
        small layer read in one piece with a check that fails would lose every file in it."""
        if self._pos >= len(self._chunk):
            self._chunk, self._pos = memoryview(read_some(self._raw, _READ)), 0
            if not len(self._chunk):
                return b""
        left = len(self._chunk) - self._pos
        size = min(_FEED, left - _TAIL) if left > _TAIL else left - _TRAILER if left > _TRAILER else left
        piece = self._chunk[self._pos : self._pos + size]
        self._pos += len(piece)
        return piece

    def _fill(self, want: int) -> None:
        d = self._d
        if self._kind == "gzip":
            if d.unconsumed_tail:
                self._pending = d.decompress(d.unconsumed_tail, want)
                return
            if d.eof:
                self._next_stream(want)
                return
            piece = self._piece()
            if not piece:
                raise EOFError("compressed stream ends early (truncated gzip)")
            self._pending = d.decompress(piece, want)
            return
        # bzip2 / xz: max_length bounds output; needs_input tells when to feed more
        if d.eof:
            self._next_stream(want)
            return
        if d.needs_input:
            piece = self._piece()
            if not piece:
                raise EOFError(f"compressed stream ends early (truncated {self._kind})")
            self._pending = d.decompress(piece, want)
        else:
            self._pending = d.decompress(b"", want)

    def _next_stream(self, want: int) -> None:
        """At the end of one compressed stream, go on with the next one if another follows
        (concatenated gzip members, pbzip2/lbzip2 and multi-stream xz); zero padding is skipped.
        The next stream's start may not have been read yet, so read until its magic can be told."""
        magic = _MAGIC[self._kind]
        rest = (self._d.unused_data + bytes(self._chunk[self._pos :])).lstrip(b"\0")
        self._chunk, self._pos = memoryview(b""), 0
        while len(rest) < len(magic):
            more = read_some(self._raw, _READ)
            if not more:
                break
            rest += more.lstrip(b"\0") if not rest else more
        if not rest.startswith(magic):
            self._eof = True
            return
        self._d = self._new()
        self._chunk = memoryview(rest)  # fed in pieces like the rest of the input


def prefixed(head: bytes, rest: BinaryIO) -> BinaryIO:
    """``rest`` with ``head`` (already read from it) put back in front."""
    return io.BufferedReader(_Peeked(head, rest), _READ)


def open_uncompressed(raw: BinaryIO, *, xz_memory: int) -> tuple[BinaryIO, str]:
    """Wrap ``raw`` so reads return uncompressed bytes; returns (stream, compression name).
    ``xz_memory`` bounds what an xz stream's header can make the decoder allocate."""
    head = raw.read(8)
    kind = sniff(head)
    peeked = prefixed(head, raw)
    if kind == "none":
        return peeked, kind
    if kind == "zstd":
        return _open_zstd(peeked), kind
    return io.BufferedReader(_Decompressing(peeked, kind, xz_memory), _READ), kind


class _ZstdFrames:
    """Walks the frame and block headers of a zstd stream as it passes, without decompressing, to
    tell whether the input stopped at a frame boundary: zstandard's stream reader ends silently
    (b"") when the input stops inside a frame, which would hide a truncated layer or archive."""

    _SIZES = (0, 1, 2, 4)

    def __init__(self) -> None:
        self._state, self._need, self._buf, self._skip = "magic", 4, b"", 0
        self._checksum = False
        self.at_boundary, self.problem = True, ""

    @property
    def complete(self) -> bool:
        """The input so far ends exactly after a whole frame."""
        return self.at_boundary and not self._buf and not self.problem

    def feed(self, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n and not self.problem:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip, pos = self._skip - take, pos + take
                if not self._skip:
                    self._after_content()
                continue
            take = min(self._need - len(self._buf), n - pos)
            self._buf, pos = self._buf + data[pos : pos + take], pos + take
            if len(self._buf) == self._need:
                header, self._buf = self._buf, b""
                self._parse(header)

    def _expect(self, state: str, need: int) -> None:
        self._state, self._need = state, need
        if need == 0:
            self._parse(b"")

    def _parse(self, h: bytes) -> None:
        if self._state == "magic":
            self.at_boundary = False
            if h == ZSTD_MAGIC:
                self._expect("descriptor", 1)
            elif h[0] & 0xF0 == 0x50 and h[1:] == b"\x2a\x4d\x18":
                self._expect("skippable", 4)
            else:
                self.problem = "data after the last zstd frame is not a frame"
        elif self._state == "descriptor":
            fcs_flag, single, self._checksum = h[0] >> 6, bool(h[0] & 0x20), bool(h[0] & 0x04)
            fcs = (1 if single else 0, 2, 4, 8)[fcs_flag]
            self._expect("header", (0 if single else 1) + self._SIZES[h[0] & 3] + fcs)
        elif self._state == "header":
            self._expect("block", 3)
        elif self._state == "block":
            value = int.from_bytes(h, "little")
            self._last, kind, size = bool(value & 1), (value >> 1) & 3, value >> 3
            if kind == 3:
                self.problem = "reserved zstd block type"
                return
            self._skip = 1 if kind == 1 else size
            if not self._skip:
                self._after_content()
        elif self._state == "skippable":
            self._skip = int.from_bytes(h, "little")
            self._state = "skippable-data"
            if not self._skip:
                self._after_content()
        elif self._state == "checksum":
            self._frame_done()

    def _after_content(self) -> None:
        if self._state == "skippable-data":
            self._frame_done()
        elif self._last:
            self._expect("checksum", 4) if self._checksum else self._frame_done()
        else:
            self._expect("block", 3)

    def _frame_done(self) -> None:
        self.at_boundary = True
        self._expect("magic", 4)


class Observed(io.RawIOBase):
    """Passes a stream through unchanged, showing every chunk to ``on_data`` on the way: for
    hashing a blob, counting progress, or walking zstd frame headers without a second read."""

    def __init__(self, inner: BinaryIO, on_data: Callable[[bytes], None]) -> None:
        self._inner, self._on_data = inner, on_data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = read_some(self._inner, len(buffer))
        self._on_data(data)
        buffer[: len(data)] = data
        return len(data)


def _open_zstd(peeked: BinaryIO) -> BinaryIO:
    frames = _ZstdFrames()
    source = cast(BinaryIO, _AtHand(io.BufferedReader(Observed(peeked, frames.feed), _READ)))
    reader = zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(source, read_across_frames=True)
    return io.BufferedReader(_ZstdChecked(reader, frames), _READ)


class _AtHand:
    """zstandard asks its source for ``read(128 KiB)``; this answers with what has arrived, so a
    slow stream's bytes are decoded (and scanned) as they come rather than 128 KiB at a time."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        return read_some(self._inner, n) if n > 0 else self._inner.read(n)


class _ZstdChecked(io.RawIOBase):
    """zstd decoding with the same failure behaviour as the other decompressors: decoder errors and
    input that stops inside a frame both raise EOFError."""

    def __init__(self, reader: zstandard.ZstdDecompressionReader, frames: _ZstdFrames) -> None:
        self._r, self._frames = reader, frames

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._r.read1(len(buffer))  # what decodes from the input at hand (at least a byte)
        except zstandard.ZstdError as exc:
            raise EOFError(f"corrupt zstd stream ({exc})") from None
        if not data and len(buffer) and not self._frames.complete:
            raise EOFError(
                f"compressed stream ends early (truncated zstd{': ' + self._frames.problem if self._frames.problem else ''})"
            )
        buffer[: len(data)] = data
        return len(data)
