"""Scan one layer into a ``LayerResult`` that does not depend on where the layer sits.

A layer blob is content-addressed: the same blob is the same result in every image that uses it,
at whatever index. Keeping the result free of image facts (index, build step, fate) lets sources
that stream layers out of order (``docker save``) attribute them afterwards, and is what a
per-layer cache stores.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from secretscan.deadline import NO_DEADLINE, Deadline
from secretscan.detect.engine import Engine
from secretscan.detect.seal import Sealer, Sighting
from secretscan.errors import BlobOverrun, SecretScanError, TimeLimitReached
from secretscan.image.compression import Observed, XzMemoryLimit, open_uncompressed, prefixed, read_some
from secretscan.image.entries import EntryKind, FileEntry
from secretscan.limits import Limits
from secretscan.models import RuleScope, Skipped
from secretscan.provenance import collect
from secretscan.provenance.index import Place, ProvenanceIndex, Vouch, listed_content
from secretscan.provenance.model import FileFacts, LayerPackages
from secretscan.walk import headers
from secretscan.walk.content import ARCHIVE_FIRST_BYTES, DECODE_ERRORS, ContentScanner, RawTail, read_window
from secretscan.walk.fate import LayerPaths
from secretscan.walk.filedigest import DigestingReader, whole_digests
from secretscan.walk.tarstream import TarDamage, iter_tar

logger = logging.getLogger(__name__)

RAW_LAYER_PATH = "(the layer)"
"""The path of what is read from a layer's bytes as they are stored (not from one of its files)."""
MAX_VOUCHED_READ = 64 * 1024 * 1024
"""A file longer than a scan window that package records may vouch for is read whole up to this
(a shared library, a bundled ``typescript.js``), so that its digest is known before the search."""


LAYER_RESULT_FORMAT = 3
"""Raised whenever ``LayerResult`` gains what older cached results lack (2: package records; 3: a
sighting in documentation)."""


@dataclass
class LayerResult:
    matches: list[tuple[Sighting, str, int | None]] = field(default_factory=list)
    """(sighting, path inside the layer with ``!/`` nesting, line)."""
    paths: LayerPaths = field(default_factory=LayerPaths)
    hardlinks: list[tuple[str, str]] = field(default_factory=list)
    """(link path, target path): a link ships its target's bytes under another name."""
    skipped: list[Skipped] = field(default_factory=list)
    """``what`` is the path inside the layer; the image and layer are prefixed when reported."""
    error: str | None = None
    """Set when the layer could not be read to its end (what was read before is kept)."""
    files: int = 0
    bytes: int = 0
    stored_digest: str | None = None
    """sha256 of the blob as stored (compressed or not), computed while streaming."""
    compression: str = "none"
    packages: LayerPackages = field(default_factory=LayerPackages)
    """The package records this layer's database files hold (``provenance``)."""
    package_files: int = 0
    package_bytes: int = 0
    """Files (and their bytes) of this layer that its own package records list."""
    vouched_files: int = 0
    vouched_bytes: int = 0
    """Files whose records, read before the scan (``walk.split.survey``), vouched for their bytes
    (see ``Vouching``)."""
    facts: dict[str, FileFacts] = field(default_factory=dict)
    """path -> digests, time and mode of each file a secret was seen in: checked against the
    package records of the whole image when the layer is placed in it."""
    sizes: dict[str, int] = field(default_factory=dict, repr=False, metadata={"transient": True})
    """path -> size of each file, kept only for a piece of a layer (``walk.split``): the package
    counts need the whole layer's records."""
    secrets: dict[str, str] = field(default_factory=dict, repr=False, metadata={"transient": True})
    """fingerprint -> plaintext of ``matches``: in memory only, never stored (see ``detect.seal``)."""


