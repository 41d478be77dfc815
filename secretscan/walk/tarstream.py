"""Stream the entries of a tar archive in one pass, never extracting and never seeking."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO, cast

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
    """
    tail = _Tail(stream)
    try:
        tar = tarfile.open(  # noqa: SIM115 - the stream belongs to the caller
            fileobj=cast(BinaryIO, tail), mode="r|", encoding="utf-8", errors="surrogateescape", tarinfo=_TarInfo
        )
    except tarfile.ReadError as exc:
        raise tail.damage(str(exc), 0) from None
    try:
        yield from _entries(tar, tail)
    except TarDamage:
        raise
    except tarfile.ReadError as exc:
        raise tail.damage(str(exc), tar.offset) from None
    # tarfile ends the iteration quietly at a header it cannot parse (bad checksum, garbage), as if
    # the archive ended there: a hostile layer could hide everything behind one bad block. A real
    # end of archive is a zero block; anything else is damage.
    stop = tail.block(tar.offset)
    if stop is not None and stop.strip(b"\0"):
        raise tail.damage(f"invalid tar header at offset {tar.offset}: the entries after it cannot be read", tar.offset)


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
    """The checksum a tar header should carry: its bytes summed, the checksum field counted as spaces."""
    return 256 + sum(header) - sum(header[148:156])


def octal_number(field: bytes) -> int:
    """A tar header's octal number field, read as tarfile reads it (ValueError if it is not one)."""
    end = field.find(b"\0")
    digits = (field if end < 0 else field[:end]).strip()
    if not digits.isascii():
        raise ValueError("not ASCII")
    return int(digits or b"0", 8)


def _text(field: bytes, encoding: str, errors: str) -> str:
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode(encoding, errors)


def each_member(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of a tar read in order, without the list tarfile keeps of every header it has
    read (its undocumented ``members``): an archive of a million files would stay in memory."""
    while (member := tar.next()) is not None:
        tar.members.clear()  # type: ignore[attr-defined]
        yield member


def _entries(tar: tarfile.TarFile, tail: _Tail) -> Iterator[FileEntry]:
    for member in each_member(tar):
        path = _display(normalise(member.name))
        if member.size < 0:  # base-256 sizes can be negative; tarfile then misplaces the next header
            raise tail.damage(f"{path}: negative size in its tar header", member.offset)
        marker = classify_whiteout(path)
        if marker is not None:
            yield FileEntry(marker[1], marker[0], member.mode, 0)
        elif member.isreg():
            yield FileEntry(
                path,
                "file",
                member.mode,
                member.size,
                open=lambda m=member: tar.extractfile(m),  # type: ignore[misc, arg-type]
                mtime=int(member.mtime) if isinstance(member.mtime, (int, float)) else 0,
            )
        elif member.isdir():
            yield FileEntry(path, "dir", member.mode, 0)
        elif member.issym():
            yield FileEntry(path, "symlink", member.mode, 0, _display(member.linkname))
        elif member.islnk():
            yield FileEntry(path, "hardlink", member.mode, 0, _display(normalise(member.linkname)))
        else:
            yield FileEntry(path, "other", member.mode, 0)


class _Tail:
    """A read-only stream that remembers its last bytes, to look at the block where tarfile stopped."""

    KEEP = 64 * 1024

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._kept = bytearray()
        self._kept_from = 0  # stream offset of _kept[0]
        self.failed = False
        """Reading ``inner`` raised: the damage is upstream, not in the archive."""

    def read(self, n: int = -1) -> bytes:
        try:
            # what is at hand, not a wait for all n (tarfile asks for 10 KiB blocks): a file that
            # has fully arrived is scanned even if the stream then stalls
            data = read_some(self._inner, n) if n > 0 else self._inner.read(n)
        except Exception:
            self.failed = True
            raise
        self._kept += data
        if len(self._kept) > 2 * self.KEEP:
            drop = len(self._kept) - self.KEEP
            del self._kept[:drop]
            self._kept_from += drop
        return data

    def block(self, offset: int) -> bytes | None:
        """The 512 bytes at ``offset``, if still kept (None if they were never read or are gone)."""
        start = offset - self._kept_from
        if start < 0 or start + 512 > len(self._kept):
            return None
        return bytes(self._kept[start : start + 512])

    def damage(self, message: str, offset: int) -> tarfile.ReadError:
        """The error for a header at ``offset`` that cannot be parsed: ``TarDamage`` with the bytes
        from there on, or, when the stream under the archive failed, a plain ReadError."""
        if self.failed:
            return tarfile.ReadError(message)
        start = min(max(0, offset - self._kept_from), len(self._kept))
        return TarDamage(message, offset, prefixed(bytes(self._kept[start:]), self._inner))


def _display(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
