"""Scan one file's content: in overlapping windows (so no file is too big to scan), and opening
nested archives (zip/jar/war/whl/apk/nupkg, tar, gzip/bzip2/xz/zstd) in memory, recursively,
within depth, entry-count and size limits. What a limit stops is reported, never dropped silently.
"""

from __future__ import annotations

import bisect
import io
import lzma
import posixpath
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from secretscan.deadline import NO_DEADLINE, Deadline
from secretscan.detect.engine import Engine
from secretscan.detect.match import Match
from secretscan.image.compression import (
    BZIP2_MAGIC,
    GZIP_MAGIC,
    INFLATE_ERROR,
    XZ_MAGIC,
    ZSTD_MAGIC,
    XzMemoryLimit,
    open_uncompressed,
    prefixed,
    read_some,
    sniff,
)
from secretscan.image.entries import EntryKind
from secretscan.limits import Limits
from secretscan.models import RuleScope, Skipped
from secretscan.walk import gitobjects, sourcemap
from secretscan.walk.tarstream import TarDamage, iter_tar

GUARD = 4096
"""A match ending this close to a window's end is left to the next window, which sees it whole."""
RAW_KEEP = 4 * 1024 * 1024
"""The last stored bytes of a compressed stream kept while it is decoded: when decoding fails,
these and the unread rest are scanned as plain bytes. A decoder notices damage within its
read-ahead (two 1 MiB buffered reads), so the damage lies in this tail; the bytes before it
decoded cleanly and were scanned in decoded form."""
_PIECE = 256 * 1024
"""Largest single read of a file's content (see ``read_window``)."""
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst", ".zstd")
DECODE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    INFLATE_ERROR,
    lzma.LZMAError,
    EOFError,
    OSError,
    zstandard.ZstdError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)

OnMatch = Callable[[Match, str, int | None], None]
"""(match, path including ``!/`` nesting, 1-based line) -> None."""


class LimitExceeded(Exception):
    pass


