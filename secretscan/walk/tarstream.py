"""Stream the entries of a tar archive in one pass, never extracting and never seeking back."""

from __future__ import annotations

import functools
import io
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from secretscan.image.compression import prefixed, read_some
from secretscan.walk.entries import FileEntry, classify_whiteout, normalise


class TarDamage(tarfile.ReadError):
    """A header that cannot be parsed: the entries after it cannot be told apart. ``rest`` streams
    the archive's bytes from that header on, unparsed, so that they can still be scanned as plain
    bytes (in a tar, the files' contents are there verbatim)."""

    def __init__(self, message: str, offset: int, rest: BinaryIO) -> None:
        super().__init__(message)
        self.offset, self.rest = offset, rest


def iter_tar(stream: BinaryIO) -> Iterator[FileEntry]:
    """Entries in archive order. Each regular file's ``open()`` is valid until the next entry.

    Names are decoded as UTF-8 with invalid bytes kept as surrogates, then shown as ``\\xNN``.
    A header that cannot be parsed raises ``TarDamage``; a failure to read ``stream`` itself is
    raised as it is (the damage is in what feeds the archive, not in it).

    A plain header (file, directory, link) is read by ``_TarInfo.frombuf``; any other is read by
    tarfile (``TarInfo.fromtarfile``: pax, GNU long names, sparse maps, as it always does) from
    ``_Archive``, which stands in for a ``TarFile``. The archive's bytes come in pieces of
    ``_Blocks.PIECE``, and a small file's bytes are one slice of a piece: tarfile's own stream
    reader goes through five Python calls per 10 KiB block, and copies its buffer on each.
    """
    blocks = _Blocks(stream)
    archive = _Archive(blocks)
    while True:
        offset = archive.offset
        if not blocks.skip_to(offset):
            raise blocks.damage("unexpected end of data", offset)
        try:
            member = _plain_member(blocks, archive, offset) or _TarInfo.fromtarfile(archive)  # type: ignore[arg-type]
        except _END:  # a zero block: the end of the archive
            return
        except _STOPPING_HEADERS as exc:
            if offset == 0:
                raise blocks.damage("empty file" if isinstance(exc, _EMPTY) else str(exc), 0) from None
            # tarfile would end the iteration quietly here, as if the archive ended: a hostile layer
            # could hide everything behind one bad block. A real end is a zero block (or no block).
            stop = blocks.block(offset)
            if stop is not None and stop.strip(b"\0"):
                message = f"invalid tar header at offset {offset}: the entries after it cannot be read"
                raise blocks.damage(message, offset) from None
            return
        except (_SUBSEQUENT, tarfile.ReadError) as exc:  # a long name or pax header with no member after it
            raise blocks.damage(str(exc), offset) from None
        yield _entry(member, archive, blocks)


_PLAIN_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)


def _plain_member(blocks: _Blocks, archive: _Archive, offset: int) -> tarfile.TarInfo | None:
    """The member at ``offset`` when its header is one block of a plain kind (file, directory,
    link) and no pax header applies: read here as ``fromtarfile`` would read it, without its round
    of calls per header. None for anything else, which ``fromtarfile`` then reads (and judges)."""
    if archive.pax_headers:
        return None
    head = blocks.peek(tarfile.BLOCKSIZE)
    if len(head) != tarfile.BLOCKSIZE or head[156:157] not in _PLAIN_TYPES:
        return None
    try:
        member = _TarInfo.frombuf(head, archive.encoding, archive.errors)
    except tarfile.HeaderError:
        return None
    blocks.skip_to(offset + tarfile.BLOCKSIZE)
    member.offset, member.offset_data = offset, offset + tarfile.BLOCKSIZE
    data = -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE if member.isreg() else 0
    archive.offset = member.offset_data + data
    return member


def _entry(member: tarfile.TarInfo, archive: _Archive, blocks: _Blocks) -> FileEntry:
    path = _display(normalise(member.name))
    if member.size < 0:  # base-256 sizes can be negative; the next header would be misplaced
        raise blocks.damage(f"{path}: negative size in its tar header", member.offset)
    marker = classify_whiteout(path)
    if marker is not None:
        return FileEntry(marker[1], marker[0], member.mode, 0)
    if member.isreg():
        opener: Callable[[], BinaryIO]
        if member.sparse is not None:  # holes read as zeros, as tarfile reads them
            opener = lambda m=member: tarfile.ExFileObject(archive, m)  # type: ignore[arg-type,misc]  # noqa: E731
        else:
            opener = lambda m=member: _Member(blocks, m.offset_data, m.size)  # type: ignore[misc,assignment,return-value]  # noqa: E731
        mtime = int(member.mtime) if isinstance(member.mtime, (int, float)) else 0
        return FileEntry(path, "file", member.mode, member.size, open=opener, mtime=mtime)
    if member.isdir():
        return FileEntry(path, "dir", member.mode, 0)
    if member.issym():
        return FileEntry(path, "symlink", member.mode, 0, _display(member.linkname))
    if member.islnk():
        return FileEntry(path, "hardlink", member.mode, 0, _display(normalise(member.linkname)))
    return FileEntry(path, "other", member.mode, 0)


