"""Stream the entries of a tar archive in one pass, never extracting and never seeking back."""

from __future__ import annotations

import functools
import io
import math
import re
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

from secretscan.image.compression import prefixed, read_some
from secretscan.image.entries import EntryKind, FileEntry, classify_whiteout, normalise
from secretscan.walk import headers


class TarDamage(tarfile.ReadError):
    """A header that cannot be parsed: the entries after it cannot be told apart. ``rest`` streams
    the archive's bytes from that header on, unparsed, so that they can still be scanned as plain
    bytes (in a tar, the files' contents are there verbatim)."""

    def __init__(self, message: str, offset: int, rest: BinaryIO) -> None:
        super().__init__(message)
        self.offset, self.rest = offset, rest


def iter_tar(stream: BinaryIO, passing: Callable[[bytes, int], int] | None = None) -> Iterator[FileEntry]:
    """Entries in archive order. Each regular file's ``open()`` is valid until the next entry.

    ``passing(piece, at)``: takes the members from ``piece[at]`` on that it deals with itself,
    headers and bytes whole in the piece at hand, and returns where the first it leaves starts;
    those it took are not yielded (``walk.layer._Members``: package files the scan only counts).

    Names are decoded as UTF-8 with invalid bytes kept as surrogates, then shown as ``\\xNN``.
    A header that cannot be parsed raises ``TarDamage``; a failure to read ``stream`` itself is
    raised as it is (the damage is in what feeds the archive, not in it).

    A plain header (file, directory, link), alone or after a pax header that only names, times or
    sizes it, becomes an entry here (``_quick_entry``: what tarfile would read, without a TarInfo
    and its round of calls); any other is read by tarfile (``TarInfo.fromtarfile``: GNU long
    names, sparse maps, global pax headers, charsets, as it always does) from ``_Archive``, which
    stands in for a ``TarFile``. The archive's bytes come in pieces of ``_Blocks.PIECE``, and a
    small file's bytes are one slice of a piece: tarfile's own stream reader goes through five
    Python calls per 10 KiB block, and copies its buffer on each.
    """
    blocks = _Blocks(stream)
    archive = _Archive(blocks)
    while True:
        offset = archive.offset
        if not blocks.skip_to(offset):
            raise blocks.damage("unexpected end of data", offset)
        if passing is not None and not archive.pax_headers:
            at = offset - blocks._base
            after = passing(blocks._buf, at)
            if after != at:
                archive.offset = blocks._base + after
                continue
        if not archive.pax_headers and (quick := _quick_entry(blocks, archive, offset)) is not None:
            yield quick
            continue
        try:
            member = _TarInfo.fromtarfile(archive)  # type: ignore[arg-type]
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
_BLOCK = tarfile.BLOCKSIZE
MAX_QUICK_PAX = 64 * 1024
"""A pax header longer than this is left to tarfile (a long path is a few hundred bytes)."""
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
"""One record of a pax header, ``<length> <keyword>=<value>\n``, as tarfile matches it."""
_PAX_APPLIED = ("path", "linkpath", "size", "mtime")
"""The pax fields that change an entry; uid, gid, names, atime, ctime and the rest do not."""


