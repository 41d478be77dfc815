"""Git's object store, read from bytes: loose objects and pack files, deltas resolved.

``COPY . .`` carries ``.git`` into an image, and with it every committed version of every file and
every commit message. There the bytes are zlib streams (packs hold many, most of them deltas
against another object), so a secret deleted from the working tree, or only ever in history, is
invisible to a scan of plain bytes. This module turns those files back into the objects they hold:
blobs, commits and tags, each with its object id (``git show ID`` finds it again); trees name
files and are not searched.

Pure functions over bytes: the caller reads the file (bounded) and scans what comes out. Every
cost is bounded: a pack is read in one pass that finds each object's end by inflating it, then
each delta is rebuilt once, from its base, depth first (the way ``git index-pack`` does), so the
work is linear in what the objects inflate to; that total, the number of objects and the depth of
a delta chain are capped. Damage costs the object it is in (a pack's walk cannot go past a stream
it cannot inflate: the objects after it are lost, and their stored bytes are handed back for a
plain scan); what a limit stops is said in a ``Note``.
"""

from __future__ import annotations

import enum
import hashlib
import re
import struct
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Generator, Iterator
from dataclasses import dataclass

try:  # ISA-L's inflate: same API as zlib, about 2-3x faster on x86-64
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; kept working without it
    _inflate = zlib  # type: ignore[assignment,misc]

MAX_DELTA_DEPTH = 4095
"""The longest delta chain rebuilt: git's own cap (``pack.depth``), so any pack git writes is read
in full. A chain is rebuilt without holding its links, so depth costs time, not memory."""
_INFLATE_ERROR: type[Exception] = _inflate.error  # type: ignore[assignment]
_INFLATE_ERRORS = (zlib.error, _INFLATE_ERROR, ValueError, OverflowError)
_LOOSE_NAME = re.compile(r"(?:^|/)objects/([0-9a-f]{2})/([0-9a-f]{38}|[0-9a-f]{62})\Z")
_PACK_NAME = re.compile(r"(?:^|/)objects/pack/[^/]*\.pack\Z")
_SHA256_PACK_NAME = re.compile(r"/pack-[0-9a-f]{64}\.pack\Z")
_LOOSE_HEADER = re.compile(rb"(blob|tree|commit|tag) (0|[1-9][0-9]{0,19})\0")
_FIRST_STEP = 4096
"""Compressed bytes first fed to find an object's end; doubled until the stream ends. Small, so a
pack of many tiny objects costs no more than its size in copies (zlib copies what follows a
stream's end)."""


class GitFile(enum.Enum):
    LOOSE = "loose object"
    PACK = "pack"


class ObjectType(enum.IntEnum):
    """The type numbers a pack gives (a loose object names its type in words)."""

    COMMIT = 1
    TREE = 2
    BLOB = 3
    TAG = 4

    def __str__(self) -> str:
        return self.name.lower()


SEARCHED = frozenset({ObjectType.COMMIT, ObjectType.BLOB, ObjectType.TAG})
"""Trees hold file names, modes and ids only."""
_OFS_DELTA, _REF_DELTA = 6, 7


@dataclass(frozen=True, slots=True)
class GitObject:
    type: ObjectType
    oid: bytes
    """The object id (sha1, or sha256 in a sha256 repository), raw."""
    data: bytes
    """Its content, without the ``type size\\0`` header."""
    whole: bool = True
    """False: cut off by damage or a limit, its id taken from its file name, unchecked (two
    objects of one id are the same object only when both are whole)."""

    @property
    def label(self) -> str:
        """Its name inside the file that holds it, as a nested archive's member is named (so it
        shares that file's fate, package records and links): ``blob/3b18e512dba7…``."""
        return f"{self.type}/{self.oid.hex()}"