_END: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EMPTY: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_SUBSEQUENT: type[Exception] = tarfile.SubsequentHeaderError  # type: ignore[attr-defined]
_STOPPING_HEADERS: tuple[type[Exception], ...] = (
    _EMPTY,
    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
    tarfile.InvalidHeaderError,  # type: ignore[attr-defined]
)
"""Where tarfile ends an archive quietly (unless at its first header)."""

MAX_EXTENDED_HEADER = 16 * 1024 * 1024
"""A pax or GNU long-name header's data is read whole by tarfile: a hostile size cannot make it
read gigabytes into memory."""


class _Archive:
    """What ``TarInfo.fromtarfile`` reads from a ``TarFile``: the stream, the text encoding, the
    offset of the next header (it sets it) and the pax global headers (it updates them)."""

    encoding = "utf-8"
    errors = "surrogateescape"

    def __init__(self, blocks: _Blocks) -> None:
        self.fileobj = blocks
        self.offset = 0
        self.pax_headers: dict[str, str] = {}


class _Blocks:
    """The archive's bytes, read forward in pieces of ``PIECE``: header and small-file reads are
    slices of the piece at hand. Seeks go forward only (skipping a file's unread bytes). The bytes
    from the current header on stay at hand, so that damage there can hand them on unparsed."""

    PIECE = 1 << 20

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._buf = b""
        self._pos = 0  # read position in _buf
        self._base = 0  # stream offset of _buf[0]
        self._eof = False
        self.failed = False
        """Reading ``inner`` raised: the damage is upstream, not in the archive."""

    def _more(self, n: int) -> bytes:
        try:
            more = read_some(self._inner, n)
        except Exception:
            self.failed = True
            raise
        self._eof = not more
        return more

    def _fill(self, need: int) -> bool:
        """At least ``need`` unread bytes at hand, unless the stream ends first (then False). The
        pieces are joined once, however small the stream hands them out."""
        have = len(self._buf) - self._pos
        if have >= need or self._eof:
            return have >= need
        parts = [self._buf[self._pos :]] if have else []
        while have < need and not self._eof:
            more = self._more(self.PIECE)
            parts.append(more)
            have += len(more)
        self._base += self._pos
        self._buf, self._pos = b"".join(parts) if len(parts) != 1 else parts[0], 0
        return have >= need

    def read(self, n: int = -1) -> bytes:
        """Exactly ``n`` bytes, fewer only at the end (as tarfile's header reading expects)."""
        if n < 0 or n > MAX_EXTENDED_HEADER:
            raise tarfile.ReadError(f"extended header larger than {MAX_EXTENDED_HEADER} bytes")
        self._fill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at the end), left unread."""
        self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes of what is at hand (reading a piece if none is), b"" only at the end."""
        if self._pos >= len(self._buf) and not self._fill(1):
            return b""
        data = self._buf[self._pos : self._pos + n] if n < len(self._buf) - self._pos or self._pos else self._buf
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._base + self._pos

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or not self.skip_to(offset):
            raise tarfile.ReadError("unexpected end of data")
        return offset

    def skip_to(self, offset: int) -> bool:
        """Move forward to ``offset``; False if the stream ends before it."""
        if offset < self.tell():
            raise tarfile.ReadError(f"cannot go back from offset {self.tell()} to {offset}")
        while offset > self._base + len(self._buf):
            self._base, self._buf, self._pos = self._base + len(self._buf), b"", 0
            if self._eof:
                return False
            self._buf = self._more(self.PIECE)
        self._pos = offset - self._base
        return True

    def block(self, offset: int) -> bytes | None:
        """The 512 bytes at ``offset``, if at hand (None if the stream ended before them)."""
        start = offset - self._base
        if start < 0 or start + 512 > len(self._buf):
            return None
        return self._buf[start : start + 512]

    def damage(self, message: str, offset: int) -> tarfile.ReadError:
        """The error for a header at ``offset`` that cannot be parsed: ``TarDamage`` with the bytes
        from there on, or, when the stream under the archive failed, a plain ReadError."""
        if self.failed:
            return tarfile.ReadError(message)
        start = min(max(0, offset - self._base), len(self._buf))
        return TarDamage(message, offset, prefixed(self._buf[start:], self._inner))