def scan_layer_blob(
    engine: Engine,
    sealer: Sealer,
    limits: Limits,
    blob: BinaryIO,
    on_bytes: Callable[[int], None] = lambda n: None,
    deadline: Deadline = NO_DEADLINE,
    expected: LayerPackages | None = None,
    package_scope: RuleScope = RuleScope.SELF_IDENTIFYING,
) -> LayerResult:
    """Stream a stored layer blob (gzip, zstd or plain tar, told by its magic bytes) to its end
    (or to the ``deadline``: then ``error`` says the layer was not finished). ``expected``: the
    layer's own package records, read before the scan, which vouch for files as they come, to be
    searched with ``package_scope`` (see ``Vouching``)."""
    result = LayerResult()
    sha256 = hashlib.sha256()

    def seen(data: bytes) -> None:
        sha256.update(data)
        on_bytes(len(data))

    stored = [0]

    def count_stored(data: bytes) -> None:
        stored[0] += len(data)
        seen(data)

    hashing = Observed(blob, count_stored)
    stored_bytes = RawTail(io.BufferedReader(hashing, 1 << 20))
    try:
        stream, result.compression = open_uncompressed(stored_bytes, xz_memory=limits.max_xz_memory)  # type: ignore[arg-type]
        stored_bytes.keeping = result.compression != "none"  # a plain tar's damage is handled by iter_tar
        stream = io.BufferedReader(_LayerBound(stream, limits, stored), 1 << 20)
        vouching = Vouching.of(expected, package_scope)
        members = _Members.of(engine, limits, vouching, deadline)
        entries = iter_tar(stream, members.take if members is not None else None)
        _scan_entries(engine, sealer, limits, entries, result, deadline, vouching=vouching, members=members)
        while stream.read(1 << 20):
            pass  # the rest of the blob (tar padding) still counts for its digest
        while hashing.read(1 << 20):
            pass
        result.stored_digest = "sha256:" + sha256.hexdigest()
    except TimeLimitReached as exc:
        result.error = _not_finished(exc)
    except BlobOverrun as exc:
        result.error = str(exc)
        # what was read was hashed (a registry's declared bytes, a layout's whole file): the digest
        # check still tells a tampered blob from one that is only longer
        result.stored_digest = "sha256:" + sha256.hexdigest()
    except SecretScanError as exc:
        result.error = str(exc)
    except LayerTooLarge as exc:
        result.skipped.append(Skipped(RAW_LAYER_PATH, f"{exc}: the rest of the layer was not scanned"))
        result.stored_digest = _finish_digest(hashing, sha256)
    except XzMemoryLimit as exc:
        result.skipped.append(Skipped(RAW_LAYER_PATH, f"{exc}; its stored bytes were scanned as plain bytes"))
        result.stored_digest = _scan_stored_rest(
            engine, sealer, limits, result, stored_bytes, hashing, sha256, deadline
        )
    except DECODE_ERRORS as exc:
        result.error = f"unreadable layer: {type(exc).__name__}: {str(exc)[:160]}; files before the damage were scanned"
        if result.compression == "none" or stored_bytes.failed:
            result.stored_digest = _finish_digest(hashing, sha256)
        else:
            result.error += ", and its stored bytes from the damage on as plain bytes"
            result.stored_digest = _scan_stored_rest(
                engine, sealer, limits, result, stored_bytes, hashing, sha256, deadline
            )
    return result


def _scan_stored_rest(
    engine: Engine,
    sealer: Sealer,
    limits: Limits,
    result: LayerResult,
    stored_bytes: RawTail,
    hashing: Observed,
    sha256: hashlib._Hash,
    deadline: Deadline,
) -> str | None:
    """After the layer's decompression failed: its stored bytes from the damage on, scanned as
    plain bytes. Compressed data rarely holds plain text, but a blob that only *starts* like gzip
    (or has plain text appended) does, and the blob ships to whoever pulls it. The bytes were to be
    read anyway, for the digest check; returns the blob's digest (None if it cannot be read)."""
    scanner = _content_scanner(engine, sealer, limits, result, deadline)
    rest, line, _ = stored_bytes.rest()
    try:
        scanner.scan_plain(RAW_LAYER_PATH, rest, known=set(result.secrets.values()), first_line=line)
    except (SecretScanError, *DECODE_ERRORS):
        return None  # the blob itself cannot be read to its end: that is reported as it is
    finally:
        result.bytes += scanner.stats.bytes
    return _finish_digest(hashing, sha256)


def _not_finished(exc: TimeLimitReached) -> str:
    return f"not finished: {exc} (files before it were scanned)"