@dataclass(frozen=True, slots=True)
class Note:
    """Something in a git file that was not (fully) read."""

    reason: str | None
    """None: nothing to report (the file only looked like git, and is scanned as it is)."""
    plain_from: int | None = None
    """The file's stored bytes from this offset on were not read as objects: scan them as plain
    bytes (what only looked like a pack, or plain text appended to one, is not lost)."""


def kind_of(path: str, head: bytes) -> GitFile | None:
    """By path and by content: a file in a repository's ``objects/`` that starts as a zlib stream
    (a loose object) or as a version 2 or 3 pack. Anything else is not read as git."""
    if "objects/" not in path:  # asked of every file: the common answer first
        return None
    if _LOOSE_NAME.search(path):
        return GitFile.LOOSE if _is_zlib(head) else None
    if _PACK_NAME.search(path) and head[:4] == b"PACK" and head[4:8] in (b"\0\0\0\2", b"\0\0\0\3"):
        return GitFile.PACK
    return None


def _is_zlib(head: bytes) -> bool:
    """RFC 1950: deflate with a window of at most 32 KiB, no preset dictionary, header check."""
    return (
        len(head) >= 2
        and head[0] & 0x0F == 8
        and head[0] >> 4 <= 7
        and not head[1] & 0x20
        and ((head[0] << 8) | head[1]) % 31 == 0
    )


# ----------------------------------------------------------------------------------- loose objects


def read_loose(path: str, data: bytes, *, max_bytes: int) -> Iterator[GitObject | Note]:
    """The object in a loose object file, with the id its bytes hash to (or, cut off, the one its
    path gives: ``objects/ab/cdef…``). It is held in memory whole up to ``max_bytes`` inflated:
    past that, the part within is searched and a note says so. A file that does not inflate to a
    git object header is handed back whole, quietly, for a plain scan: it only looked like one."""
    named = _LOOSE_NAME.search(path)
    if named is None:
        yield Note(None, plain_from=0)
        return
    d = _inflate.decompressobj()
    error, after = "", 0
    try:
        out = d.decompress(data, max_bytes + 1)
        if not d.eof and len(out) <= max_bytes:
            error = "the stream ends early (truncated)"
        after = len(d.unused_data) if d.eof else 0
    except _INFLATE_ERRORS as exc:
        out, error = b"", f"{type(exc).__name__}: {str(exc)[:120]}"
    header = _LOOSE_HEADER.match(out[:32])
    if header is None:  # not known to be git: scanned as any file is
        yield Note(None, plain_from=0)
        return
    kind = ObjectType[header[1].decode().upper()]
    size = int(header[2])
    if after:
        yield Note(f"{after} bytes after the git {kind}'s stream: scanned as plain bytes", plain_from=len(data) - after)
    content = out[header.end() : max_bytes]
    if len(out) > max_bytes:
        yield Note(
            f"git {kind} inflates to more than {max_bytes} bytes (max_nested_bytes or "
            "max_nested_uncompressed_bytes): the part within it was scanned, the rest not"
        )
    elif error:
        yield Note(f"git {kind} unreadable ({error}): scanned up to the damage")
    elif len(content) != size:
        yield Note(f"git {kind} holds {len(content)} bytes, not the {size} its header declares: scanned as it is")
    else:  # whole: its id is what its bytes hash to (a file name can lie)
        digest = hashlib.sha256 if len(named[2]) == 62 else hashlib.sha1
        if kind in SEARCHED:
            yield GitObject(kind, digest(out).digest(), content)
        return
    if kind in SEARCHED:
        yield GitObject(kind, bytes.fromhex(named[1] + named[2]), content, whole=False)


# ------------------------------------------------------------------------------------------- packs


class _Damage(Exception):
    """The pack cannot be walked past this point."""


class _OverBudget(Exception):
    """Reading on would inflate more than the caller allows."""


class _BadDelta(Exception):
    """One delta cannot be applied to its base: that object (and what builds on it) is lost."""


class _TooLarge(Exception):
    """A delta's result would be larger than an object may be to be held."""


