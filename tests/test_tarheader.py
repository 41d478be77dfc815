"""The quick tar header reading gives exactly what tarfile's own gives, header for header: the same
fields, or the same error (it hands anything unusual to tarfile)."""

from __future__ import annotations

import io
import os
import tarfile
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretscan.walk.tarstream import TarDamage, _Blocks, _TarInfo, iter_tar

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


# ----------------------------------------------------------------------------- whole archives


class _Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes a read, as a slow registry does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def _walk(data: bytes, step: int, read_files: bool) -> list[tuple]:
    out = []
    for entry in iter_tar(_Trickle(data, step)):  # type: ignore[arg-type]
        content = None
        if entry.open is not None and read_files:
            with entry.open() as f:
                content = f.read()
            assert entry.data is None or entry.data == content  # the bytes the walk had at hand are the file's
        out.append((entry.path, entry.kind, entry.mode, entry.size, entry.link_target, content))
    return out


def _tarfile_view(data: bytes, read_files: bool) -> list[tuple]:
    """What tarfile itself reads from the same archive, in the walker's terms."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            content = tar.extractfile(m).read() if m.isreg() and read_files else None  # type: ignore[union-attr]
            kind = "file" if m.isreg() else "dir" if m.isdir() else "symlink" if m.issym() else "hardlink"
            link = m.linkname if m.issym() else "/" + m.linkname if m.islnk() else ""  # a hard link names a member
            size = m.size if m.isreg() else 0
            out.append(("/" + m.name.rstrip("/"), kind, m.mode, size, link, content))
    return out


def _typed(info: tarfile.TarInfo, kind: str, size: int, link: str) -> tarfile.TarInfo:
    """``info`` as a file of ``size`` bytes, or a directory, symlink or hard link (to ``link``)."""
    info.mtime, info.mode = 1_700_000_000, 0o640
    if kind == "file":
        info.size = size
    else:
        info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
        info.linkname = "" if kind == "dir" else link
    return info


def _archive(fmt: int, members: list[tuple[str, str, int, str]]) -> bytes | None:
    """(name, kind, size, link) members in ``fmt``, the i-th file's bytes a pattern of its own;
    None when the format cannot hold a name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i, (name, kind, size, link) in enumerate(members):
            content = io.BytesIO(bytes((i * 7 + j) % 251 for j in range(size))) if kind == "file" else None
            try:
                tar.addfile(_typed(tarfile.TarInfo(name), kind, size, link), content)
            except ValueError:  # a name the format cannot hold
                return None
    return buf.getvalue()


members = st.lists(
    st.tuples(
        st.text("abcé_-", min_size=1, max_size=12),
        st.integers(0, 40),  # name repeats: short names, and names past ustar's 100 and 255 bytes
        st.sampled_from(["file", "dir", "symlink", "hardlink"]),
        st.integers(0, 5000),
    ),
    max_size=12,
)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    members,
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
    st.sampled_from([1, 7, 512, 4096, 1 << 20]),
    st.sampled_from([600, 4096, 1 << 20]),
    st.booleans(),
)
def test_archives_walk_as_tarfile_reads_them(spec: list, fmt: int, step: int, piece: int, read_files: bool) -> None:
    """Every format tarfile writes (ustar, GNU long names, pax), through a stream that trickles
    and pieces smaller than a file: the same entries, modes, sizes, links and bytes as tarfile's
    (read, or at hand when the piece held them)."""
    named = [
        (f"d{i}/" + (stem * (repeat + 1))[:300], kind, size, f"target/{stem}")
        for i, (stem, repeat, kind, size) in enumerate(spec)
    ]
    data = _archive(fmt, named)
    if data is None:
        return
    default, _Blocks.PIECE = _Blocks.PIECE, piece
    try:
        walked = _walk(data, step, read_files)
    finally:
        _Blocks.PIECE = default
    expected = _tarfile_view(data, read_files)
    assert walked == expected


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text("abc_-.", min_size=1, max_size=12),
            st.integers(0, 40),
            st.sampled_from(["file", "file", "file", "dir", "symlink", "hardlink"]),
            st.integers(0, 3000),
        ),
        max_size=40,
    ),
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
    st.sampled_from([4096, 1 << 20]),
    st.sampled_from([1024, 8192, 1 << 20]),
    st.integers(0, 3),
)
def test_members_taken_in_c_are_the_archive_s_and_the_walk_goes_on_after_them(
    spec: list, fmt: int, step: int, piece: int, seed: int
) -> None:
    """``headers.pass_members``, as ``iter_tar`` calls it (``passing``), taking the members whose
    name it is told to let pass: each member is either taken there, with its own bytes, or walked
    as an entry, once, whatever the format, the names' lengths and where the pieces end."""
    named = [
        (f"d{i % 3}/" + (stem * (repeat + 1))[:300] + f"-{i}", kind, size, f"target/{stem}")
        for i, (stem, repeat, kind, size) in enumerate(spec)
    ]
    data = _archive(fmt, named)
    if data is None:
        return
    view = _tarfile_view(data, True)
    passed, left = _walk_passing(data, step, piece, seed)
    content = {path: data for path, _, _, _, _, data in view}
    kinds = {path: kind for path, kind, *_ in view}
    assert all(kinds[path] == kind and (kind == "dir" or content[path] == taken) for path, kind, taken in passed)
    assert sorted([p for p, _, _ in passed] + left) == sorted(kinds)  # every member once, taken or walked