class _Bounded(io.RawIOBase):
    """Stops a nested stream after ``limit`` bytes: the defence against decompression bombs."""

    def __init__(self, inner: BinaryIO, limit: int, what: str) -> None:
        self._inner, self._left, self._what = inner, limit, what
        self.limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            probe = self._inner.read(1)
            if probe:
                raise LimitExceeded(f"{self._what}: more than {self.limit} bytes uncompressed")
            return 0
        data = read_some(self._inner, min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class RawTail(io.RawIOBase):
    """Passes a stream through, keeping its last ``RAW_KEEP`` bytes: what a decoder read ahead of
    the damage it met. ``rest()`` is then the stream's bytes from there on, for a plain scan. The
    chunks read are kept as they are (no copy): this sits on every compressed layer's path."""

    def __init__(self, inner: BinaryIO, head: bytes = b"") -> None:
        """``head``: bytes already read from ``inner`` (they count as kept)."""
        self._inner = inner
        self._kept: deque[bytes] = deque([head] if head else [])
        self._kept_bytes = len(head)
        self.dropped = 0
        """Bytes read and no longer kept."""
        self.failed = False
        """Reading ``inner`` raised: the damage is upstream, in what feeds this stream."""
        self.keeping = True
        """Off: pass bytes through only (when nothing here can fail to decode)."""

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        """What ``read_some`` calls: the bytes as read, without the copy ``RawIOBase.read`` makes."""
        try:
            data = read_some(self._inner, n if n > 0 else 1 << 20)
        except Exception:
            self.failed = True
            raise
        if self.keeping and data:
            kept = self._kept
            kept.append(data)
            self._kept_bytes += len(data)
            while self._kept_bytes - len(kept[0]) >= RAW_KEEP:
                first = kept.popleft()
                self._kept_bytes -= len(first)
                self.dropped += len(first)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def rest(self) -> tuple[BinaryIO, int | None, int]:
        """(the kept bytes and everything not yet read, the 1-based line number they start at (None
        once bytes were dropped: their lines were not counted), the offset they start at). A line
        cut at the front is left out: it could only yield a shortened match."""
        kept = b"".join(self._kept)
        start = kept.find(b"\n", 0, 64 * 1024) + 1 if self.dropped else 0  # find: -1 when there is none
        line = None if self.dropped else 1
        return prefixed(kept[start:], self._inner), line, self.dropped + start


@dataclass
class ContentStats:
    files: int = 0
    bytes: int = 0
    vouched_files: int = 0
    vouched_bytes: int = 0
    """Files whose bytes a package record vouched for (``note_vouched``): searched with fewer rules
    (``detect.scope``)."""


class ContentScanner:
    def __init__(
        self,
        engine: Engine,
        limits: Limits,
        on_match: OnMatch,
        on_skip: Callable[[Skipped], None],
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self.engine, self.limits = engine, limits
        self.on_match, self.on_skip = on_match, on_skip
        self.deadline = deadline
        """Checked at every window, so one huge file cannot carry a run past its ``--timeout``."""
        self.stats = ContentStats()
        self._open: list[set[str]] = []
        """One set per archive being decoded, of the secrets found inside it: a plain scan of its
        stored bytes after damage leaves them out rather than report them again under its path."""
        self._git_seen: set[bytes] = set()
        """Ids of the git objects scanned: the same blob in a loose object and a pack (or in two
        packs) is scanned once."""

    def scan(self, path: str, stream: BinaryIO, depth: int = 0, *, scope: RuleScope = RuleScope.ALL) -> None:
        """Scan a file's bytes; skip notes name the path (the caller adds image and layer).
        ``scope``: the rules it is searched with; fewer when package records vouch for its bytes
        (``detect.scope``: there a name = value guess would only list what its package publishes).
        An archive inside is searched with every rule."""
        self.stats.files += 1
        head = _read_exact(stream, 512)
        kind = _nested_kind(head)
        git = gitobjects.kind_of(path, head)
        if kind is None and git is None:
            if sourcemap.is_candidate(path, head) and depth < self.limits.max_nested_depth:
                self._scan_source_map(path, head, stream, depth, scope)
            else:
                self._scan_windows(path, head, stream, scope=scope)
            return
        if depth >= self.limits.max_nested_depth:
            self.on_skip(
                Skipped(
                    path,
                    f"nested archive deeper than {self.limits.max_nested_depth} levels: scanned as plain bytes, not opened",
                )
            )
            self._scan_windows(path, head, stream)
            return
        found: set[str] = set()
        self._open.append(found)
        try:
            if git is not None:
                self._scan_git(path, git, head, stream, depth, found)
            elif kind is not None:
                self._scan_nested(path, kind, head, stream, depth, found)
        finally:
            self._open.pop()

    def scan_whole(self, path: str, data: bytes, depth: int = 0, *, scope: RuleScope = RuleScope.ALL) -> None:
        """A file already read whole (nearly every file): ``scan`` without reading it again.
        Searched with the self-identifying rules only, nearly every file of a package takes one
        Hyperscan pass and nothing else: a source map too (``_scan_source_map``), any size (a
        pass over the whole of it finds all that windows would), anything but an archive."""
        head = data[:512]
        opened = _nested_kind(head) is not None or gitobjects.kind_of(path, head) is not None
        if (
            scope is RuleScope.SELF_IDENTIFYING
            and not opened
            and not (self.engine.may_self_identify(data) or self.engine.parses(path))
        ):
            self.stats.files += 1
            self.stats.bytes += len(data)
            return
        if opened or len(data) > self.limits.chunk_bytes or sourcemap.is_candidate(path, head):
            self.scan(path, io.BytesIO(data), depth, scope=scope)
            return
        self.stats.files += 1
        self._scan_windows(path, data, None, scope=scope)

    def note_vouched(self, size: int) -> None:
        """Count a whole file of ``size`` bytes that package records vouch for."""
        self.stats.vouched_files += 1
        self.stats.vouched_bytes += size

    def _scan_source_map(self, path: str, head: bytes, stream: BinaryIO, depth: int, scope: RuleScope) -> None:
        """Each embedded source as a file of its own, then the rest of the map (``walk.sourcemap``).
        A map its package vouches for vouches for the sources it embeds; searched with the
        self-identifying rules, it is opened only where one might match: their secrets hold no
        character a JSON string escapes but a line break (``Engine.may_self_identify``), and reading the
        sources out of ten thousand maps took a third of the time of a large Node image's scan."""
        data = head + _read_exact(stream, sourcemap.MAX_SOURCE_MAP_BYTES + 1 - len(head))
        fits = len(data) <= sourcemap.MAX_SOURCE_MAP_BYTES
        if fits and scope is RuleScope.SELF_IDENTIFYING and not self.engine.may_self_identify(data):
            self.stats.bytes += len(data)
            return
        parsed = sourcemap.split(data) if fits else None
        if parsed is None:
            self._scan_windows(path, b"", prefixed(data, stream), scope=scope)
            return
        for name, content in parsed.sources:
            self.scan_whole(f"{path}!/{name}", content, depth + 1, scope=scope)
        self._scan_windows(path, b"", io.BytesIO(parsed.rest), first_line=None, scope=scope)

    def scan_plain(
        self, path: str, stream: BinaryIO, *, known: Collection[str] = (), first_line: int | None = 1
    ) -> None:
        """Scan bytes as they are, opening nothing: the stored bytes of what could not be decoded.
        A secret in ``known`` was already reported from the decoded view of the same bytes and is
        not reported again under this path; ``first_line`` None: line numbers are unknown."""
        self._scan_windows(path, b"", stream, known=known, first_line=first_line, parse=False)

    def _scan_nested(self, path: str, kind: str, head: bytes, stream: BinaryIO, depth: int, found: set[str]) -> None:
        """Open an archive; when a compressed stream cannot be decoded (damage, or a limit on what
        decoding it would take), its stored bytes are scanned as plain bytes too: a file named
        ``.gz`` may be partly plain text, and a secret beside the damage must not be lost with it."""
        raw: RawTail | None = None
        try:
            if kind == "zip":
                self._scan_zip(path, head, stream, depth, found)
            elif kind == "tar":
                self._scan_tar(path, prefixed(head, stream), depth, found)
            else:
                raw = RawTail(stream, head)
                self._scan_compressed(path, prefixed(head, raw), depth, found)  # type: ignore[arg-type]
        except LimitExceeded as exc:
            self.on_skip(Skipped(path, f"{exc}; the rest of this archive was not scanned"))
        except (XzMemoryLimit, *DECODE_ERRORS) as exc:
            if isinstance(exc, XzMemoryLimit):
                what = str(exc)
            else:
                what = f"nested archive unreadable ({type(exc).__name__}: {str(exc)[:120]}); scanned up to the damage"
            if raw is None or raw.failed:  # nothing more to read here: the damage is in what feeds it
                self.on_skip(Skipped(path, what))
                return
            rest, line, offset = raw.rest()
            where = f" from offset {offset}" if offset else ""
            self.on_skip(Skipped(path, f"{what}; its stored bytes{where} scanned as plain bytes"))
            self.scan_plain(path, rest, known=found, first_line=line)

    def _scan_git(
        self, path: str, git: gitobjects.GitFile, head: bytes, stream: BinaryIO, depth: int, found: set[str]
    ) -> None:
        """A file of a git repository's object store (``walk.gitobjects``): each blob, commit and
        tag in it scanned as a file of its own, ``PATH!/blob/ID``, once per layer however many files
        hold it. Read into memory whole (a delta needs its base at hand), as a zip is."""
        limit = self.limits.max_nested_bytes
        data = head + _read_exact(stream, limit + 1 - len(head))
        if len(data) > limit:
            reason = f"git {git.value} larger than max_nested_bytes ({limit}): scanned as plain bytes, objects not read"
            self.on_skip(Skipped(path, reason))
            self._scan_windows(path, b"", prefixed(data, stream))
            return
        held = min(limit, self.limits.max_nested_uncompressed_bytes)
        if git is gitobjects.GitFile.LOOSE:
            items = gitobjects.read_loose(path, data, max_bytes=held)
        else:
            items = gitobjects.read_pack(
                path,
                data,
                max_objects=self.limits.max_git_objects,
                max_bytes=self.limits.max_git_bytes,
                max_object=held,
            )
        for item in items:
            if isinstance(item, gitobjects.GitObject):
                if item.oid not in self._git_seen:
                    if item.whole:
                        self._git_seen.add(item.oid)
                    inner = f"{path}!/{item.label}"
                    if len(item.data) <= self.limits.chunk_bytes:
                        self.scan_whole(inner, item.data, depth=depth + 1)
                    else:
                        self.scan(inner, io.BytesIO(item.data), depth + 1)
                continue
            if item.reason is None:  # only looked like git: scanned as it is, as any file
                self._scan_windows(path, b"", io.BytesIO(data))
                continue
            self.on_skip(Skipped(path, item.reason))
            if item.plain_from is not None:
                self.scan_plain(path, _Span(data, item.plain_from, len(data)), known=found, first_line=None)  # type: ignore[arg-type]

    def _report(self, m: Match, path: str, line: int | None) -> None:
        for found in self._open:
            found.add(m.secret)
        self.on_match(m, path, line)

    def _scan_windows(
        self,
        path: str,
        head: bytes,
        stream: BinaryIO | None,
        *,
        known: Collection[str] = (),
        first_line: int | None = 1,
        parse: bool = True,
        scope: RuleScope = RuleScope.ALL,
    ) -> None:
        """Scan in windows of ``chunk_bytes`` overlapping by ``overlap_bytes``; every match shorter
        than the overlap is reported exactly once, with its true line number. When reading fails
        (damage), the bytes read before it are scanned before the error is raised. ``stream`` None:
        ``head`` is the whole file (no reader to go through for nearly every file)."""
        chunk, overlap = self.limits.chunk_bytes, self.limits.overlap_bytes
        more, error = read_window(stream, chunk - len(head)) if stream is not None else (b"", None)
        data = head + more
        line_base, seen_until, first = first_line or 1, 0, True
        while True:
            self.deadline.check()
            ahead = b""
            if error is None and len(data) >= chunk and stream is not None:
                ahead, error = read_window(stream, chunk - overlap)
            last = not ahead
            self.stats.bytes += len(data) - (0 if first else overlap)
            counted = newlines = 0  # newlines in data[:counted]: counted on from match to match, not from 0
            for m in self.engine.scan_bytes(data, path, parse=parse and first and last, scope=scope):
                if m.end <= seen_until or (not last and m.end > len(data) - GUARD) or m.secret in known:
                    continue
                if m.start < counted:  # matches come in offset order; should one not, count afresh
                    counted = newlines = 0
                newlines += data.count(b"\n", counted, m.start)
                counted = m.start
                line = line_base + newlines
                self._report(m, path, None if first_line is None else m.line if m.line and first and last else line)
            if last:
                if error is not None:
                    raise error
                return
            tail = data[-overlap:]
            line_base += data.count(b"\n", 0, len(data) - overlap)
            seen_until = overlap - GUARD
            data, first = tail + ahead, False

    def _scan_zip(self, path: str, head: bytes, stream: BinaryIO, depth: int, found: set[str]) -> None:
        limit = self.limits.max_nested_bytes
        data = head + _read_exact(stream, limit + 1 - len(head))
        if len(data) > limit:
            self.on_skip(
                Skipped(
                    path,
                    f"zip archive larger than max_nested_bytes ({limit}): scanned as plain bytes, entries not opened",
                )
            )
            self._scan_windows(path, b"", prefixed(data, stream))
            return
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            infos = archive.infolist()
        except DECODE_ERRORS as exc:  # a zip header but no readable zip (truncated, damaged)
            reason = f"zip archive unreadable ({str(exc)[:120]}): scanned as plain bytes, entries not opened"
            self.on_skip(Skipped(path, reason))
            self._scan_windows(path, b"", io.BytesIO(data))
            return
        if len(infos) > self.limits.max_nested_entries:
            self.on_skip(
                Skipped(
                    path,
                    f"{len(infos)} entries, over max_nested_entries ({self.limits.max_nested_entries}): the rest not scanned",
                )
            )
        spans = _MemberSpans(archive, len(data))
        for info in infos[: self.limits.max_nested_entries]:
            if info.filename.endswith("/"):  # (ZipInfo.is_dir fails on an empty name)
                continue
            inner = f"{path}!/{info.filename.lstrip('/')}"
            try:
                with archive.open(info) as member:
                    cap = self.limits.max_nested_uncompressed_bytes
                    bounded = io.BufferedReader(_Bounded(member, cap, inner))  # type: ignore[arg-type]
                    self.scan(inner, bounded, depth + 1)  # type: ignore[arg-type]
            except LimitExceeded as exc:  # one member too large: the others are still read
                self.on_skip(Skipped(inner, f"{exc}; the rest of this member was not scanned, other members were"))
            except DECODE_ERRORS as exc:  # one damaged (or encrypted) member: the others are still read
                lo, hi = spans.of(info)
                stored = f"; its stored bytes ({hi - lo}) scanned as plain bytes" if hi > lo else ""
                reason = (
                    f"zip member unreadable ({type(exc).__name__}: {str(exc)[:120]}){stored}; other members scanned"
                )
                self.on_skip(Skipped(inner, reason))
                if hi > lo:
                    self.scan_plain(inner, _Span(data, lo, hi), known=found, first_line=None)  # type: ignore[arg-type]

    def _scan_tar(self, path: str, stream: BinaryIO, depth: int, found: set[str]) -> bool:
        """False when a limit stopped the reading early."""
        bounded = io.BufferedReader(_Bounded(stream, self.limits.max_nested_uncompressed_bytes, path))  # type: ignore[arg-type]
        try:
            for count, entry in enumerate(iter_tar(bounded)):  # type: ignore[arg-type]
                if count >= self.limits.max_nested_entries:
                    self.on_skip(
                        Skipped(
                            path,
                            f"over max_nested_entries ({self.limits.max_nested_entries}): the rest not scanned",
                        )
                    )
                    return False
                if entry.kind is EntryKind.FILE and entry.open is not None:
                    self.scan(f"{path}!{entry.path}", entry.open(), depth + 1)
        except TarDamage as exc:  # the entries after a bad header are still there, as plain bytes
            self.on_skip(
                Skipped(
                    path,
                    f"nested tar unreadable at offset {exc.offset} ({str(exc)[:120]}): the entries before it were "
                    "scanned, its bytes from there on scanned as plain bytes",
                )
            )
            self.scan_plain(path, exc.rest, known=found, first_line=None)
        return True

    def _scan_compressed(self, path: str, stream: BinaryIO, depth: int, found: set[str]) -> None:
        inner_stream, _ = open_uncompressed(stream, xz_memory=self.limits.max_xz_memory)
        bounded = io.BufferedReader(_Bounded(inner_stream, self.limits.max_nested_uncompressed_bytes, path))  # type: ignore[arg-type]
        inner_head = _read_exact(bounded, 512)  # type: ignore[arg-type]
        if _is_tar(inner_head):
            if self._scan_tar(path, prefixed(inner_head, bounded), depth, found):  # type: ignore[arg-type]
                while bounded.read(1 << 20):  # to the stream's end: damage after the last entry is still reported
                    pass
            return
        base = posixpath.basename(path)
        for suffix in _COMPRESSED_SUFFIXES:
            if base.endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        self.scan(f"{path}!/{base}", prefixed(inner_head, bounded), depth + 1)  # type: ignore[arg-type]


class _MemberSpans:
    """Where each zip member's stored bytes lie (local header, data, descriptor): from its header
    offset to the next member's, or to the central directory. Each span is handed out once, so
    central-directory entries that all point at one member cannot make it be scanned again and again."""

    def __init__(self, archive: zipfile.ZipFile, size: int) -> None:
        self._archive, self._size = archive, size
        self._ends: list[int] | None = None
        self._given: set[int] = set()

    def of(self, info: zipfile.ZipInfo) -> tuple[int, int]:
        lo = info.header_offset
        if self._ends is None:
            starts = {i.header_offset for i in self._archive.infolist()}
            starts.add(min(self._size, getattr(self._archive, "start_dir", self._size)))
            self._ends = sorted(starts)
        if lo in self._given or not 0 <= lo < self._size:
            return 0, 0
        self._given.add(lo)
        after = bisect.bisect_right(self._ends, lo)
        hi = min(self._ends[after] if after < len(self._ends) else self._size, self._size)
        return (lo, hi) if hi > lo else (0, 0)


class _Span(io.RawIOBase):
    """``data[lo:hi]`` as a stream, read window by window without copying the whole span."""

    def __init__(self, data: bytes, lo: int, hi: int) -> None:
        self._view, self._pos, self._end = memoryview(data), lo, hi

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self._end - self._pos))
        buffer[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n


def read_window(stream: BinaryIO, n: int) -> tuple[bytes, Exception | None]:
    """Up to ``n`` bytes, and the error that stopped the reading early, if one did: the bytes
    before damage are still scanned (a whole window would otherwise be lost with them). Read in
    pieces of ``_PIECE``: a reader that meets damage loses what it gathered for the failing call."""
    parts, left = [], n
    try:
        while left > 0:
            data = read_some(stream, min(left, _PIECE))
            if not data:
                break
            parts.append(data)
            left -= len(data)
    except Exception as exc:  # noqa: BLE001 - handed back: raised once the bytes before it are scanned
        return b"".join(parts), exc
    return b"".join(parts), None


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end; an error is raised as it comes."""
    data, error = read_window(stream, n)
    if error is not None:
        raise error
    return data


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


ARCHIVE_FIRST_BYTES = frozenset(magic[0] for magic in (*_ZIP_MAGIC, GZIP_MAGIC, ZSTD_MAGIC, BZIP2_MAGIC, XZ_MAGIC))
"""The first byte of every archive kind but tar (told at offset 257): most files start otherwise."""


def _nested_kind(head: bytes) -> str | None:
    if head[:1] and head[0] not in ARCHIVE_FIRST_BYTES and head[257:262] != b"ustar":
        return None  # nearly every file: one look at two places
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if _is_tar(head):
        return "tar"
    kind = sniff(head)
    return kind if kind != "none" else None
