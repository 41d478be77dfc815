"""One big layer on several cores: an uncompressed layer in a local file is cut at member
boundaries into pieces that workers scan side by side, and the pieces' results are merged back
into the layer's result.

A real image often has one layer that holds most of its files (``npm ci`` writes 70,000), and a
layer per worker left that worker alone with it. Pieces need member boundaries, and a tar has no
index: the headers are walked once, seeking past each member's data (512 bytes read per member),
and cuts are made only before a member whose extended headers (PAX, GNU long names) are all its
own. Anything unusual (a header that does not check out, a PAX global header whose settings would
not reach the later pieces, a PAX size record or an old GNU sparse member, whose data does not end
where its own header says, a link, directory or device whose header gives a size, which tarfile
does not skip, more members than the walk is allowed) and the layer is not cut.
Plain headers are followed in C (``walk.headers``), the rest here.
The layer's digest is still taken over all its bytes, in a task of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from secretscan.errors import SecretScanError
from secretscan.image import spool
from secretscan.image.compression import GZIP_MAGIC, Observed, XzMemoryLimit, sniff
from secretscan.image.entries import normalise
from secretscan.image.model import LayerHandle
from secretscan.limits import Limits
from secretscan.provenance import collect
from secretscan.provenance.index import listed_content
from secretscan.provenance.model import LayerPackages
from secretscan.provenance.packages import SHARED
from secretscan.walk import headers
from secretscan.walk.content import DECODE_ERRORS
from secretscan.walk.fate import LayerPaths
from secretscan.walk.layer import LayerResult, LayerTooLarge, bounded_uncompressed
from secretscan.walk.tarstream import CANONICAL_NUMBERS, octal_number, unsigned_checksum

MIN_PIECE = 48 * 1024 * 1024
"""About the size of a piece; layers smaller than two are not cut."""
MAX_PARTS = 32
MAX_HEADERS = 2_000_000
"""Headers walked to find the cuts; a layer with more members is scanned whole."""
_BLOCK = 512
_EXTENDED = (b"x", b"L", b"K")
"""A PAX header, a GNU long name or long link name: they describe the member after them."""
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")
"""Hard and symbolic link, devices, directory, fifo: whatever size their header gives, tarfile
reads no data after it (``TarInfo._proc_builtin`` skips data for regular files and unknown kinds)."""
_NOT_CUTTABLE = (b"g", b"V", b"M", b"S")
"""PAX global header (applies to all later members), volume label, multi-volume continuation, old
GNU sparse file (its map may go on in blocks after its header)."""


@dataclass(frozen=True, slots=True)
class Piece:
    layer: int
    """Position of the layer in the image's layer list."""
    start: int = 0
    end: int | None = None
    """Stored bytes [start, end); ``end`` None with ``start`` 0: the whole layer, as usual."""
    digest_only: bool = False
    """Only the layer's digest, over all its bytes (the pieces cannot give it)."""
    records_first: bool = False
    """A whole layer (compressed) whose package records are read in a pass of their own
    (``survey_stored``) by the worker that then scans it."""
    held: int = 0
    """Read from the memory file its layer was decompressed into, of this size (0: from the
    layer's own blob)."""
    records: LayerPackages | None = field(default=None, compare=False, repr=False)
    """The layer's package records, sent with the piece when they were read after the workers
    were started (``Scanner._inflated``)."""

    @property
    def whole(self) -> bool:
        return self.end is None and not self.digest_only

    def weight(self, layer_size: int) -> int:
        """Bytes the piece reads, as a measure of its work; the digest task counts half its layer.
        It hashes every byte (SHA-256, about 1.5 GB/s) where a piece skips or quickly clears the
        files its layer's records vouch for: of a cut npm layer's tasks the digest is the
        longest, and handed out first it does not finish alone after every piece."""
        if self.digest_only:
            return layer_size // 2
        if self.records_first:
            return layer_size * 3 // 2  # decompressed twice
        return layer_size if self.end is None else self.end - self.start