class LayerTooLarge(Exception):
    """Not a decoding error: nothing inside the layer (a nested archive) may catch it."""


def bounded_uncompressed(raw: BinaryIO, limits: Limits) -> BinaryIO:
    """A stored layer's uncompressed bytes (any compression ``open_uncompressed`` knows), bounded
    as its scan bounds them: ``max_layer_bytes``, ``max_compression_ratio``, ``max_xz_memory``.
    For a pass over a layer beside its scan (``walk.split.survey_stored``)."""
    stored = [0]

    def count(data: bytes) -> None:
        stored[0] += len(data)

    stream, _ = open_uncompressed(io.BufferedReader(Observed(raw, count), 1 << 20), xz_memory=limits.max_xz_memory)  # type: ignore[arg-type]
    return io.BufferedReader(_LayerBound(stream, limits, stored), 1 << 20)  # type: ignore[arg-type]


class _LayerBound(io.RawIOBase):
    """The uncompressed layer stream, stopped at ``max_layer_bytes`` or, past 64 MiB, at
    ``max_compression_ratio``: a decompression bomb costs bounded time, not an unbounded scan."""

    RATIO_AFTER = 64 * 1024 * 1024

    def __init__(self, inner: BinaryIO, limits: Limits, stored: list[int]) -> None:
        self._inner, self._limits, self._stored, self._read = inner, limits, stored, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        # never more than the limit allows, however much is asked for: the files within it are
        # scanned even when the reader above reads far ahead
        allowed = self._limits.max_layer_bytes - self._read
        data = read_some(self._inner, min(len(buffer), max(1, allowed)))
        self._read += len(data)
        if self._read > self._limits.max_layer_bytes:
            raise LayerTooLarge(
                f"layer larger than max_layer_bytes ({self._limits.max_layer_bytes} bytes uncompressed)"
            )
        if self._read > self.RATIO_AFTER and self._read > self._limits.max_compression_ratio * max(1, self._stored[0]):
            raise LayerTooLarge(
                f"layer expands more than max_compression_ratio ({self._limits.max_compression_ratio}:1): "
                "a decompression bomb, or a layer that needs a higher limit"
            )
        buffer[: len(data)] = data
        return len(data)


def _finish_digest(hashing: Observed, sha256: hashlib._Hash) -> str | None:
    """After a decoding failure, hash the rest of the blob: if its bytes do not match its digest,
    that (tampering or corruption in transit) is the error to report, not the decoder's symptom."""
    try:
        while hashing.read(1 << 20):
            pass
    except (SecretScanError, *DECODE_ERRORS):  # cut off, stalled, out of time, overrun, or a source's
        return None  # own reader failing again (a save stream's tar): the findings so far are kept
    return "sha256:" + sha256.hexdigest()


def scan_layer_piece(
    engine: Engine,
    sealer: Sealer,
    limits: Limits,
    stream: BinaryIO,
    deadline: Deadline = NO_DEADLINE,
    expected: LayerPackages | None = None,
    package_scope: RuleScope = RuleScope.SELF_IDENTIFYING,
) -> LayerResult:
    """A run of whole members of an uncompressed layer (``walk.split``): scanned as a layer is,
    keeping the file sizes for the merge; the digest is the whole layer's, taken elsewhere."""
    result = LayerResult()
    vouching = Vouching.of(expected, package_scope)
    members = _Members.of(engine, limits, vouching, deadline)
    entries = iter_tar(stream, members.take if members is not None else None)
    try:
        _scan_entries(
            engine, sealer, limits, entries, result, deadline, keep_sizes=True, vouching=vouching, members=members
        )
    except TimeLimitReached as exc:
        result.error = _not_finished(exc)
    except SecretScanError as exc:
        result.error = str(exc)
    except DECODE_ERRORS as exc:
        result.error = f"unreadable layer: {type(exc).__name__}: {str(exc)[:160]}; files before the damage were scanned"
    return result


def scan_layer_entries(
    engine: Engine, sealer: Sealer, limits: Limits, entries: Iterator[FileEntry], deadline: Deadline = NO_DEADLINE
) -> LayerResult:
    """A layer that is not a blob (a plain directory): entries come with their own readers."""
    result = LayerResult()
    try:
        _scan_entries(engine, sealer, limits, entries, result, deadline)
    except TimeLimitReached as exc:
        result.error = _not_finished(exc)
    return result