def _quick_entry(blocks: _Blocks, archive: _Archive, offset: int) -> FileEntry | None:
    """The entry at ``offset`` when it is a plain one-block header (file, directory, link),
    perhaps after a pax header of plain records: read here exactly as ``fromtarfile`` would read
    it. None for anything else, which ``fromtarfile`` then reads (and judges); nothing is consumed
    until the entry is certain."""
    at = offset - blocks._base
    simple = headers.plain_entry(blocks._buf, at)
    if simple is not None:
        return _simple_entry(simple, blocks, archive, offset)
    paxed = headers.pax_path_entry(blocks._buf, at)
    if paxed is not None:  # a long name, as npm trees hold thousands
        return _simple_entry(paxed[0], blocks, archive, blocks._base + paxed[1])
    head = blocks.peek(_BLOCK)
    if len(head) != _BLOCK:
        return None
    header_at, pax = offset, None
    if head[156:157] == tarfile.XHDTYPE:
        own = _header(head)
        if own is None or not 0 <= own.size <= MAX_QUICK_PAX:
            return None
        padded = _padded(own.size)
        both = blocks.peek(_BLOCK + padded + _BLOCK)
        if len(both) != _BLOCK + padded + _BLOCK:
            return None
        pax = _pax_records(both[_BLOCK : _BLOCK + padded])
        if pax is None:
            return None
        header_at, head = offset + _BLOCK + padded, both[-_BLOCK:]
        if pax.keys() <= {"path"}:  # a long name, as npm trees hold thousands: the quick way too
            long_name = pax["path"].encode("utf-8", "surrogateescape") if "path" in pax else None
            simple = headers.plain_entry(head, 0, long_name)
            if simple is not None:
                return _simple_entry(simple, blocks, archive, header_at)
    if head[156:157] not in _PLAIN_TYPES:
        return None
    fields = _header(head)
    if fields is None:
        return None
    name, linkname, size = fields.name, fields.linkname, fields.size
    mtime: float = fields.mtime
    if pax is not None:  # tarfile's _apply_pax_info, for the fields an entry uses
        name = pax["path"].rstrip("/") if "path" in pax else name
        linkname = pax.get("linkpath", linkname)
        size = int(_pax_number(pax["size"], int)) if "size" in pax else size
        mtime = _pax_number(pax["mtime"], float) if "mtime" in pax else mtime
        if size < 0:  # tarfile's reading says what is wrong
            return None
    data_at = header_at + _BLOCK
    regular = fields.type in _REGULAR
    blocks.skip_to(data_at)
    archive.offset = data_at + (_padded(size) if regular else 0)
    return _make_entry(name, fields.type, fields.mode, size, linkname, mtime, blocks, data_at)


def _simple_entry(
    simple: tuple[str, bool, int, int, int], blocks: _Blocks, archive: _Archive, offset: int
) -> FileEntry:
    """The entry of a header ``headers.plain_entry`` read (a file or directory written the usual
    way, a plain name) at ``offset``: a third of the time of the general reading, on 70,000
    headers a layer."""
    path, directory, mode, size, mtime = simple
    data_at = offset + _BLOCK
    blocks._pos = data_at - blocks._base  # ``skip_to``, past a header that is at hand
    if directory:
        archive.offset = data_at
        return FileEntry(path, EntryKind.DIR, mode, 0)
    archive.offset = data_at + _padded(size)
    opener = lambda: _Member(blocks, data_at, size)  # noqa: E731
    start = data_at - blocks._base
    data = blocks._buf[start : start + size] if start + size <= len(blocks._buf) else None
    # by position: half the time of keywords, on 70,000 entries a layer
    return FileEntry(path, EntryKind.FILE, mode, size, "", opener, mtime, data)  # type: ignore[arg-type]


def _pax_records(data: bytes) -> dict[str, str] | None:
    """The records of a pax header's (padded) data, read as tarfile's ``_proc_pax`` reads them;
    None when anything would make tarfile read them differently (a charset record, GNU sparse
    records, a length that does not end on its newline), which tarfile then reads itself."""
    if b"hdrcharset=" in data:
        return None
    records: dict[str, str] = {}
    pos = 0
    while (match := _PAX_RECORD.match(data, pos)) is not None:
        digits, raw_keyword = match.groups()
        if len(digits) > 9:
            return None
        length = int(digits)
        end = pos + length
        value_at = match.end(2) + 1
        if length == 0 or end > len(data) or value_at > end - 1 or data[end - 1] != 0x0A:
            return None
        keyword = raw_keyword.decode("utf-8", "surrogateescape")
        if keyword.startswith("GNU.sparse"):
            return None
        if keyword in _PAX_APPLIED:
            records[keyword] = data[value_at : end - 1].decode("utf-8", "surrogateescape")
        pos = end
    return records