def test_a_run_of_plain_members_is_taken_in_c() -> None:
    """The property above is not empty: a layer of small files and directories is nearly all taken."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(300):
            info = tarfile.TarInfo(f"pkg/lib{i % 5}/" + "m" * (i % 150) + f"-{i}.js")
            info.size = i
            tar.addfile(info, io.BytesIO(b"x" * i))
    passed, left = _walk_passing(buf.getvalue(), 1 << 20, 1 << 20, seed=-1)
    assert len(passed) >= 290 and len(passed) + len(left) == 300


class _Passing:
    """What ``headers.pass_members`` asks of ``walk.layer._Members``, letting files pass by their
    name alone (whatever their place or bytes), and keeping the bytes it was shown."""

    def __init__(self, seed: int) -> None:
        self.places: dict = {}
        self.names: dict = {}
        self.present: dict = {}
        self.sizes: dict = {}
        self.first_bytes = bytes(256)
        self.largest = 1 << 30
        self.dir_kind, self.file_kind = "dir", "file"
        self.recorded = object()  # never a directory's answer here: ``odd`` decides
        self.vouches = None
        self.seen: list[bytes] = []
        self._seed = seed

    def place_of(self, path: str, directory: str) -> _Passing:
        self.places[directory] = self
        return self

    def plain_of(self, path: str, tail: str) -> bool:
        """Three names in four (all of them for a seed below 0)."""
        self.names[tail] = self._seed < 0 or zlib.crc32(f"{tail}{self._seed}".encode()) % 4 != 0
        return self.names[tail]

    def odd(self, layer: int, mtime: int, mode: int) -> None:
        return None

    def finds(self, data: bytes) -> bool:
        self.seen.append(data)
        return False


def _walk_passing(data: bytes, step: int, piece: int, seed: int) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """(path, kind, bytes) of the members taken in C, and the paths walked as entries."""
    from secretscan.walk import headers

    taker = _Passing(seed)
    taken: list[tuple[str, str, bytes]] = []

    def passing(buf: bytes, at: int) -> int:
        before, seen = set(taker.present), len(taker.seen)
        stop, files, total = headers.pass_members(buf, at, 7, taker)
        new = [(path, kind) for path, kind in taker.present.items() if path not in before]
        shown = iter(taker.seen[seen:])
        taken.extend((path, kind, next(shown) if kind == "file" else b"") for path, kind in new)
        assert files == sum(kind == "file" for _, kind in new) and total == sum(
            len(t) for *_, t in taken[-len(new) :] if new
        )
        return stop

    default, _Blocks.PIECE = _Blocks.PIECE, piece
    try:
        left = [entry.path for entry in iter_tar(_Trickle(data, step), passing)]  # type: ignore[arg-type]
    finally:
        _Blocks.PIECE = default
    return taken, left


class _Endless(io.RawIOBase):
    """``head``, then zeros without end (a decompression bomb's output), counting what was read."""

    def __init__(self, head: bytes) -> None:
        self._head, self.served = head, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        chunk = self._head[self.served : self.served + n]
        buffer[: len(chunk)] = chunk
        buffer[len(chunk) : n] = bytes(n - len(chunk))
        self.served += n
        return n


def test_a_pax_header_claiming_gigabytes_is_damage_not_a_read_of_gigabytes() -> None:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, 4 << 30
    stream = _Endless(info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape"))
    with pytest.raises(TarDamage, match="extended header larger than"):
        list(iter_tar(stream))  # type: ignore[arg-type]
    assert stream.served < 2 * 1024 * 1024


def test_a_large_pax_header_through_a_trickling_stream_is_read_in_linear_time() -> None:
    """A 15 MiB pax record handed out 256 bytes a read: the pieces are joined once (joining them
    as they came is 60,000 copies of up to 15 MiB)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/notes.txt")
        info.pax_headers = {"comment": "x" * (15 << 20)}
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    began = time.monotonic()
    walked = _walk(buf.getvalue(), 256, read_files=True)
    assert time.monotonic() - began < 60  # linear: a second, even on a loaded machine; quadratic: hours
    assert [(path, content) for path, _, _, _, _, content in walked] == [("/app/notes.txt", b"hello")]


# ----------------------------------------------------------------------------- pax headers, the quick way

PAX_KEYWORDS = ["path", "linkpath", "mtime", "size", "uid", "uname", "atime", "comment", "SCHILY.xattr.user.a"]
PAX_KEYWORDS += ["GNU.sparse.major", "GNU.sparse.name", "hdrcharset", "path ", "pa=th"]
pax_values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=24),
    st.sampled_from(["0", "-1", "nan", "inf", "1e3", "1700000000.75", "9" * 30, "12", "700", "dir/", "BINARY"]),
)
pax_records = st.lists(
    st.tuples(st.sampled_from(PAX_KEYWORDS), pax_values, st.sampled_from([0, 0, 0, -2, -1, 1, 5])), max_size=4
)


def _pax_member(records: list, kind: str, size: int, index: int) -> bytes:
    """A pax header of the given records (each length off by its skew), then a ustar member."""
    data = b""
    for keyword, value, skew in records:
        body = f" {keyword}={value}\n".encode("utf-8", "surrogateescape")
        length = len(body) + len(str(len(body)))
        length += len(str(length)) - len(str(len(body)))
        data += str(length + skew).encode() + body
    out = b""
    if records:
        pax = tarfile.TarInfo("././@PaxHeader")
        pax.type, pax.size = tarfile.XHDTYPE, len(data)
        out += pax.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape") + data + bytes(-len(data) % 512)
    info = _typed(tarfile.TarInfo(f"m{index}/" + ("f" if kind == "file" else "x")), kind, size, f"t{index}")
    content = bytes((index * 7 + j) % 251 for j in range(info.size))
    return out + info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape") + content + bytes(-len(content) % 512)


def _outcome(data: bytes) -> tuple[list[tuple], str | None]:
    entries = []
    try:
        for e in iter_tar(io.BytesIO(data)):
            content = None
            if e.open is not None:
                with e.open() as f:
                    content = f.read()
            entries.append((e.path, e.kind, e.mode, e.size, e.link_target, e.mtime, content))
    except Exception as exc:  # noqa: BLE001 - the error is part of what both readings must agree on
        return entries, f"{type(exc).__name__}: {exc}"
    return entries, None


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(
        st.tuples(pax_records, st.sampled_from(["file", "dir", "symlink", "hardlink"]), st.integers(0, 1100)),
        min_size=1,
        max_size=4,
    )
)
def test_pax_headers_read_the_quick_way_read_as_tarfile_reads_them(spec: list) -> None:
    """Pax records of every kind (names, times, sizes, numbers tarfile cannot read, charsets,
    GNU sparse records, lengths that do not add up) before files, directories and links: the
    walk gives the same entries, times, bytes and errors with the quick reading as with tarfile's
    alone."""
    from unittest import mock

    from secretscan.walk import tarstream

    data = b"".join(_pax_member(records, kind, size, i) for i, (records, kind, size) in enumerate(spec))
    data += bytes(1024)
    quick = _outcome(data)
    with mock.patch.object(tarstream, "_quick_entry", return_value=None):
        assert _outcome(data) == quick


def test_common_pax_headers_take_the_quick_way() -> None:
    """What docker and npm layers hold (long paths, times with fractions, extended attributes)
    does not go through tarfile's reading at all."""
    from unittest import mock

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/node_modules/" + "deep/" * 30 + "index.js")
        info.pax_headers = {"mtime": "1700000000.25", "SCHILY.xattr.user.x": "1"}
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    read_by_tarfile: list[int] = []
    real = _TarInfo.fromtarfile

    def reading(archive: object) -> object:
        read_by_tarfile.append(archive.offset)  # type: ignore[attr-defined]
        return real(archive)  # type: ignore[arg-type]

    data = buf.getvalue()
    with mock.patch.object(_TarInfo, "fromtarfile", side_effect=reading):
        entries, error = _outcome(data)
    assert error is None
    [end] = read_by_tarfile  # only the zero block that ends the archive
    assert end > 512 and not data[end:].strip(b"\0")
    assert entries == [("/app/node_modules/" + "deep/" * 30 + "index.js", "file", 0o644, 3, "", 1700000000, b"abc")]


name_parts = st.sampled_from(
    ["usr", "lib", ".", "..", "", ".wh.x", ".wh..wh..opq", "a b", "é", "x.", "\\", "n.js", "node_modules" * 4]
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(name_parts, min_size=1, max_size=5),
            st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE]),
            st.sampled_from(["", "/", "//"]),
            st.sampled_from(["", "usr/share", "/abs", "a/./b/"]),
            st.sampled_from([tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_names_read_the_quick_way_read_as_tarfile_reads_them(spec: list) -> None:
    """Names with and without a ustar prefix or a pax header (long or non-ASCII names), with
    ``.``, ``..``, empty and backslash components, leading and trailing slashes, whiteouts, spaces
    and non-ASCII bytes, on files and directories: the walk gives the same paths, kinds and bytes
    with the quick reading as with tarfile's alone."""
    from unittest import mock

    from secretscan.walk import tarstream

    data = b""
    for index, (parts, kind, lead, prefix, fmt) in enumerate(spec):
        info = tarfile.TarInfo(lead + "/".join(parts))
        info.type, info.mtime, info.mode = kind, 1_700_000_000 + index, 0o644
        content = f"content {index}".encode() if kind != tarfile.DIRTYPE else b""
        info.size = len(content)
        try:
            header = bytearray(info.tobuf(fmt, "utf-8", "surrogateescape"))
        except ValueError:  # a name ustar cannot hold
            continue
        if prefix and fmt == tarfile.USTAR_FORMAT:
            header[345 : 345 + len(prefix)] = prefix.encode()
            header[148:156] = b"        "
            header[148:156] = b"%06o\0 " % (sum(header) & 0o777777)
        data += bytes(header) + content + bytes(-len(content) % 512)
    data += bytes(1024)
    quick = _outcome(data)
    with mock.patch.object(tarstream, "_quick_entry", return_value=None):
        assert _outcome(data) == quick


def _sample_tar() -> bytes:
    """Files, a directory, a link, long names (pax), a prefixed name: what the compiled reader meets."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, size in [
            ("app", tarfile.DIRTYPE, 0),
            ("app/a.txt", tarfile.REGTYPE, 700),
            ("app/node_modules/" + "deep/" * 25 + "i.js", tarfile.REGTYPE, 40),
            ("app/link", tarfile.SYMTYPE, 0),
            ("usr/lib/python3/site-packages/x-1.dist-info/RECORD", tarfile.REGTYPE, 30),
            ("b" * 99, tarfile.REGTYPE, 1),
        ]:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mtime = kind, size, 1_700_000_000
            if kind == tarfile.SYMTYPE:
                info.linkname = "a.txt"
            tar.addfile(info, io.BytesIO(b"x" * size) if size else None)
    return buffer.getvalue()


SAMPLE = _sample_tar()
with tarfile.open(fileobj=io.BytesIO(SAMPLE)) as _sample:
    SAMPLE_HEADERS = sorted({m.offset for m in _sample} | {m.offset_data - 512 for m in _sample})
"""Where the sample's headers start: pax headers and the members' own."""


def _members_from(data: bytes) -> list[tuple[int, tarfile.TarInfo]]:
    """(offset of the member's first header, member) as tarfile reads them, until it stops."""
    found = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:", ignore_zeros=False) as tar:
            while (member := tar.next()) is not None:
                found.append((member.offset, member))
    except (tarfile.TarError, EOFError):
        pass
    return found


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), max_size=6),
    st.one_of(st.sampled_from(SAMPLE_HEADERS), st.integers(-600, len(SAMPLE) + 600)),
)
def test_the_compiled_reader_on_damaged_headers_reads_what_tarfile_reads_or_declines(edits: list, at: int) -> None:
    """``walk.headers`` on an image's bytes, damaged anywhere, at any offset: an entry it gives is
    the one tarfile gives there, the members it walks past are tarfile's, and whatever the bytes,
    it answers (never an error, never a read past the buffer's end: the slice it is handed ends
    where the buffer does)."""
    from secretscan.provenance import collect
    from secretscan.walk import headers

    data = bytearray(SAMPLE)
    for position, value in edits:
        data[position] = value
    buf = bytes(data)
    entry = headers.plain_entry(buf, at)
    paxed = headers.pax_path_entry(buf, at)
    walked = headers.skip_plain(buf, at, len(buf), collect.NAME_ENDINGS, (collect.NAME_PART,))
    if not 0 <= at <= len(buf) - 512:
        assert entry is None and paxed is None and walked == (at, 0)
        return
    members = _members_from(buf[at:])
    for read in (entry, paxed[0] if paxed else None):
        if read is not None:
            assert members, read
            path, directory, mode, size, mtime = read
            first = members[0][1]
            assert path == "/" + first.name and directory == first.isdir() and mode == first.mode
            assert not directory and size == first.size and mtime == first.mtime or directory
    end, count = walked
    assert count >= 0 and end >= at
    if count:
        assert len(members) >= count
        following = members[count][0] if len(members) > count else None
        boundary = members[count - 1][1].offset_data + -(-members[count - 1][1].size // 512) * 512
        assert end - at == (following if following is not None else boundary)