@dataclass(frozen=True, slots=True)
class Vouching:
    """A layer's own package records, read before its scan (``walk.split.survey``), which vouch for
    the files they list as installed (``ProvenanceIndex.vouch``), and what is done with those.

    A value seen only in such files is published by its package: informational, never failed on.
    So they are searched with ``scope``: by default the self-identifying rules only, which lists
    the provider keys packages publish at a fraction of the cost of every rule (most of an
    application image's bytes are package content); ``--search-packages``: every provider-format
    rule. Except the Python sources of dpkg, rpm and apk packages: the ``.pyc`` that ``py3compile``
    writes after install is listed by no record (so searched with every rule), and is published
    only when its value is seen in the pristine ``.py`` it was compiled from (``findings``), so
    those are searched with every provider-format rule."""

    index: ProvenanceIndex
    scope: RuleScope

    def scope_for(self, path: str) -> RuleScope:
        """The rules a file at ``path`` that the records vouch for is searched with."""
        if path.endswith(".py") and self.index.leaves_compiled_unlisted(path):
            return RuleScope.PROVIDER
        return self.scope

    @staticmethod
    def of(expected: LayerPackages | None, scope: RuleScope) -> Vouching | None:
        return Vouching(ProvenanceIndex([expected]), scope) if expected else None


def _scan_entries(
    engine: Engine,
    sealer: Sealer,
    limits: Limits,
    entries: Iterator[FileEntry],
    result: LayerResult,
    deadline: Deadline = NO_DEADLINE,
    *,
    keep_sizes: bool = False,
    vouching: Vouching | None = None,
    members: _Members | None = None,
) -> None:
    """``members``: what takes the files it lets pass from the tar walk (``iter_tar``'s
    ``passing``): they join the paths, sizes and counts here."""
    scanner = _content_scanner(engine, sealer, limits, result, deadline)
    collector = collect.Collector()
    sizes: dict[str, int] = {}
    if members is not None:
        members.present, members.sizes = result.paths.present, sizes
    try:
        present = result.paths.present
        for entry in entries:
            deadline.check()
            if entry.kind is EntryKind.FILE or entry.kind is EntryKind.DIR:
                present[entry.path] = entry.kind  # ``LayerPaths.record``, for nearly every entry
            else:
                result.paths.record(entry)
            if entry.kind is EntryKind.HARDLINK:
                result.hardlinks.append((entry.path, entry.link_target))
            elif entry.kind is EntryKind.FILE and entry.open is not None:
                sizes[entry.path] = entry.size
                try:
                    _scan_file(scanner, collector, limits, entry, result, vouching)
                except OSError as exc:  # a file of a plain directory that vanished or is unreadable
                    if exc.errno is None:  # not a filesystem error (a damaged stream): the layer's problem
                        raise
                    result.skipped.append(Skipped(entry.path, f"unreadable ({exc.strerror or exc})"))
    except TarDamage as exc:  # the files after a bad header are still in the layer, verbatim
        result.error = (
            f"unreadable layer: {str(exc)[:160]}; files before the damage were scanned, "
            "and the bytes from there on as plain bytes"
        )
        scanner.scan_plain(RAW_LAYER_PATH, exc.rest, first_line=None)
    finally:
        stats = scanner.stats
        passed = (members.files, members.bytes) if members is not None else (0, 0)
        result.files, result.bytes = stats.files + passed[0], stats.bytes + passed[1]
        result.vouched_files, result.vouched_bytes = stats.vouched_files + passed[0], stats.vouched_bytes + passed[1]
        result.packages = collector.packages
        if keep_sizes:  # a piece: counted once its layer's pieces are merged (``walk.split.merge``)
            result.sizes = sizes
        else:
            result.package_files, result.package_bytes = listed_content(result.packages, sizes)
        for path, why in collector.problems:  # the file itself was scanned: a note, not a gap in the scan
            logger.warning("%s: %s; values in the files it lists are judged without it", path, why)


_RECORDED = object()
"""``_Members.places``' answer for a directory some record names a file in."""