def _pax_number(value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:  # as tarfile: a number it cannot read is 0
        return 0


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


def _entry(member: tarfile.TarInfo, archive: _Archive, blocks: _Blocks) -> FileEntry:
    """The entry of a member tarfile read."""
    if member.size < 0:  # base-256 sizes can be negative; the next header would be misplaced
        raise blocks.damage(f"{_display(normalise(member.name))}: negative size in its tar header", member.offset)
    if member.sparse is not None and member.isreg():  # holes read as zeros, as tarfile reads them
        entry = _make_entry(member.name, tarfile.REGTYPE, member.mode, member.size, "", member.mtime, blocks, 0)
        opener = lambda m=member: tarfile.ExFileObject(archive, m)  # type: ignore[arg-type,misc]  # noqa: E731
        return entry if entry.kind is not EntryKind.FILE else entry._replace(open=opener)
    kind = tarfile.REGTYPE if member.isreg() else member.type
    return _make_entry(
        member.name, kind, member.mode, member.size, member.linkname, member.mtime, blocks, member.offset_data
    )


def _make_entry(
    name: str, kind: bytes, mode: int, size: int, linkname: str, mtime: float, blocks: _Blocks, data_at: int
) -> FileEntry:
    path = _display(normalise(name))
    marker = classify_whiteout(path)
    if marker is not None:
        return FileEntry(marker[1], marker[0], mode, 0)
    if kind in _REGULAR:
        opener = lambda: _Member(blocks, data_at, size)  # noqa: E731
        return FileEntry(path, EntryKind.FILE, mode, size, open=opener, mtime=_whole_seconds(mtime))  # type: ignore[arg-type]
    if kind == tarfile.DIRTYPE:
        return FileEntry(path, EntryKind.DIR, mode, 0)
    if kind == tarfile.SYMTYPE:
        return FileEntry(path, EntryKind.SYMLINK, mode, 0, _display(linkname))
    if kind == tarfile.LNKTYPE:
        return FileEntry(path, EntryKind.HARDLINK, mode, 0, _display(normalise(linkname)))
    return FileEntry(path, EntryKind.OTHER, mode, 0)


def _whole_seconds(mtime: object) -> int:
    """A member's time in whole seconds; 0 for one that is not a finite number (a pax header's
    ``nan`` or ``inf``)."""
    return int(mtime) if isinstance(mtime, (int, float)) and math.isfinite(mtime) else 0


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


class _Header(NamedTuple):
    """What an entry needs of a header block."""

    name: str
    """As tarfile gives it: a ustar prefix joined, a directory's trailing slashes gone."""
    mode: int
    size: int
    mtime: int
    chksum: int
    type: bytes
    linkname: str


_LAYOUT = struct.Struct("100s8s8s8s12s12s8sc100s8x32s32s8s8s155s12x")
"""name, mode, uid, gid, size, mtime, chksum, type, linkname, (magic, version), uname, gname,
devmajor, devminor, prefix: one C call splits a header block."""


CANONICAL_NUMBERS = re.compile(rb"[0-7]{7}\0[0-7]{7}\0[0-7]{7}\0[0-7]{11}\0[0-7]{11}\0[0-7]{6}\0 ")
"""Mode, uid, gid, size, mtime and checksum (bytes 100-156) as Go, Docker and GNU tar write them:
zero-padded octal, NUL-terminated, the checksum followed by a space."""
_CANONICAL_DEVICES = re.compile(rb"(?:\0{8}|[0-7]{7}\0){2}")
"""Device major and minor (bytes 329-345): empty, or written like the numbers above."""


def _header(buf: bytes) -> _Header | None:
    """A header block read the quick way when it is the plain kind nearly every layer is made of:
    octal numbers, an unsigned checksum that holds, no old GNU sparse map. None for anything else
    (base-256 numbers, a signed checksum, a bad one, an empty block), which tarfile's own reading
    then decides on. Every number is read, as tarfile reads them all, so that a header tarfile
    rejects is rejected here too; the fields are the same either way (``tests/test_tarheader.py``).
    Numbers written the usual way are read straight off their digits (a third of the time)."""
    if len(buf) != _BLOCK:
        return None
    if CANONICAL_NUMBERS.fullmatch(buf, 100, 156) and _CANONICAL_DEVICES.fullmatch(buf, 329, 345):
        kind = buf[156:157]
        checksum = int(buf[148:154], 8)
        if kind == _SPARSE or checksum != unsigned_checksum(buf):
            return None
        end = buf.find(b"\0", 0, 100)
        text = buf[: 100 if end < 0 else end].decode(_Archive.encoding, _Archive.errors)
        kind_read = tarfile.DIRTYPE if kind == tarfile.AREGTYPE and text.endswith("/") else kind
        if kind_read == tarfile.DIRTYPE:
            text = text.rstrip("/")
        if buf[345] and kind not in tarfile.GNU_TYPES:
            text = _text(buf[345:500]) + "/" + text
        mode, size, mtime = int(buf[100:107], 8), int(buf[124:135], 8), int(buf[136:147], 8)
        return _Header(text, mode, size, mtime, checksum, kind_read, _text(buf[157:257]))
    name, mode, uid, gid, size, mtime, chksum, kind, linkname, _, _, devmajor, devminor, prefix = _LAYOUT.unpack(buf)
    if kind == _SPARSE or (
        mode[0] | uid[0] | gid[0] | size[0] | mtime[0] | chksum[0] | devmajor[0] | devminor[0]
    ) & 0x80:
        return None
    try:
        checksum = octal_number(chksum)
        if checksum != unsigned_checksum(buf):
            return None
        for field in (uid, gid, devmajor, devminor):
            octal_number(field)
        numbers = octal_number(mode), octal_number(size), octal_number(mtime)
    except ValueError:  # not octal, not ASCII
        return None
    text = _text(name)
    kind_read = tarfile.DIRTYPE if kind == tarfile.AREGTYPE and text.endswith("/") else kind
    if kind_read == tarfile.DIRTYPE:
        text = text.rstrip("/")
    if prefix[0] and kind not in tarfile.GNU_TYPES:
        text = _text(prefix) + "/" + text
    return _Header(text, *numbers, checksum, kind_read, _text(linkname))


_SPARSE = tarfile.GNUTYPE_SPARSE


class _TarInfo(tarfile.TarInfo):
    """tarfile's header, read by ``_header`` when it can be (tarfile's version is a dozen Python
    calls per header, and a layer has 70,000 headers); by tarfile's own reading otherwise."""

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:  # type: ignore[override]
        header = _header(buf) if encoding == _Archive.encoding and errors == _Archive.errors else None
        if header is None:
            return super().frombuf(buf, encoding, errors)
        obj = cls()
        obj.name, obj.mode, obj.size, obj.mtime = header.name, header.mode, header.size, header.mtime
        obj.chksum, obj.type, obj.linkname = header.chksum, header.type, header.linkname
        obj.uid, obj.gid = octal_number(buf[108:116]), octal_number(buf[116:124])
        obj.uname, obj.gname = _text(buf[265:297]), _text(buf[297:329])
        obj.devmajor, obj.devminor = octal_number(buf[329:337]), octal_number(buf[337:345])
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
def _text(field: bytes) -> str:
    """A text field as tarfile reads it from ``_Archive`` (UTF-8, other bytes kept as surrogates)."""
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode(_Archive.encoding, _Archive.errors)


def each_member(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a tar read in order, without the list tarfile keeps of every header it has
    read (its undocumented ``members``): an archive of a million files would stay in memory."""
    while (member := tar.next()) is not None:
        tar.members.clear()  # type: ignore[attr-defined]
        yield member


def _display(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
