"""The quick tar header reading gives exactly what tarfile's own gives, header for header: the same
fields, or the same error (it hands anything unusual to tarfile)."""

from __future__ import annotations

import os
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from secretscan.walk.tarstream import _TarInfo

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
FIELDS = (
    "name",
    "mode",
    "uid",
    "gid",
    "size",
    "mtime",
    "chksum",
    "type",
    "linkname",
    "uname",
    "gname",
    "devmajor",
    "devminor",
)


def _read(cls: type[tarfile.TarInfo], buf: bytes) -> object:
    try:
        info = cls.frombuf(buf, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        return type(exc)
    return tuple(getattr(info, f) for f in FIELDS)


def _header(name: str, kind: bytes, size: int, prefix: str, fmt: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime, info.mode = kind, size, 1700000000, 0o640
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "target/" + name
    buf = info.tobuf(fmt, "utf-8", "surrogateescape")
    header = bytearray(buf[-512:] if fmt != tarfile.USTAR_FORMAT else buf[:512])
    if prefix and fmt == tarfile.USTAR_FORMAT:
        header[345 : 345 + len(prefix)] = prefix.encode()[:155]
        header[148:156] = b"        "
        header[148:156] = b"%06o\0 " % (sum(header) & 0o777777)
    return bytes(header)


names = st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=90)
kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, b"7", b"S"]
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    names,
    kinds,
    st.integers(0, 8**11 - 1),
    st.sampled_from(["", "usr/lib", "a" * 150]),
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT]),
)
def test_well_formed_headers_read_the_same(name: str, kind: bytes, size: int, prefix: str, fmt: int) -> None:
    try:
        buf = _header(name, kind, size, prefix, fmt)
    except ValueError:  # a name ustar cannot hold
        return
    assert _read(_TarInfo, buf) == _read(tarfile.TarInfo, buf)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    names, kinds, st.integers(0, 8**11 - 1), st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), max_size=6)
)
def test_damaged_headers_read_the_same(name: str, kind: bytes, size: int, damage: list[tuple[int, int]]) -> None:
    try:
        header = bytearray(_header(name, kind, size, "", tarfile.GNU_FORMAT))
    except ValueError:
        return
    for at, value in damage:  # bytes changed anywhere: numbers, checksum, base-256 markers, names
        header[at] = value
    if damage and damage[0][0] % 3 == 0:  # and, a third of the time, a checksum that holds again
        header[148:156] = b"        "
        header[148:156] = b"%06o\0 " % (sum(header) & 0o777777)
    assert _read(_TarInfo, bytes(header)) == _read(tarfile.TarInfo, bytes(header))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_arbitrary_blocks_read_the_same(buf: bytes) -> None:
    assert _read(_TarInfo, buf) == _read(tarfile.TarInfo, buf)


def test_an_empty_block_and_a_base256_size_go_to_tarfile() -> None:
    assert _read(_TarInfo, b"\0" * 512) == tarfile.EOFHeaderError
    info = tarfile.TarInfo("big")
    info.size = 8**11 + 5  # past what octal holds: GNU writes base-256
    buf = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    assert buf[124] & 0x80 and _read(_TarInfo, buf) == _read(tarfile.TarInfo, buf)