class _Members:
    """The files a layer's package records vouch for (``ProvenanceIndex.vouch``: npm, Go and gem
    trees by membership, pip, dpkg, apk and rpm files by a digest their bytes match), searched with
    the self-identifying rules: most of an application image's files. For each, ``_scan_file``
    comes down to one Hyperscan pass that nearly always finds nothing, and reading its header,
    deciding that it comes down to that and calling ``_scan_file`` took three times as long as the
    pass. So a run of such files is taken in C from the tar walk's piece at hand
    (``headers.pass_members``, called by ``iter_tar`` as ``take``), recorded and counted as
    ``_scan_entries`` and ``_scan_data`` would, with what decides about them worked out here
    (``place_of`` once per directory, ``plain_of`` once per ``parent/name``; per file, ``odd`` on
    the place, or ``vouches`` where records name files). The first file it does not let pass, the
    tar walk hands on as usual: ``_scan_file`` takes it, as every file of another kind."""

    RUN = 4096
    """Members taken per call: the deadline is checked between calls."""

    def __init__(self, engine: Engine, limits: Limits, vouching: Vouching, deadline: Deadline) -> None:
        self._engine, self._vouching, self._index, self._deadline = engine, vouching, vouching.index, deadline
        self.largest = limits.chunk_bytes
        """The longest file taken (a scan window)."""
        self.places: dict[str, Place | object | None] = {}
        """Directory -> the place of its files when records vouch for them by membership (then
        per file, by its layer, time and mode: ``Place.odd``); ``recorded`` where records name
        files (then per file: ``vouches``); None when they cannot pass."""
        self.names: dict[str, bool] = {}
        """The last two parts of a path (``parent/name``) -> whether its name lets it pass."""
        self.present: dict[str, EntryKind] = {}
        self.sizes: dict[str, int] = {}
        """The layer's paths and its files' sizes (``_scan_entries``'), which passed files join."""
        self.first_bytes = bytes(byte in ARCHIVE_FIRST_BYTES for byte in range(256))
        """Whether a file starting with a byte may be an archive (``ContentScanner.scan_whole`` opens those)."""
        self.finds = engine.may_self_identify
        self.recorded = _RECORDED
        self.dir_kind, self.file_kind = EntryKind.DIR, EntryKind.FILE
        self.files = self.bytes = 0

    @staticmethod
    def of(engine: Engine, limits: Limits, vouching: Vouching | None, deadline: Deadline) -> _Members | None:
        if vouching is None or vouching.scope is not RuleScope.SELF_IDENTIFYING:
            return None
        return _Members(engine, limits, vouching, deadline)

    def take(self, buf: bytes, at: int) -> int:
        """``iter_tar``'s ``passing``: the members from ``buf[at]`` on that pass, recorded and
        counted; where the first that does not starts."""
        self._deadline.check()
        stop, files, total = headers.pass_members(buf, at, self.RUN, self)
        self.files += files
        self.bytes += total
        return stop

    def place_of(self, path: str, directory: str) -> Place | object | None:
        """What every file of ``directory`` shares: no git objects or dpkg ``status.d`` there, a
        plain name (no nesting mark, no backslash: ``Engine.parses`` then goes by its last two
        parts); and a published place where no record names a file (``ProvenanceIndex.vouch``
        then goes by the place), or ``recorded`` where one does."""
        unnamed = self._index.unnamed_place(path)
        within = directory + "/"
        place: Place | object | None = None
        if not any(mark in within for mark in ("objects/", "status.d/", "!", "\\")):
            place = _RECORDED if unnamed is None else unnamed if unnamed.published else None
        self.places[directory] = place
        return place

    def vouches(self, path: str, mtime: int, mode: int, data: bytes) -> bool:
        """For a file of a ``recorded`` directory: whether its records vouch for these bytes
        (``ProvenanceIndex.vouch``: a digest they match, or pip's membership of a compiled file)
        and leave it to the self-identifying rules (``Vouching.scope_for``), as ``_scan_data``
        decides."""
        vouch = self._index.vouch(path, mtime, mode)
        return vouch is not None and self._vouching.scope_for(path) is RuleScope.SELF_IDENTIFYING and vouch.holds(data)

    def plain_of(self, path: str, tail: str) -> bool:
        """What a file's name decides: no package database's name (``collect.might_want``), no
        credential file a parser reads, no nesting mark or backslash."""
        plain = not ("!" in tail or "\\" in tail or collect.might_want(tail) or self._engine.parses(path))
        self.names[tail] = plain
        return plain