class _Member(io.RawIOBase):
    """A regular file's bytes, read straight from the archive's pieces; valid until the next entry."""

    def __init__(self, blocks: _Blocks, offset: int, size: int) -> None:
        self._blocks, self._offset, self._left = blocks, offset, size

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        if self._offset != self._blocks.tell():  # the first read, or the archive moved on
            self._blocks.skip_to(self._offset)
        data = self._blocks.read_some(self._left if n < 0 else min(n, self._left))
        if not data:
            raise tarfile.ReadError("unexpected end of data")
        self._left -= len(data)
        self._offset += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = []
            while data := self.read1(1 << 20):
                parts.append(data)
            return b"".join(parts)
        return self.read1(n)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_SPARSE = tarfile.GNUTYPE_SPARSE


class _TarInfo(tarfile.TarInfo):
    """tarfile's header, read the quick way when it is the plain kind nearly every layer is made
    of: octal numbers, an unsigned checksum that holds, no old GNU sparse map. Anything else (base-256
    numbers, a signed checksum, a bad one, an empty block) goes to tarfile's own reading, which
    decides as it always does. The fields are the same either way (``tests/test_tarheader.py``);
    tarfile's version is a dozen Python calls per header, and a layer has 70,000 headers."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:  # type: ignore[override]
        if (
            len(buf) != tarfile.BLOCKSIZE
            or buf[156:157] == _SPARSE
            or (buf[100] | buf[108] | buf[116] | buf[124] | buf[136] | buf[148] | buf[329] | buf[337]) & 0x80
        ):
            return super().frombuf(buf, encoding, errors)
        try:
            chksum = octal_number(buf[148:156])
            if chksum != unsigned_checksum(buf):
                return super().frombuf(buf, encoding, errors)
            obj = cls()
            obj.name = _text(buf[0:100], encoding, errors)
            obj.mode = octal_number(buf[100:108])
            obj.uid = octal_number(buf[108:116])
            obj.gid = octal_number(buf[116:124])
            obj.size = octal_number(buf[124:136])
            obj.mtime = octal_number(buf[136:148])
            obj.chksum = chksum
            obj.type = buf[156:157]
            obj.linkname = _text(buf[157:257], encoding, errors)
            obj.uname = _text(buf[265:297], encoding, errors)
            obj.gname = _text(buf[297:329], encoding, errors)
            obj.devmajor = octal_number(buf[329:337])
            obj.devminor = octal_number(buf[337:345])
            prefix = _text(buf[345:500], encoding, errors)
        except ValueError:  # not octal, not ASCII: tarfile says what is wrong
            return super().frombuf(buf, encoding, errors)
        if obj.type == tarfile.AREGTYPE and obj.name.endswith("/"):
            obj.type = tarfile.DIRTYPE
        if obj.type == tarfile.DIRTYPE:
            obj.name = obj.name.rstrip("/")
        if prefix and obj.type not in tarfile.GNU_TYPES:
            obj.name = prefix + "/" + obj.name
        return obj


def unsigned_checksum(header: bytes) -> int:
    """The checksum a tar header should carry: its bytes summed, the checksum field counted as spaces.
    Summed by Adler-32 in C: its low half is 1 + the sum of the bytes modulo 65521, exact for 256
    bytes (at most 65,280); summing in Python took 2 µs a header."""
    half = len(header) // 2
    total = (zlib.adler32(header[:half]) & 0xFFFF) + (zlib.adler32(header[half:]) & 0xFFFF) - 2
    return 256 + total - sum(header[148:156])


@functools.lru_cache(maxsize=4096)
def octal_number(field: bytes) -> int:
    """A tar header's octal number field, read as tarfile reads it (ValueError if it is not one).
    Remembered: a layer's headers repeat their modes, owners and times thousands of times."""
    end = field.find(b"\0")
    digits = (field if end < 0 else field[:end]).strip()
    if not digits.isascii():
        raise ValueError("not ASCII")
    return int(digits or b"0", 8)


@functools.lru_cache(maxsize=1024)
def _text(field: bytes, encoding: str, errors: str) -> str:
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode(encoding, errors)


def each_member(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a tar read in order, without the list tarfile keeps of every header it has
    read (its undocumented ``members``): an archive of a million files would stay in memory."""
    while (member := tar.next()) is not None:
        tar.members.clear()  # type: ignore[attr-defined]
        yield member


def _display(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