@dataclass
class Survey:
    """What one walk over an uncompressed layer's headers gives: where it can be cut, and the
    package databases it holds (read now, before any file is scanned)."""

    cuts: list[int] = field(default_factory=list)
    databases: list[tuple[str, int, bytes]] = field(default_factory=list)
    """(path, modification time, content) of each package database file (``provenance.collect``)."""
    stopped_at: int | None = None
    """For a walk given a ``stop``: the member boundary at or past it where the walk stopped (None:
    it ended before, at the end of the archive or at a header that does not check out)."""
    unmet: int | None = None
    """For a walk that stopped: the first cut target it had not met (its cut is the next member)."""
    opens: bool = False
    """The walk read a whole member's header at its ``start`` (not the end of the archive)."""
    uncuttable: bool = False
    """The walk met what forbids any cut of the layer (a bad header, a pax global header)."""


_SYSTEM_MARKERS = tuple(marker.encode() for marker in collect.SYSTEM_MARKERS)
_MAX_EXTENDED = 64 * 1024
MAX_SURVEY_BYTES = 256 * 1024 * 1024
"""Database bytes one survey keeps; the databases past it are read when the scan meets them."""


def cut_points(stream: BinaryIO, size: int, parts: int) -> list[int]:
    """Offsets of member boundaries near ``size * k / parts`` (k = 1 .. parts-1), ascending; []
    when the layer should not be cut. ``stream`` reads the stored (uncompressed) layer and seeks."""
    return survey(stream, size, parts, 0).cuts