def _scan_file(
    scanner: ContentScanner,
    collector: collect.Collector,
    limits: Limits,
    entry: FileEntry,
    result: LayerResult,
    vouching: Vouching | None = None,
) -> None:
    """Scan one regular file; read it as a package database too if it is one; keep its digests
    if a secret was seen in it."""
    assert entry.open is not None
    database = collect.wants(entry.path)
    vouch = None if vouching is None or database else vouching.index.vouch(entry.path, entry.mtime, entry.mode)
    if entry.data is not None and entry.size <= limits.chunk_bytes and not database:  # at hand: no reader
        _scan_data(scanner, entry, entry.data, result, vouching, vouch)
        return
    with entry.open() as stream:
        _scan_opened(scanner, collector, limits, entry, stream, result, vouching, vouch, database)


def _scan_opened(
    scanner: ContentScanner,
    collector: collect.Collector,
    limits: Limits,
    entry: FileEntry,
    stream: BinaryIO,
    result: LayerResult,
    vouching: Vouching | None,
    vouch: Vouch | None,
    database: bool,
) -> None:
    found = len(result.matches)
    if database and entry.size <= limits.max_package_db_bytes:
        data = _read_all(stream, limits.max_package_db_bytes)
        scanner.scan(entry.path, io.BytesIO(data))
        collector.feed(entry.path, data, entry.mtime)
        if len(result.matches) > found:
            result.facts[entry.path] = FileFacts(whole_digests(data), entry.mtime, entry.mode)
        return
    if database:
        limit = limits.max_package_db_bytes
        collector.problems.append(
            (entry.path, f"package database larger than max_package_db_bytes ({limit}): not read")
        )
    # nearly every file, and a longer one that package records may vouch for: read once, searched
    # and hashed in memory (whether the records vouch for a file's bytes is known before the search)
    whole = limits.chunk_bytes
    if vouch is not None and whole < entry.size <= MAX_VOUCHED_READ:
        whole = MAX_VOUCHED_READ
    if entry.size <= whole:
        data, error = read_window(stream, whole + 1)
        if len(data) <= whole:  # (a plain directory's file may have grown since its stat)
            _scan_data(scanner, entry, data, result, vouching, vouch)
            if error is not None:  # the bytes before the damage were searched first
                raise error
            return
        stream = prefixed(data, stream)
    reader = DigestingReader(stream, entry.path)
    scanner.scan(entry.path, reader)  # type: ignore[arg-type]
    if len(result.matches) > found:
        result.facts[entry.path] = FileFacts(reader.digests(), entry.mtime, entry.mode)


def _scan_data(
    scanner: ContentScanner,
    entry: FileEntry,
    data: bytes,
    result: LayerResult,
    vouching: Vouching | None,
    vouch: Vouch | None,
) -> None:
    """Search a file read whole: with fewer rules when its records vouch for these bytes."""
    found = len(result.matches)
    if vouch is not None and vouching is not None and vouch.holds(data):
        scanner.note_vouched(len(data))
        scanner.scan_whole(entry.path, data, scope=vouching.scope_for(entry.path))
    else:
        scanner.scan_whole(entry.path, data)
    if len(result.matches) > found:
        result.facts[entry.path] = FileFacts(whole_digests(data), entry.mtime, entry.mode)


def _read_all(stream: BinaryIO, limit: int) -> bytes:
    parts, left = [], limit
    while left > 0 and (data := read_some(stream, min(left, 1 << 20))):
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _content_scanner(
    engine: Engine, sealer: Sealer, limits: Limits, result: LayerResult, deadline: Deadline = NO_DEADLINE
) -> ContentScanner:
    return ContentScanner(
        engine,
        limits,
        lambda m, path, line: result.matches.append((sealer.seal(m, result.secrets), path, line)),
        result.skipped.append,
        deadline,
    )