class _Budget:
    """Bytes a pack may still inflate or rebuild."""

    def __init__(self, total: int) -> None:
        self.total = self.left = total

    def take(self, n: int, what: str) -> None:
        if n > self.left:
            raise _OverBudget(what)
        self.left -= n


def read_pack(
    path: str,
    data: bytes,
    *,
    max_objects: int,
    max_bytes: int,
    max_object: int,
    max_depth: int = MAX_DELTA_DEPTH,
) -> Iterator[GitObject | Note]:
    """The blobs, commits and tags of a pack file, deltas rebuilt. At most ``max_objects`` objects
    are read and ``max_bytes`` inflated or rebuilt in all (a delta's instructions count twice:
    they are inflated once to find where they end and once to be applied); an object is held in
    memory whole (a delta needs its base's bytes at hand) up to ``max_object`` bytes, a larger one
    is passed over. A sha256 repository's pack is told by its name (``pack-`` and 64 hex digits):
    a pack's header does not say."""
    id_len = 32 if _SHA256_PACK_NAME.search(path) else 20
    reader = _PackReader(data, id_len, max_objects, _Budget(max_bytes), max_object, max_depth)
    yield from reader.read()


class _PackReader:
    """One pack's index, in flat arrays (some 60 bytes an object): a pack may hold millions."""

    def __init__(
        self, data: bytes, id_len: int, max_objects: int, budget: _Budget, max_object: int, max_depth: int
    ) -> None:
        self.data, self.view = data, memoryview(data)
        self.id_len, self.max_objects, self.max_object, self.max_depth = id_len, max_objects, max_object, max_depth
        self.hash = hashlib.sha256 if id_len == 32 else hashlib.sha1
        self.budget = budget
        self.offsets = array("Q")
        """Where each object's header starts (ascending: the pack is walked in order)."""
        self.starts, self.ends, self.sizes = array("Q"), array("Q"), array("Q")
        """Each object's zlib stream, and the size it inflates to."""
        self.types = bytearray()
        """Pack type numbers; 0: unusable (damaged, or too large to hold)."""
        self.bases = array("q")
        """OFS_DELTA: the base object's index; -1 otherwise."""
        self.ref_bases: dict[int, bytes] = {}
        """REF_DELTA: object index -> base id."""
        self.ids = bytearray()
        """``id_len`` bytes an object: its id once known, zeros before."""
        self.bad_deltas = 0
        self.too_large = 0

    # ------------------------------------------------------------------ pass 1: walk, index, roots

    def read(self) -> Iterator[GitObject | Note]:
        data = self.data
        if len(data) < 12 or data[:4] != b"PACK" or data[4:8] not in (b"\0\0\0\2", b"\0\0\0\3"):
            yield Note("not a git pack (no PACK header of version 2 or 3): scanned as plain bytes", plain_from=0)
            return
        (claimed,) = struct.unpack(">I", data[8:12])
        wanted = min(claimed, self.max_objects)
        if claimed > wanted:
            yield Note(
                f"git pack of {claimed} objects, over max_git_objects ({self.max_objects}): the first {wanted} read"
            )
        pos = 12
        try:
            for _ in range(wanted):
                pos = yield from self._walk_one(pos)
        except _Damage as exc:
            yield Note(
                f"git pack unreadable at offset {pos}, object {len(self.offsets) + 1} of {claimed} ({exc}): the "
                "objects before it were read, its bytes from there on scanned as plain bytes",
                plain_from=pos,
            )
        except _OverBudget as exc:
            yield self._over(exc, "the rest of this pack was not read")
            return
        else:
            extra = len(data) - pos - self.id_len
            if extra > 0 and wanted == claimed:
                yield Note(
                    f"{extra} bytes after the git pack's last object and checksum: scanned as plain bytes",
                    plain_from=pos + self.id_len,
                )
        try:
            yield from self._rebuild()
        except _OverBudget as exc:
            yield self._over(exc, "the deltas not yet rebuilt were not read")
        if self.too_large:
            yield Note(
                f"{_count(self.too_large, 'git object')} larger than max_nested_bytes ({self.max_object}), "
                "which a git object is held whole up to: not scanned"
            )

    def _over(self, exc: _OverBudget, rest: str) -> Note:
        return Note(
            f"git pack inflates to more than max_git_bytes ({self.budget.total}) at {exc}: {rest} (a long "
            "history of large files may need a higher limit)"
        )

    def _walk_one(self, pos: int) -> Generator[GitObject | Note, None, int]:
        """Index the object at ``pos``; a whole (non-delta) one is read and handed out at once.
        Returns where the next object starts."""
        data, view = self.data, self.view
        offset = pos
        kind, size, pos = _pack_header(data, pos)
        base, ref = -1, b""
        if kind == _OFS_DELTA:
            distance, pos = _ofs_distance(data, pos)
            at = bisect_left(self.offsets, offset - distance)
            found = distance > 0 and at < len(self.offsets) and self.offsets[at] == offset - distance
            base = at if found else -2
        elif kind == _REF_DELTA:
            if pos + self.id_len > len(data):
                raise _Damage("the pack ends inside an object header (truncated)")
            ref, pos = bytes(view[pos : pos + self.id_len]), pos + self.id_len
        elif kind not in (1, 2, 3, 4):
            raise _Damage(f"unknown object type {kind}")
        whole = kind < _OFS_DELTA
        self.budget.take(size, f"an object of {size} bytes at offset {offset}")
        held = size <= self.max_object
        content, produced, end = _inflate_from(view, pos, size, keep=whole and held)
        usable = produced == size and base != -2 and held
        self.offsets.append(offset)
        self.starts.append(pos)
        self.ends.append(end)
        self.sizes.append(size)
        self.types.append(kind if usable else 0)
        self.bases.append(max(base, -1))
        if ref:
            self.ref_bases[len(self.offsets) - 1] = ref
        oid = bytes(self.id_len)
        if not held:
            self.too_large += 1
        elif produced != size or base == -2:
            if whole:
                what = f"it inflates to {produced} bytes, not the {size} its header declares"
                yield Note(f"git object at offset {offset} unreadable ({what}): not scanned")
            else:
                self.bad_deltas += 1
        elif whole:
            typ = ObjectType(kind)
            oid = self._oid(typ, content)
            if typ in SEARCHED:
                yield GitObject(typ, oid, content)
        self.ids += oid
        return end

    def _oid(self, typ: ObjectType, content: bytes) -> bytes:
        h = self.hash(b"%s %d\0" % (str(typ).encode(), len(content)))
        h.update(content)
        return h.digest()

    # ------------------------------------------------------------ pass 2: deltas, each rebuilt once

    def _rebuild(self) -> Iterator[GitObject | Note]:
        count, types = len(self.offsets), self.types
        deltas = sum(1 for t in types if t >= _OFS_DELTA)
        # each object's OFS_DELTA children, compressed-row (two flat arrays); REF_DELTA by base id
        first = array("Q", bytes(8 * (count + 1)))
        for i, base in enumerate(self.bases):
            if base >= 0 and types[i] == _OFS_DELTA:
                first[base + 1] += 1
        for i in range(count):
            first[i + 1] += first[i]
        children = array("Q", bytes(8 * first[count]))
        fill = array("Q", first)
        for i, base in enumerate(self.bases):
            if base >= 0 and types[i] == _OFS_DELTA:
                children[fill[base]] = i
                fill[base] += 1
        del fill
        waiting: dict[bytes, list[int]] = {}
        for i, ref in self.ref_bases.items():
            if types[i] == _REF_DELTA:
                waiting.setdefault(ref, []).append(i)
        rebuilt = too_deep = failed = unheld = large = 0
        done = bytearray(count)
        for root in range(count) if deltas else ():
            kind = types[root]
            if not kind or kind >= _OFS_DELTA:
                continue
            kids = self._kids(root, first, children, waiting)
            if not kids:
                continue
            try:
                stack = [(self._stored(root), ObjectType(kind), kids, 1)]
            except _BadDelta:
                continue  # its deltas are counted as lost
            held = len(stack[0][0])
            while stack:
                base_data, typ, kids, depth = stack[-1]
                child = kids.pop()
                if not kids:  # the base is needed no more: a chain holds one link at a time
                    stack.pop()
                    held -= len(base_data)
                if done[child]:
                    continue
                done[child] = 1
                if depth > self.max_depth:
                    too_deep += 1
                    continue
                try:
                    out = self._apply(child, base_data)
                except _TooLarge:
                    large += 1
                    continue
                except _BadDelta:
                    failed += 1
                    continue
                rebuilt += 1
                oid = self._oid(typ, out)
                self.ids[child * self.id_len : (child + 1) * self.id_len] = oid
                if typ in SEARCHED:
                    yield GitObject(typ, oid, out)
                more = self._kids(child, first, children, waiting)
                if more and held + len(out) > self.max_object:
                    unheld += 1
                elif more:
                    stack.append((out, typ, more, depth + 1))
                    held += len(out)
        self.too_large += large
        lost = deltas - rebuilt - too_deep - failed - large
        if self.bad_deltas + failed:
            yield Note(
                f"{_count(self.bad_deltas + failed, 'git delta')} unreadable (damaged, or not applicable to "
                "their base): not scanned"
            )
        if unheld:
            yield Note(
                f"deltas on {_count(unheld, 'git object')} not rebuilt: holding those bases beside the ones in "
                f"use would pass max_nested_bytes ({self.max_object})"
            )
        if too_deep:
            yield Note(f"{_count(too_deep, 'git delta')} deeper than {self.max_depth} links into a chain: not scanned")
        if lost:
            yield Note(
                f"{_count(lost, 'git delta')} whose base is not in this pack (a thin pack, a chain that loops, "
                "or a base lost to damage or a limit): not scanned"
            )

    def _kids(self, index: int, first: array[int], children: array[int], waiting: dict[bytes, list[int]]) -> list[int]:
        """The deltas built on an object, last first (they are popped from the end)."""
        kids = children[first[index] : first[index + 1]].tolist()
        if waiting:
            kids += waiting.pop(bytes(self.ids[index * self.id_len : (index + 1) * self.id_len]), ())
        kids.reverse()
        return kids

    def _stored(self, index: int) -> bytes:
        """An object's stream inflated again (the first pass found where it ends, and that it holds
        exactly its declared size)."""
        size = self.sizes[index]
        self.budget.take(size, f"the object of {size} bytes at offset {self.offsets[index]}")
        try:
            return _inflate.decompress(self.view[self.starts[index] : self.ends[index]], bufsize=max(size, 1))
        except _INFLATE_ERRORS as exc:  # it inflated in the first pass: not expected, not fatal
            raise _BadDelta(f"{type(exc).__name__}: {str(exc)[:120]}") from None

    def _apply(self, index: int, base: bytes) -> bytes:
        delta = self._stored(index)
        try:
            target = _delta_target_size(delta)
        except IndexError:
            raise _BadDelta("the delta ends inside its header") from None
        if target > self.max_object:
            raise _TooLarge()
        self.budget.take(target, f"a delta result of {target} bytes at offset {self.offsets[index]}")
        return _apply_delta(base, delta)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _delta_target_size(delta: bytes) -> int:
    """The size a delta's result declares (its second header field)."""
    return _delta_size(delta, _delta_size(delta, 0)[1])[0]