def survey(
    stream: BinaryIO,
    size: int,
    parts: int,
    max_database_bytes: int,
    start: int = 0,
    stop: int | None = None,
    budget: int = MAX_SURVEY_BYTES,
    targets_from: int | None = None,
    into: Survey | None = None,
    give_up_at: int | None = None,
) -> Survey:
    """Cut points as ``cut_points`` gives them, and the package database files of at most
    ``max_database_bytes`` each (0: none), up to ``budget`` bytes in all. A header that does not
    check out ends the walk: no cut, and only the databases before it (a file not vouched for is
    scanned in full, so that is safe). ``start``: a member boundary to walk from; ``stop``: where
    to stop, at the first member boundary at or past it (walks side by side: ``chunk_starts``);
    the walk cuts for the targets from ``targets_from`` (default ``start``) up to ``stop``.
    ``into``: the survey to fill (what it holds so far stays if reading the stream fails).
    ``give_up_at``: an offset past which a walk that has found no database, and no file of a
    system package manager (``collect.SYSTEM_MARKERS``), stops (``survey_stored``)."""
    found = Survey() if into is None else into
    low = start if targets_from is None else targets_from
    targets = [t for t in (size * k // parts for k in range(1, parts)) if t >= low and (stop is None or t < stop)]
    pos = member_start = start
    long_name: str | None = None
    window = _Window(stream)
    buf, base = b"", 0  # the window's bytes and where they start: a header is read off them without a call
    wanted: tuple[tuple[bytes, ...], tuple[bytes, ...]] = ((), ())
    if max_database_bytes:
        markers = _SYSTEM_MARKERS if give_up_at is not None else ()
        wanted = (collect.NAME_ENDINGS, (collect.NAME_PART, *markers))
    system = False
    records = _RecordSizes() if give_up_at is not None else None
    sizes = records.sizes if records is not None else None
    walked = 0
    while walked < MAX_HEADERS:
        if give_up_at is not None and pos >= give_up_at and not found.databases and not system:
            return found
        if stop is not None and pos >= stop and pos == member_start:
            found.stopped_at, found.unmet = pos, (targets[0] if targets else None)
            return found
        if pos + _BLOCK > size:
            return found
        at = pos - base
        if at < 0 or at + _BLOCK > len(buf):
            window.read(pos, _BLOCK)
            buf, base, at = window.buf, pos, 0
            if len(buf) < _BLOCK:
                return found  # end of archive
        if long_name is None:  # the plain members up to the next one to look at, in C
            limit = min(size - _BLOCK + 1, targets[0] if targets else size, size if stop is None else stop)
            passed, members = headers.skip_plain(buf, at, limit - base, *wanted, sizes)
            if members:
                found.opens = found.opens or member_start == start
                pos = member_start = base + passed
                walked += members
                if records is not None and records.pending and records.settle():
                    return found  # records that do not describe the layer: not worth the pass
                continue
        walked += 1
        header = buf[at : at + _BLOCK]
        if CANONICAL_NUMBERS.fullmatch(header, 100, 156):  # as nearly every header is written
            length: int | None = int(header[124:135], 8) if int(header[148:154], 8) == unsigned_checksum(header) else None
        else:
            length = _checked_size(header)
        kind = header[156:157]
        if length and kind in _NO_DATA:
            found.cuts, found.uncuttable = [], True  # tarfile reads the next header right after it
            return found
        if length is None or kind in _NOT_CUTTABLE:
            if length is None and header.count(0) == _BLOCK:
                return found  # end of archive
            found.cuts, found.uncuttable = [], True
            return found
        data_at = pos + _BLOCK
        pos = data_at + -(-length // _BLOCK) * _BLOCK
        if kind in _EXTENDED:
            extended = b""
            if length <= _MAX_EXTENDED and (kind == b"x" or (kind == b"L" and max_database_bytes)):
                extended = window.read(data_at, length)
                buf, base = window.buf, window.at
            if kind == b"x" and (length > _MAX_EXTENDED or b" size=" in extended):
                found.cuts, found.uncuttable = [], True  # the member's size is the pax header's, not its own
                return found
            if kind != b"K" and max_database_bytes and length <= _MAX_EXTENDED:
                if kind == b"x" and b" path=" not in extended:
                    pass  # times, attributes: the member is named by its own header
                elif collect.might_name(extended):
                    long_name = _extended_name(kind, extended) or long_name
                else:
                    long_name = ""  # named, and by no database's name (nearly all): not parsed out
            continue  # belongs to the member whose header follows
        found.opens = found.opens or member_start == start
        if targets and member_start >= targets[0] and member_start > (found.cuts[-1] if found.cuts else 0):
            found.cuts.append(member_start)
            while targets and targets[0] <= member_start:
                targets.pop(0)
        if give_up_at is not None and not system and kind in (b"0", b"\0", b"7"):
            system = any(marker in (long_name or _ustar_name(header)) for marker in collect.SYSTEM_MARKERS)
        if (
            max_database_bytes
            and kind in (b"0", b"\0", b"7")
            and length <= max_database_bytes
            and (long_name or (long_name is None and collect.might_want_header(header)))
        ):
            name = long_name or _ustar_name(header)
            if collect.might_want(name) and collect.wants(path := normalise(name)) and budget >= length:
                found.databases.append((path, _octal(header[136:148]) or 0, window.read(data_at, length)))
                buf, base = window.buf, window.at
                budget -= length
                if records is not None and path.endswith(".dist-info/RECORD") and records.listed(name, found.databases[-1][2]):
                    return found  # records that do not describe the layer: not worth the pass
        long_name = None
        member_start = pos
    found.cuts, found.uncuttable = [], True
    return found


STORED_SURVEY_ERRORS: tuple[type[BaseException], ...] = (
    *DECODE_ERRORS, LayerTooLarge, XzMemoryLimit, SecretScanError, OSError, EOFError, ValueError,
)  # fmt: skip
"""What ends a pass over a stored layer early: its scan meets it too, and says what it is."""


MIN_STORED_SURVEY = 4 * 1024 * 1024
"""Stored bytes below which a compressed layer is scanned without reading its records first."""


def records_of(found: Survey) -> LayerPackages | None:
    """The package records of the database files a survey read (their bytes are dropped: the
    records are what is sent on)."""
    if not found.databases:
        return None
    collector = collect.Collector()
    for path, mtime, data in found.databases:
        collector.feed(path, data, mtime)
    found.databases = []
    return collector.packages


def records_first(handle: LayerHandle, limits: Limits, max_database_bytes: int) -> LayerPackages | None:
    """A whole local layer's package records, read in a pass of their own before its scan
    (``survey_stored``); None when it has none, or cannot be read (its scan then says why)."""
    try:
        with handle.open() as blob:
            return records_of(survey_stored(blob, limits, max_database_bytes))
    except (OSError, SecretScanError):
        return None


def inflate(handle: LayerHandle, fd: int, cap: int, limits: Limits) -> LayerResult:
    """A compressed local layer decompressed once into the memory file ``fd``, bounded as its
    scan bounds it and by ``cap`` bytes: its uncompressed size (``bytes``), ``compression``, and
    the digest of its stored bytes (``stored_digest``, checked as its scan would check it).
    Whatever keeps it from coming out whole (damage, a limit, ``cap``) is an ``error``, and the
    layer is then scanned from its blob as before, which reports the problem as it always has.

    A compressed layer is a stream: one worker must decompress it twice (its records first, then
    its scan) while the others wait, where an uncompressed one is cut into pieces that all the
    workers share. Decompressed into memory, it is one."""
    sha256 = hashlib.sha256()
    try:
        with handle.open() as blob:
            stored = io.BufferedReader(Observed(blob, sha256.update), 1 << 20)  # type: ignore[arg-type]
            compression = sniff(stored.peek(8)[:8])
            written = spool.fill(fd, bounded_uncompressed(stored, limits), cap + 1)  # type: ignore[arg-type]
            while stored.read(1 << 20):  # the rest of the blob still counts for its digest
                pass
    except (OSError, SecretScanError, LayerTooLarge, XzMemoryLimit, *DECODE_ERRORS) as exc:
        return LayerResult(error=f"not decompressed into memory: {type(exc).__name__}")
    if written > cap:
        return LayerResult(error=f"larger than the {cap} bytes of memory left to hold it")
    return LayerResult(stored_digest="sha256:" + sha256.hexdigest(), compression=compression, bytes=written)


def stored_kind(handle: LayerHandle) -> str:
    """The compression a local layer's blob is stored with (``sniff``), "none" if unreadable."""
    try:
        with handle.open() as blob:
            return sniff(blob.read(8))
    except (OSError, SecretScanError):
        return "none"


def gzip_size(handle: LayerHandle) -> int | None:
    """A gzip blob's uncompressed size as its last member's trailer gives it (modulo 4 GiB: a
    hint, which ``inflate``'s cap checks), or None for another compression or a blob that
    cannot be read here. A blob without ranged reads is read through to its trailer (the stored
    bytes only, from memory or the page cache: a blob worth the look is at most a few hundred MB)."""
    if not handle.size or handle.size < 18:
        return None
    try:
        if handle.open_range is not None:
            with handle.open_range(0, 2) as head, handle.open_range(handle.size - 4, handle.size) as end:
                return int.from_bytes(end.read(4), "little") if head.read(2) == GZIP_MAGIC else None
        with handle.open() as blob:
            if blob.read(2) != GZIP_MAGIC:
                return None
            tail = b""
            while data := blob.read(1 << 20):
                tail = (tail + data)[-4:]
            return int.from_bytes(tail, "little") if len(tail) == 4 else None
    except (OSError, SecretScanError):
        return None


def survey_stored(blob: BinaryIO, limits: Limits, max_database_bytes: int) -> Survey:
    """The package database files of a layer that cannot be cut (compressed: gzip, zstd, xz, or
    read whole), read in a pass of their own before its scan, so that the scan can leave what they
    vouch for unsearched (a layer streams past once, and a package's records mostly come after its
    files in tar order). The pass decompresses the layer once more and follows its headers (``survey``),
    reading only the database files' bytes, and gives up early on a layer that shows no sign of
    any (``GIVE_UP_AT``). Whatever stops it (damage, a limit) leaves the databases before it: the
    scan then meets the same problem and reports it."""
    found = Survey()
    with contextlib.suppress(*STORED_SURVEY_ERRORS):
        stream = cast(BinaryIO, _Forward(bounded_uncompressed(blob, limits)))
        survey(stream, limits.max_layer_bytes, 1, max_database_bytes, into=found, give_up_at=GIVE_UP_AT)
    return found


GIVE_UP_AT = 16 * 1024 * 1024
"""Uncompressed bytes after which a pass over a stored layer that has met no package database, and
no system package manager's files, stops: the layer (logs, data, an application) is searched in
full anyway, and the pass would cost a decompression for nothing. A pip or npm layer's first
records come within its first package; a Debian, Alpine or Red Hat base's database comes last,
after its ``etc/`` (``collect.SYSTEM_MARKERS``). The pass stops too once pip records list more
files with another size than the one the layer holds than with it (``_RecordSizes``): records
that vouch for nothing."""


class _Forward:
    """A stream that only goes forward (a layer as it is decompressed), as ``_Window`` reads it:
    seeking ahead reads past the bytes in between; seeking back is an error."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner, self._pos = inner, 0

    def seek(self, pos: int) -> int:
        if pos < self._pos:
            raise ValueError(f"cannot go back from offset {self._pos} to {pos}")
        while self._pos < pos and (data := self._inner.read(min(pos - self._pos, 1 << 20))):
            self._pos += len(data)
        return self._pos

    def read(self, n: int) -> bytes:
        data = self._inner.read(n)
        self._pos += len(data)
        return data


class _RecordSizes:
    """Whether the pip records a pass over a stored layer meets describe the layer: the files they
    list with a size, compared with the files the walk goes past (before or after the record: tar
    writers sort a package's directory and its ``dist-info`` either way)."""

    def __init__(self) -> None:
        self.sizes: dict[bytes, int] = {}
        """Each file gone past, by its name in the archive (``headers.skip_plain`` fills it)."""
        self.pending: dict[bytes, int] = {}
        """Listed files not yet gone past, with their recorded size."""
        self.same = self.other = 0

    def listed(self, name: str, data: bytes) -> bool:
        """Take in the ``RECORD`` at ``name`` in the archive; whether the records are hopeless."""
        site = name.rpartition("/")[0].rpartition("/")[0]
        for line in data.decode("utf-8", "surrogateescape").splitlines():
            rest, _, size = line.rpartition(",")
            listed = rest.rpartition(",")[0]
            if size.isdigit() and listed and not listed.startswith(("../", "/")):
                key = (f"{site}/{listed}" if site else listed).encode("utf-8", "surrogateescape")
                if key in self.sizes:
                    self._count(self.sizes[key], int(size))
                else:
                    self.pending[key] = int(size)
        return self.hopeless

    def settle(self) -> bool:
        """Compare the listed files gone past since; whether the records are hopeless."""
        for key in [key for key in self.pending if key in self.sizes]:
            self._count(self.sizes[key], self.pending.pop(key))
        return self.hopeless

    def _count(self, seen: int, recorded: int) -> None:
        if seen == recorded:
            self.same += 1
        else:
            self.other += 1

    @property
    def hopeless(self) -> bool:
        """More listed files of another size than of the recorded one: records that vouch for
        nothing here (a package changed in place, or records not written by pip)."""
        return self.other >= 8 and self.other > 2 * self.same


def chunk_starts(stream: BinaryIO, size: int, chunks: int) -> list[int]:
    """Where ``chunks`` walks over one layer's headers can start side by side: 0, then the first
    header found at or after each ``size * k / chunks`` (a block holding ``ustar`` where a header
    does, with numbers and checksum that hold). A start found inside a file's bytes (a tar held in
    the layer) is caught when the walks are joined (``join_surveys``), and costs only time."""
    starts = [0]
    for k in range(1, chunks):
        found = _header_at_or_after(stream, size, max(starts[-1] + _BLOCK, size * k // chunks // _BLOCK * _BLOCK))
        if found is not None:
            starts.append(found)
    return starts


_RESYNC_WINDOW = 16 * 1024 * 1024
"""How far past a chunk's nominal start a header is looked for (past a file longer than this: no chunk)."""


def _header_at_or_after(stream: BinaryIO, size: int, offset: int) -> int | None:
    """The first block at or after ``offset`` (a multiple of 512) that reads as a header, within
    ``_RESYNC_WINDOW`` bytes; read a piece at a time (a header is usually a few blocks on). At
    most one look per block, however many times the bytes say ``ustar``."""
    step = 64 * 1024
    for at in range(offset, min(size, offset + _RESYNC_WINDOW), step):
        stream.seek(at)
        data = stream.read(min(step + _BLOCK, size - at))
        hit = data.find(b"ustar", 257)
        while 0 <= hit < step + 257:
            block = hit - 257
            if block % _BLOCK == 0 and block + _BLOCK <= len(data) and _checked_size(data[block : block + _BLOCK]) is not None:
                return at + block
            hit = data.find(b"ustar", block - block % _BLOCK + _BLOCK + 257)  # the next block's magic, or later
    return None


def walk_on(stream: BinaryIO, size: int, parts: int, max_database_bytes: int, joined: Survey, resume_at: int, targets_from: int) -> Survey:
    """``joined`` (``join_surveys``) with the rest of the layer walked from ``resume_at`` in this
    process: what one walk would have given, when a chunk's start turned out not to be a member's."""
    rest = survey(stream, size, parts, max_database_bytes, start=resume_at, targets_from=targets_from)
    last = joined.cuts[-1] if joined.cuts else 0
    cuts = [] if rest.uncuttable else joined.cuts + [c for c in rest.cuts if c > last]
    return Survey(cuts, joined.databases + rest.databases, uncuttable=rest.uncuttable)


def join_surveys(starts: Sequence[int], walks: Sequence[Survey]) -> tuple[Survey, int, int | None, int]:
    """One survey from walks side by side (walk k from ``starts[k]``, stopped at ``starts[k+1]``),
    as one walk would have made it (cuts, databases in layer order), and how many of the walks it
    takes. A walk that stopped elsewhere than the next one's start (that start lay inside a file's
    bytes) ends what can be joined: then where to walk on from is returned too (else None), with
    the first cut target that walk is still to meet."""
    joined = Survey()
    used = 0
    for k, walk in enumerate(walks):
        used += 1
        joined.databases.extend(walk.databases)
        joined.cuts.extend(c for c in walk.cuts if c > (joined.cuts[-1] if joined.cuts else 0))
        if walk.uncuttable:
            joined.cuts, joined.uncuttable = [], True
            break
        if walk.stopped_at is None or k + 1 == len(walks):
            break  # the end of the archive (or of the last walk)
        if walk.stopped_at != starts[k + 1]:
            return joined, used, walk.stopped_at, starts[k + 1] if walk.unmet is None else walk.unmet
        if walk.unmet is not None and walks[k + 1].opens and walk.stopped_at > (joined.cuts[-1] if joined.cuts else 0):
            joined.cuts.append(walk.stopped_at)  # where a target of this walk is met: the next one's first member
    return joined, used, None, 0


class _Window:
    """The layer's bytes around the walk: one read of ``READ`` bytes holds the headers of many
    small members (a seek and a read per header cost more than reading past their data)."""

    READ = 256 * 1024

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.buf = b""
        self.at = 0
        """The bytes at hand, and the offset of their first."""

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos`` (fewer only at the end of the stream). Bytes at ``pos``
        already at hand are kept and the rest read after them: the stream only goes forward."""
        if pos < self.at or pos + n > self.at + len(self.buf):
            end = self.at + len(self.buf)
            parts = [self.buf[pos - self.at :]] if self.at <= pos < end else []
            if not parts:
                self._stream.seek(pos)
            want = max(n, self.READ) - (end - pos if parts else 0)
            while want > 0 and (piece := self._stream.read(want)):
                parts.append(piece)
                want -= len(piece)
            self.buf, self.at = b"".join(parts), pos
        start = pos - self.at
        return self.buf[start : start + n]




def _ustar_name(header: bytes) -> str:
    name = header[0:100].split(b"\0", 1)[0]
    if header[257:262] == b"ustar":
        prefix = header[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "surrogateescape")


def _extended_name(kind: bytes, data: bytes) -> str | None:
    """The path a PAX header (``path=``) or a GNU long-name header gives the next member."""
    if kind == b"L":
        return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    at = 0
    while at < len(data):  # records: "<length> <key>=<value>\n"
        space = data.find(b" ", at)
        if space < 0:
            return None
        try:
            record_length = int(data[at:space])
        except ValueError:
            return None
        if record_length <= 0:
            return None
        record = data[space + 1 : at + record_length]
        key, _, value = record.partition(b"=")
        if key == b"path":
            return value.rstrip(b"\n").decode("utf-8", "surrogateescape")
        at += record_length
    return None


def _octal(field: bytes) -> int | None:
    try:
        return octal_number(field)
    except ValueError:
        return None


def _checked_size(header: bytes) -> int | None:
    """The member's data size, if the header's checksum holds (None: not a header we trust)."""
    if CANONICAL_NUMBERS.fullmatch(header, 100, 156):  # as nearly every header is written
        return int(header[124:135], 8) if int(header[148:154], 8) == unsigned_checksum(header) else None
    if _octal(header[148:156]) != unsigned_checksum(header):
        return None
    field = header[124:136]
    if field[0] & 0x80:  # base-256 (GNU): big sizes
        return int.from_bytes(field[1:], "big") if field[0] == 0x80 else None
    return _octal(field)


def plan(sizes: Sequence[int | None], cuttable: Sequence[bool], workers: int) -> list[tuple[int, int]]:
    """(layer position, parts) for the layers worth cutting: every layer of at least two
    ``MIN_PIECE`` is cut into pieces of about that size, so that workers that take the next piece
    as they finish stay busy to the end (bytes are a poor measure of work: 70,000 small files take
    longer than one big one)."""
    if workers <= 1:
        return []
    return [
        (i, min(MAX_PARTS, size // MIN_PIECE))
        for i, (size, ok) in enumerate(zip(sizes, cuttable, strict=True))
        if ok and size and size >= 2 * MIN_PIECE
    ]


def layer_digest(stream: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def merge(pieces: Sequence[LayerResult], digest: str | None) -> LayerResult:
    """The layer's result from its pieces' (in layer order)."""
    merged = LayerResult(stored_digest=digest, compression="none")
    merged.paths = LayerPaths()
    sizes: dict[str, int] = {}
    packages = LayerPackages()
    for piece in pieces:
        merged.matches.extend(piece.matches)
        merged.paths.present.update(piece.paths.present)
        merged.paths.whiteouts |= piece.paths.whiteouts
        merged.paths.opaque_dirs |= piece.paths.opaque_dirs
        merged.hardlinks.extend(piece.hardlinks)
        merged.skipped.extend(piece.skipped)
        if piece.error and merged.error is None:
            merged.error = piece.error
        merged.files += piece.files
        merged.bytes += piece.bytes
        merged.vouched_files += piece.vouched_files
        merged.vouched_bytes += piece.vouched_bytes
        merged.facts.update(piece.facts)
        merged.secrets.update(piece.secrets)
        sizes.update(piece.sizes)
        _merge_packages(packages, piece.packages)
    merged.packages = packages
    merged.package_files, merged.package_bytes = listed_content(packages, sizes)
    return merged


def merge_packages(parts: Sequence[LayerPackages | None]) -> LayerPackages | None:
    """One layer's package records from those of its parts, in layer order (None: none had any)."""
    found = [p for p in parts if p]
    if len(found) <= 1:
        return found[0] if found else None
    joined = LayerPackages()
    for part in found:
        _merge_packages(joined, part)
    return joined


def _merge_packages(into: LayerPackages, piece: LayerPackages) -> None:
    offset = len(into.packages)
    into.packages.extend(piece.packages)
    for path, (index, digest) in piece.files.items():
        if digest or path not in into.files:
            into.files[path] = (index + offset, digest)
    for root, index in piece.roots.items():
        moved = SHARED if index == SHARED else index + offset
        into.roots[root] = moved if into.roots.get(root, moved) == moved else SHARED
    into.root_mtimes.update(piece.root_mtimes)
    into.versions.update(piece.versions)
    for directory, index in piece.owned_dirs.items():
        into.owned_dirs.setdefault(directory, index + offset)


def merged_layer(parts: Sequence[tuple[Piece, LayerResult]]) -> LayerResult:
    """One layer's result from its pieces' (in the order of the pieces)."""
    if len(parts) == 1 and parts[0][0].whole:
        return parts[0][1]
    digest_task = next((r for p, r in parts if p.digest_only), None)  # none: the digest is known
    layer = merge([r for p, r in parts if not p.digest_only], digest_task.stored_digest if digest_task else None)
    if digest_task is not None and digest_task.error and layer.error is None:
        layer.error = digest_task.error
    return layer