def _apply_delta(base: bytes, delta: bytes) -> bytes:
    """Git's delta: the base's and the result's sizes, then instructions that copy a range of the
    base or insert literal bytes. Raises ``_BadDelta`` on anything inconsistent: a copy past the
    base's end, a result of another size than declared, an instruction cut off."""
    try:
        source, pos = _delta_size(delta, 0)
        target, pos = _delta_size(delta, pos)
        if source != len(base):
            raise _BadDelta(f"its base has {len(base)} bytes, not {source}")
        out = bytearray()
        view, end, limit = memoryview(base), len(delta), len(base)
        while pos < end:
            op = delta[pos]
            pos += 1
            if op & 0x80:
                # bits 0-3 say which bytes of the offset follow, bits 4-6 which of the length
                offset = length = 0
                for byte in range(4):
                    if op & (1 << byte):
                        offset |= delta[pos] << (8 * byte)
                        pos += 1
                for byte in range(3):
                    if op & (0x10 << byte):
                        length |= delta[pos] << (8 * byte)
                        pos += 1
                length = length or 0x10000
                if offset + length > limit:
                    raise _BadDelta("a copy reaches past the end of its base")
                out += view[offset : offset + length]
            elif op:
                if pos + op > end:
                    raise _BadDelta("an insert runs past the end of the delta")
                out += delta[pos : pos + op]
                pos += op
            else:
                raise _BadDelta("reserved instruction 0")
            if len(out) > target:
                raise _BadDelta("the result grows past its declared size")
        if len(out) != target:
            raise _BadDelta(f"the result has {len(out)} bytes, not {target}")
        return bytes(out)
    except IndexError:
        raise _BadDelta("the delta ends inside an instruction") from None


def _delta_size(delta: bytes, pos: int) -> tuple[int, int]:
    """A delta header's size field: (value, where the next field starts)."""
    value = shift = 0
    while True:
        byte = delta[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 63:
            raise _BadDelta("a size field runs on")


def _pack_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(type number, inflated size, where the object's data starts)."""
    try:
        byte = data[pos]
        kind, size, shift = (byte >> 4) & 7, byte & 0x0F, 4
        while byte & 0x80:
            pos += 1
            byte = data[pos]
            size |= (byte & 0x7F) << shift
            shift += 7
            if shift > 67:
                raise _Damage("an object's size field runs on")
    except IndexError:
        raise _Damage("the pack ends inside an object header (truncated)") from None
    return kind, size, pos + 1


def _ofs_distance(data: bytes, pos: int) -> tuple[int, int]:
    """OFS_DELTA: how far before this object its base starts (git's offset encoding, in which
    each continuation adds one so that no distance has two spellings)."""
    try:
        byte = data[pos]
        distance = byte & 0x7F
        while byte & 0x80:
            pos += 1
            byte = data[pos]
            distance = ((distance + 1) << 7) | (byte & 0x7F)
            if distance >= 1 << 64:
                raise _Damage("a delta's base offset runs on")
    except IndexError:
        raise _Damage("the pack ends inside an object header (truncated)") from None
    return distance, pos + 1


def _inflate_from(view: memoryview, pos: int, size: int, *, keep: bool) -> tuple[bytes, int, int]:
    """Inflate the zlib stream at ``pos``, of which at most ``size`` + 1 bytes come out: (its bytes
    if ``keep``, else b""; how many it produced; where it ends). The stream is fed in doubling
    pieces, so finding a small object's end costs about its own size."""
    d = _inflate.decompressobj()
    parts: list[bytes] = []
    produced, step, end = 0, min(size + 64, _FIRST_STEP), len(view)
    try:
        while not d.eof:
            if pos >= end:
                raise _Damage("the pack ends inside an object (truncated)")
            piece = view[pos : pos + step]
            pos += len(piece)
            out = d.decompress(piece, size - produced + 1)
            produced += len(out)
            if produced > size:
                raise _Damage(f"an object inflates past the {size} bytes its header declares")
            if keep and out:
                parts.append(out)
            step = min(step * 2, 1 << 20)
    except _INFLATE_ERRORS as exc:
        raise _Damage(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    return b"".join(parts), produced, pos - len(d.unused_data)
