"""The pipeline for one run: every image of a source -> its config and history, and every layer
scanned on its own (``walk.layer``) -> attributed to the image (index, build step, fate) ->
findings. Per-item trouble becomes a ``Skipped`` or an error in the report; what was already found
is never lost."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import BinaryIO

from secretscan.config import ScanConfig
from secretscan.deadline import Deadline
from secretscan.detect.engine import Engine
from secretscan.detect.knownkeys import KnownKeys
from secretscan.detect.rules import RuleSet
from secretscan.detect.seal import Sealer, Sighting
from secretscan.detection import Detection
from secretscan.enrich import Enricher, file_problems
from secretscan.errors import SecretScanError, SourceLimitReached
from secretscan.findings import Occurrence, aggregate, sort_findings
from secretscan.image import spool
from secretscan.image.compression import sniff
from secretscan.image.entries import EntryKind, FileEntry
from secretscan.image.model import Image, ImageConfig, ImageIdentity, LayerFacts, LayerHandle
from secretscan.models import Exposure, ImageSummary, LayerSummary, Location, RuleScope, ScanReport, Skipped
from secretscan.parallel import fork_call, fork_map
from secretscan.provenance.index import ProvenanceIndex
from secretscan.provenance.model import LayerPackages
from secretscan.redact import Masker
from secretscan.sources import Source, StreamedSource
from secretscan.sources.savestream import SaveStream, read_save_stream
from secretscan.streamlayers import EachAsItPasses, Finished, HeldInMemory, Running
from secretscan.version import __version__
from secretscan.walk import split
from secretscan.walk.config_fields import config_texts
from secretscan.walk.fate import FateIndex
from secretscan.walk.layer import LayerResult, scan_layer_blob, scan_layer_entries, scan_layer_piece
from secretscan.walk.split import Piece

logger = logging.getLogger(__name__)


class ProgressUnit(Enum):
    """What a bar counts: stored bytes of layers, or the files of a plain directory (which has no
    blob, and whose size is not known before it is walked)."""

    BYTES = "B"
    FILES = "files"


class Progress:
    """What the pipeline tells a progress display, only ever from the process that scans the
    image (never from a forked worker). The default shows nothing.

    Calls for one image: ``start_image``, then ``advance`` and ``layer_done`` in any order, then
    ``end_image``. The amounts given to ``advance`` add up to at most ``total`` (when known), and
    to ``total`` when every layer was gone through."""

    def start_image(
        self, name: str, total: int | None, layers: int, unit: ProgressUnit = ProgressUnit.BYTES
    ) -> None: ...
    def advance(self, amount: int) -> None: ...
    def layer_done(self) -> None: ...
    def end_image(self) -> None: ...


def _ignore(amount: int) -> None:
    """The progress callback of work whose progress is told another way (a forked worker's: its
    piece moves the bar when the parent hears it is done)."""


def _share(piece: Piece, layer_size: int) -> int:
    """What a piece adds to its image's bar: the stored bytes it covers (the digest task reads a
    layer its pieces already counted; a whole layer's records pass is part of its share)."""
    return 0 if piece.digest_only else layer_size if piece.end is None else piece.end - piece.start


def _counted(entries: Iterator[FileEntry], on_file: Callable[[int], None]) -> Iterator[FileEntry]:
    """``entries``, telling ``on_file`` of each regular file once it has been scanned (when the
    next entry is asked for, or the walk ends)."""
    for entry in entries:
        yield entry
        if entry.kind is EntryKind.FILE:
            on_file(1)


class _Meter:
    """Moves an image's bar by what each piece reads as it reads it, when it is read in this
    process, and by the rest of the piece's share when it is done: a piece read in a forked
    worker, or one that stopped early (damage, ``--timeout``), still brings the bar to its
    total, and nothing moves it past its share. So the bar only moves forward, and ends full."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.shares: list[int | None] = []
        """Per piece: what it adds to the bar in all (None: unknown, then what it reports)."""
        self.given: list[int] = []
        self.pieces_left: Counter[int] = Counter()
        self.layer_of: list[int] = []

    def add(self, share: int | None, layer: int) -> None:
        """The next piece, of ``layer``."""
        self.shares.append(share)
        self.given.append(0)
        self.pieces_left[layer] += 1
        self.layer_of.append(layer)

    def reporter(self, k: int) -> Callable[[int], None]:
        def seen(amount: int) -> None:
            share = self.shares[k]
            if share is not None:
                amount = min(amount, share - self.given[k])
            if amount > 0:
                self.given[k] += amount
                self.progress.advance(amount)

        return seen

    def done(self, k: int) -> None:
        """Piece ``k`` is done: the bar gets the rest of its share, and a layer whose last piece
        this was is counted."""
        share = self.shares[k]
        if share is not None and share > self.given[k]:
            rest, self.given[k] = share - self.given[k], share
            self.progress.advance(rest)
        layer = self.layer_of[k]
        self.pieces_left[layer] -= 1
        if self.pieces_left[layer] == 0:
            self.progress.layer_done()


@dataclass(frozen=True, slots=True)
class _Inflate:
    """The compressed layer to decompress into the memory file ``fd``, at most ``cap`` bytes, then
    cut (``Scanner._inflated``): an item of the workers' work beside the other layers' pieces."""

    layer: int
    fd: int
    cap: int

    def weight(self, layer_size: int) -> int:
        """Handed out first, whatever its size (``Piece.weight``): its pieces wait for it."""
        return 1 << 62


@dataclass(slots=True)
class _Walked:
    """What ``Scanner._inflated`` gives: the walk over the decompressed layer's headers, its package
    records, and the decompression's result (size, compression, stored digest, or error)."""

    survey: split.Survey
    records: LayerPackages | None
    stored: LayerResult | None


@dataclass(frozen=True, slots=True)
class LayerNote:
    """What attribution says of one layer of an image that was not (fully) read, or went wrong,
    before the image is named: a sweep attributes an image config once and names the notes for
    every image that uses it (``named``)."""

    layer: int
    detail: str
    """Follows ``IMAGE layer N``: ``": /path"``, ``" (sha256:…)"`` or nothing."""
    reason: str | None
    """Why it was skipped; None: an error, whose text is ``detail``."""

    def label(self, image: str) -> str:
        """What is skipped (or, for an error, the error) in the image called ``image``."""
        return f"{image} layer {self.layer}{self.detail}"


@dataclass
class RunState:
    """What a run collects across images, so that one image's failure keeps the others' results."""

    occurrences: list[Occurrence] = field(default_factory=list)
    summaries: list[ImageSummary] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """fingerprint -> plaintext, in memory only (verification, Vault, ``--show-secrets``)."""
    started: float | None = None

    def add_notes(self, image: str, notes: Sequence[LayerNote]) -> None:
        for note in notes:
            if note.reason is None:
                self.errors.append(note.label(image))
            else:
                self.skipped.append(Skipped(note.label(image), note.reason))


@dataclass
class Scanner:
    config: ScanConfig
    detection: Detection | Callable[[], Detection]
    """Built from ``config`` (``Detection.for_config``), once per run; or how to build it, on
    first use. Local layers are surveyed first, in forked workers that need no rules
    (``_pieces``): the stack is built meanwhile, on a core that would otherwise wait for them."""
    progress: Progress = field(default_factory=Progress)
    baseline: frozenset[str] = frozenset()
    enrichers: Sequence[Enricher] = ()
    deadline: Deadline = field(default_factory=Deadline)
    """``--timeout``: layers not finished by then are listed as errors; what they gave is kept."""

    def stack(self) -> Detection:
        """The detection stack, built now if it was not yet."""
        if not isinstance(self.detection, Detection):
            self.detection = self.detection()
        return self.detection

    @property
    def ruleset(self) -> RuleSet:
        return self.stack().ruleset

    @property
    def package_scope(self) -> RuleScope:
        """The rules that search the files package records vouch for (``walk.layer.Vouching``)."""
        return RuleScope.PROVIDER if self.config.search_packages else RuleScope.SELF_IDENTIFYING

    @property
    def known(self) -> KnownKeys:
        return self.stack().known

    @property
    def engine(self) -> Engine:
        return self.stack().engine

    @property
    def sealer(self) -> Sealer:
        return self.stack().sealer

    def scan(self, source: Source) -> ScanReport:
        return self.scan_with_secrets(source)[0]

    def scan_with_secrets(self, source: Source) -> tuple[ScanReport, dict[str, str]]:
        """The report, and fingerprint -> plaintext in memory (for ``migrate apply`` only)."""
        state = RunState(started=time.time())
        failed: list[SecretScanError] = []
        try:
            if isinstance(source, StreamedSource):  # its layers are scanned as they pass
                self.scan_stream(self._opened_while_building(source), state)
            else:
                for image in source.images():
                    try:
                        self.scan_image(image, state)
                    except SourceLimitReached as exc:  # one bad image (or branch) costs only itself
                        state.skipped.append(Skipped(image.name, str(exc)))
                        failed.append(exc)
                    except SecretScanError as exc:
                        state.errors.append(str(exc))
                        failed.append(exc)
        except SecretScanError as exc:
            if not state.summaries and not state.occurrences:
                raise
            state.errors.append(str(exc))
        if failed and not state.summaries and not state.occurrences:
            raise failed[0]  # no image could be read at all: one clear error, as for a single image
        return self.report(source.description, state)

    def report(self, target: str, state: RunState) -> tuple[ScanReport, dict[str, str]]:
        result = aggregate(
            state.occurrences, self.ruleset, self.config, self.baseline, state.secrets, self.known.third_party
        )
        findings = list(result.findings)
        for enricher in self.enrichers:  # verification, store matching: the plaintext stays in memory
            findings, problems = enricher.enrich(findings, result.secrets)
            file_problems(problems, state.errors, state.skipped)
        if self.config.show_secrets:
            findings = [replace(f, secret=result.secrets[f.fingerprint]) for f in findings]
        report = ScanReport(
            tool_version=__version__,
            rules_digest=self.ruleset.digest,
            target=target,
            images=tuple(state.summaries),
            findings=tuple(sort_findings(findings)),
            known_test_keys=result.known_test_keys,
            skipped=tuple(state.skipped),
            suppressed=result.suppressed,
            errors=tuple(state.errors),
            started=state.started,
            finished=time.time(),
        )
        return report, result.secrets

    def _opened_while_building(self, source: StreamedSource) -> SaveStream:
        """The source's stream, opened on a thread while the detection stack is built here: the
        Docker daemon answers ``docker save`` only once it has the export ready (seconds), and a
        pipe's first bytes wait on the command that writes them. The thread is over before any
        worker process is forked."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            opening = pool.submit(source.open_stream)
            self.stack()
            return opening.result()

    def scan_stream(self, stream: SaveStream, state: RunState) -> None:
        """The images of a ``docker save`` stream, read once: its layers held in memory as they
        pass and scanned as a local archive's are (``streamlayers``), or each scanned as it passes."""
        self.progress.start_image(stream.label, stream.total_bytes or None, stream.layers)

        def scan_streamed(blob: BinaryIO) -> LayerResult:
            result = self.scan_layer_stream(blob, on_bytes=self.progress.advance)
            self.progress.layer_done()
            return result

        layers: EachAsItPasses | HeldInMemory = EachAsItPasses(scan_streamed)
        if self._worth_holding():
            budget = self.config.limits.max_held_blob_bytes
            layers = HeldInMemory(scan_streamed, self._start_held, budget, self.progress.advance, self._layers_done)
        try:
            scanned = read_save_stream(stream.reader, layers, stream.label, stream.wanted)
        except BaseException:  # an interrupt: no batch is left running in a child
            layers.abandon()
            raise
        finally:
            self.progress.end_image()
        for item in scanned:
            state.add_notes(item.image.name, self.attribute(item.image, item.config, item.layers, item.results, state))
            if item.problem:  # the stream was cut short, or this image's metadata is broken: its layers are kept
                state.errors.append(item.problem)

    def _worth_holding(self) -> bool:
        """Whether layers that arrive once (a registry's, a stream's) are held in memory to be read
        like local files (``image.spool``): when that lets several workers share them, or their
        package records be read first. Not under --timeout: streamed, a layer is scanned as it
        arrives, and a partial report keeps whatever arrived in time; held, nothing would be
        scanned before all of them were in."""
        return (self.config.jobs > 1 or bool(self.database_bytes)) and self.deadline.remaining() is None

    def _start_held(self, layers: Sequence[LayerHandle]) -> Running:
        """Layers of a stream held in memory, scanned as a local archive's, in a forked child while
        the stream is read on (with more than one worker). The bar has already moved by their
        bytes as they arrived; it moves by the layers when their results come (``_layers_done``)."""
        quiet = Progress()

        def scan() -> list[LayerResult]:
            return self._scan_handles(layers, counted=False, progress=quiet)

        if self.config.jobs > 1:
            forked = fork_call(scan, lambda why: [LayerResult(error=f"layer worker failed: {why}") for _ in layers])
            if forked is not None:
                return forked
        return Finished(scan())

    def _layers_done(self, count: int) -> None:
        for _ in range(count):
            self.progress.layer_done()

    def scan_layer_stream(
        self, blob: BinaryIO, expected: LayerPackages | None = None, on_bytes: Callable[[int], None] = _ignore
    ) -> LayerResult:
        """``on_bytes``: told of the stored bytes as they are read."""
        return scan_layer_blob(
            self.engine,
            self.sealer,
            self.config.limits,
            blob,
            on_bytes,
            deadline=self.deadline,
            expected=expected,
            package_scope=self.package_scope,
        )

    def scan_layer(
        self, handle: LayerHandle, expected: LayerPackages | None = None, on_progress: Callable[[int], None] = _ignore
    ) -> LayerResult:
        """``on_progress``: told of the stored bytes read of a blob, or of each file of a layer
        that is walked (a plain directory) once it is scanned."""
        if self.deadline.expired:
            return LayerResult(error=f"not scanned: {self.deadline.describe()}")
        if handle.walk is not None:
            entries = _counted(handle.walk(), on_progress)
            return scan_layer_entries(self.engine, self.sealer, self.config.limits, entries, self.deadline)
        try:
            with handle.open() as blob:
                return self.scan_layer_stream(blob, expected, on_progress)
        except SecretScanError as exc:  # the blob cannot be opened (missing from the archive)
            return LayerResult(error=str(exc))

    def scan_image(self, image: Image, state: RunState) -> None:
        config = image.config()
        # a registry's layers held in memory as stored (image.spool): read like local files
        budget = self.config.limits.max_held_blob_bytes if self._worth_holding() else 0
        with spool.held(image.layers(), budget) as layers:
            self._scan_layers(image, config, layers, state)

    def _scan_layers(self, image: Image, config: ImageConfig, layers: Sequence[LayerHandle], state: RunState) -> None:
        # One bar per image: stored bytes, or files for a plain directory (no blob, size unknown).
        files = bool(layers) and all(h.walk is not None for h in layers)
        unit = ProgressUnit.FILES if files else ProgressUnit.BYTES
        sizes = [h.size for h in layers]
        total = None if files or None in sizes else sum(s or 0 for s in sizes)
        self.progress.start_image(image.name, total, len(layers), unit)
        try:
            results = self._scan_handles(layers, counted=True)
        finally:
            self.progress.end_image()
        notes = self.attribute(image, config, [h.facts for h in layers], results, state)
        state.add_notes(image.name, notes)

    def _scan_handles(
        self, layers: Sequence[LayerHandle], *, counted: bool, progress: Progress | None = None
    ) -> list[LayerResult]:
        """One result per layer: big local layers cut into pieces, their records read first, the
        pieces side by side on the workers. ``counted``: the bar moves by the bytes read (else only
        by the layers done); ``progress``: the display to tell (another than the run's: a quiet
        one, for a scan whose layers are counted by its caller).

        A compressed local layer streams on one worker, decompressed twice (its records, then its
        scan), while the others finish theirs and wait: the biggest that fits in memory is
        decompressed into memory once instead (``split.inflate``, beside the other layers' record
        passes), then cut and shared by the workers as an uncompressed layer."""
        target = self._to_inflate(layers)
        fd = spool.memory_file() if target is not None else None
        try:
            inflate = None if target is None or fd is None else _Inflate(target[0], fd, target[1])
            return self._scan_pieces(layers, counted=counted, progress=progress, inflate=inflate)
        finally:
            if fd is not None:
                os.close(fd)

    def _to_inflate(self, layers: Sequence[LayerHandle]) -> tuple[int, int] | None:
        """(index, memory left) of the compressed local layer to decompress into memory: the
        biggest of at least ``split.MIN_STORED_SURVEY`` stored bytes whose uncompressed size (its
        gzip trailer's, else taken as twice its stored size) fits what ``max_held_blob_bytes``
        leaves beside the layers held already, when there are workers to share it. Decompressed
        once instead of twice (its records, then its scan), it is also shared by the workers."""
        if self.config.jobs < 2 or self.deadline.remaining() is not None or not spool.can_hold() or not layers:
            return None
        sizes = [h.size or 0 for h in layers]
        left = self.config.limits.max_held_blob_bytes - sum(s for h, s in zip(layers, sizes, strict=True) if h.held)
        for k in sorted(range(len(layers)), key=lambda i: -sizes[i]):
            handle, size = layers[k], sizes[k]
            if size < split.MIN_STORED_SURVEY:
                return None
            if (
                handle.forkable
                and handle.walk is None
                and size <= self.config.limits.max_layer_bytes
                and 2 * size <= left
                and split.stored_kind(handle) != "none"
                and (split.gzip_size(handle) or 2 * size) <= left
            ):
                return k, left
        return None

    def _scan_pieces(
        self,
        layers: Sequence[LayerHandle],
        *,
        counted: bool,
        progress: Progress | None = None,
        inflate: _Inflate | None = None,
    ) -> list[LayerResult]:
        """``_scan_handles``' work: the layers' cuts and records (``_plan``), then their pieces side
        by side, the layer to ``inflate`` among them: once it is in memory its own pieces are
        handed out to the workers as they come free."""
        files = bool(layers) and all(h.walk is not None for h in layers)
        parallel = self.config.jobs > 1 and all(h.forkable for h in layers)
        pieces, expected = self._plan(layers, self.config.jobs if parallel else 1, inflate)
        parallel = parallel and (len(pieces) > 1 or inflate is not None)
        meter = _Meter(progress or self.progress)
        items: list[Piece | _Inflate] = []
        by_layer: dict[int, list[int]] = {}

        def add(item: Piece | _Inflate, share: int | None) -> None:
            by_layer.setdefault(item.layer, []).append(len(items))
            items.append(item)
            meter.add(share, item.layer)

        def share(item: Piece | _Inflate) -> int | None:
            size = layers[item.layer].size
            if not counted:
                return 0
            if files or size is None:
                return None
            return size if isinstance(item, _Inflate) else _share(item, size)

        def weight(item: Piece | _Inflate) -> int:
            return item.weight(layers[item.layer].size or 0)

        def scan_one(item: Piece | _Inflate) -> LayerResult | _Walked:
            if isinstance(item, _Inflate):
                return self._inflated(layers[item.layer], item)
            handle = layers[item.layer]
            if item.held and inflate is not None:  # its layer decompressed into memory (``_inflated``)
                handle = spool.held_handle(inflate.fd, item.held, handle.index, handle.diff_id)
            # A forked worker's bar is a copy that must not draw: the parent moves the bar when a piece is done.
            silent = parallel or (handle.walk is not None) != files
            tell = _ignore if silent else meter.reporter(next(k for k, other in enumerate(items) if other is item))
            return self._scan_piece(handle, item, item.records or expected.get(item.layer), tell)

        first: list[Piece | _Inflate] = [*pieces, *([inflate] if inflate is not None else [])]
        for item in first:
            add(item, share(item))
        # a layer is merged as soon as its last piece is in, while the workers scan the others'
        arrived: dict[int, LayerResult] = {}
        merged: dict[int, LayerResult] = {}
        stored: dict[int, LayerResult] = {}

        def done(k: int, result: LayerResult | _Walked) -> list[tuple[Piece | _Inflate, int]]:
            item = items[k]
            added: list[Piece] = []
            if isinstance(item, _Inflate):  # its pieces join the work (its worker failed: it is scanned whole)
                walked = result if isinstance(result, _Walked) else _Walked(split.Survey(), None, None)
                if walked.stored is not None and walked.stored.error is None:
                    stored[item.layer] = walked.stored
                added = self._inflated_pieces(item.layer, walked, layers[item.layer])
                for piece in added:  # the bar moved by the layer's stored bytes when it was decompressed
                    add(piece, 0)
            else:
                arrived[k] = result  # type: ignore[assignment]
            meter.done(k)  # after its layer's pieces are added: the layer is not done before them
            mine = [(j, p) for j in by_layer[item.layer] if isinstance(p := items[j], Piece)]
            if not added and all(j in arrived for j, _ in mine):
                merged[item.layer] = split.merged_layer([(p, arrived.pop(j)) for j, p in mine])
            return [(p, weight(p)) for p in added]

        fork_map(
            scan_one,
            items,  # copied: what ``done`` adds to it comes back as new items
            [weight(item) for item in items],
            self.config.jobs if parallel else 1,
            on_error=lambda k, reason: LayerResult(error=f"layer worker failed: {reason}"),
            on_done=done,
        )
        results = [merged[i] if i in merged else split.merged_layer([]) for i in range(len(layers))]
        for i, found in stored.items():  # decompressed into memory: its digest and compression as stored
            results[i].stored_digest, results[i].compression = found.stored_digest, found.compression
        return results

    def _plan(
        self, layers: Sequence[LayerHandle], workers: int, inflate: _Inflate | None = None
    ) -> tuple[list[Piece], dict[int, LayerPackages]]:
        """Each layer whole, except an uncompressed one too big for one worker: cut at member
        boundaries, plus a task for its digest (``walk.split``), and the one to ``inflate``, which
        is cut later. And, for each uncompressed local layer, its package records read before the
        scan: they let files they vouch for skip the name = value heuristics (one walk over its
        headers gives both). Several layers are surveyed side by side, on the workers that then
        scan them, and a big layer's headers in chunks side by side (one layer of 70,000 files
        would otherwise hold the scan back alone)."""
        limit = self.config.limits.max_layer_bytes
        cuttable = [h.open_range is not None and h.walk is None and (h.size or 0) <= limit for h in layers]
        chosen = dict(split.plan([h.size for h in layers], cuttable, workers))
        candidates = [i for i, handle in enumerate(layers) if cuttable[i] and handle.size]
        side_by_side = workers > 1 and all(layers[i].forkable for i in candidates)
        starts: dict[int, list[int]] = {}
        for i in candidates:
            found = self._chunk_starts(layers[i], workers if side_by_side and i in chosen else 1)
            if found:
                starts[i] = found
        tasks = [(i, k) for i, found in starts.items() for k in range(len(found))]

        def walk(t: int) -> tuple[split.Survey, LayerPackages | None]:
            i, k = tasks[t]
            stop = starts[i][k + 1] if k + 1 < len(starts[i]) else None
            return self._survey(layers[i], chosen.get(i, 1), starts[i][k], stop, len(starts[i]))

        walked = fork_map(
            walk,
            range(len(tasks)),
            [(layers[i].size or 0) // len(starts[i]) for i, _ in tasks],
            workers if side_by_side else 1,
            on_error=lambda t, reason: (split.Survey(uncuttable=True), None),  # scanned whole, which reports it
            meanwhile=self.stack,
        )
        pieces: list[Piece] = []
        expected: dict[int, LayerPackages] = {}
        for i, handle in enumerate(layers):
            if inflate is not None and i == inflate.layer:
                continue  # its pieces come once it is in memory (``_inflated_pieces``)
            cuts: list[int] = []
            if i in starts:
                own = [w for (j, _), w in zip(tasks, walked, strict=True) if j == i]
                cuts, packages = self._joined(handle, chosen.get(i, 1), starts[i], own)
                if packages:
                    expected[i] = packages
            if not cuts:
                # the rest of the local layers (compressed): their records in a pass of their own,
                # on the worker that then scans the layer (no wait for the other layers' passes)
                pieces.append(Piece(i, records_first=i not in starts and self._surveys_stored(handle)))
                continue
            bounds = [0, *cuts, handle.size or 0]
            pieces.extend(Piece(i, a, b) for a, b in zip(bounds, bounds[1:], strict=False))
            pieces.append(Piece(i, digest_only=True))
        return pieces, expected

    def _inflated(self, handle: LayerHandle, inflate: _Inflate) -> _Walked:
        """``inflate``'s layer decompressed into its memory file, and its headers walked there for
        its cuts and package records (in a worker, beside the other layers' pieces)."""
        stored = split.inflate(handle, inflate.fd, inflate.cap, self.config.limits)
        if stored.error is not None:
            return _Walked(split.Survey(), None, stored)
        held = spool.held_handle(inflate.fd, stored.bytes, handle.index, handle.diff_id)
        parts = dict(split.plan([stored.bytes], [True], self.config.jobs)).get(0, 1)
        found, records = self._survey(held, parts, 0, None, 1)
        return _Walked(found, records, stored)

    def _inflated_pieces(self, i: int, walked: _Walked, handle: LayerHandle) -> list[Piece]:
        """The pieces of layer ``i`` once ``_inflated`` is done: read from memory, cut where its walk
        says (its digest was taken as it was decompressed), with its records; or, when it could not
        be decompressed, the layer whole from its blob (which reports the problem, as it always has)."""
        if walked.stored is None or walked.stored.error is not None:
            return [Piece(i, records_first=self._surveys_stored(handle))]
        size = walked.stored.bytes
        bounds = [0, *walked.survey.cuts, size]
        return [Piece(i, a, b, held=size, records=walked.records) for a, b in zip(bounds, bounds[1:], strict=False)]

    def _surveys_stored(self, handle: LayerHandle) -> bool:
        """Whether a layer's package records are read in a pass of their own before its scan
        (``split.survey_stored``): a local blob (reopened cheaply) that is not cut, big enough
        for the records to save more than the pass costs (another decompression), with package
        provenance on."""
        return (
            bool(self.database_bytes)
            and handle.forkable
            and handle.walk is None
            and (handle.size or 0) >= split.MIN_STORED_SURVEY
            and not self.deadline.expired
        )

    @property
    def database_bytes(self) -> int:
        """The largest package database file a survey reads (0: none, without package provenance)."""
        return self.config.limits.max_package_db_bytes if self.config.package_provenance else 0

    def _chunk_starts(self, handle: LayerHandle, chunks: int) -> list[int]:
        """Where walks over an uncompressed local layer's headers start (``split.chunk_starts``);
        [] when the layer is not one (it is scanned whole, which says what is wrong with it)."""
        if handle.open_range is None or not handle.size or self.deadline.expired:
            return []
        try:
            with handle.open_range(0, handle.size) as blob:
                if sniff(blob.read(512)) != "none":
                    return []
                return split.chunk_starts(blob, handle.size, chunks) if chunks > 1 else [0]
        except (OSError, SecretScanError):
            return []

    def _survey(
        self, handle: LayerHandle, parts: int, start: int, stop: int | None, chunks: int
    ) -> tuple[split.Survey, LayerPackages | None]:
        """One walk over an uncompressed local layer's headers, from ``start`` to ``stop``: where
        it can be cut into ``parts``, and its package records (read here, sent on as records)."""
        assert handle.open_range is not None and handle.size
        try:
            with handle.open_range(0, handle.size) as blob:
                found = split.survey(
                    blob, handle.size, parts, self.database_bytes, start=start, stop=stop, budget=split.MAX_SURVEY_BYTES // chunks
                )
        except (OSError, SecretScanError):
            found = split.Survey(uncuttable=True)  # scanned whole, which reports what is wrong with it
        return found, split.records_of(found)

    def _joined(
        self, handle: LayerHandle, parts: int, starts: list[int], walks: list[tuple[split.Survey, LayerPackages | None]]
    ) -> tuple[list[int], LayerPackages | None]:
        """A layer's cuts and package records from its walks side by side (``split.join_surveys``),
        walked on here from where a chunk turned out to start inside a file."""
        joined, used, resume_at, targets_from = split.join_surveys(starts, [w for w, _ in walks])
        records = [p for _, p in walks[:used]]
        if resume_at is not None:
            assert handle.open_range is not None and handle.size
            try:
                with handle.open_range(0, handle.size) as blob:
                    rest = split.walk_on(
                        blob, handle.size, parts, self.database_bytes, split.Survey(joined.cuts), resume_at, targets_from
                    )
            except (OSError, SecretScanError):
                return [], split.merge_packages(records)
            joined.cuts = rest.cuts
            records.append(split.records_of(rest))
        return joined.cuts, split.merge_packages(records)

    def _scan_piece(
        self, handle: LayerHandle, piece: Piece, expected: LayerPackages | None, on_progress: Callable[[int], None]
    ) -> LayerResult:
        if piece.records_first:
            expected = split.records_first(handle, self.config.limits, self.database_bytes)
        if piece.whole:
            return self.scan_layer(handle, expected, on_progress)
        if self.deadline.expired:
            return LayerResult(error=f"not scanned: {self.deadline.describe()}")
        assert handle.open_range is not None and handle.size is not None
        try:
            with handle.open_range(piece.start, handle.size if piece.end is None else piece.end) as blob:
                if piece.digest_only:
                    return LayerResult(stored_digest=split.layer_digest(blob))
                return scan_layer_piece(
                    self.engine,
                    self.sealer,
                    self.config.limits,
                    blob,
                    self.deadline,
                    expected,
                    package_scope=self.package_scope,
                )
        except (OSError, SecretScanError) as exc:
            return LayerResult(error=f"cannot read the layer: {exc}")

    def attribute(
        self,
        image: ImageIdentity,
        config: ImageConfig,
        layers: Sequence[LayerFacts],
        results: Sequence[LayerResult],
        state: RunState,
    ) -> list[LayerNote]:
        """Place layer results in this image: index, build step, fate; add config and history.
        What could not be read is returned as notes, for the caller to name (``LayerNote``)."""
        notes: list[LayerNote] = []
        occurrences: list[tuple[Sighting, Location]] = []
        layer_of: list[int | None] = []
        """Per occurrence: the position of its layer in ``results`` (None: config and history)."""
        base = Location(image=image.name, image_digest=image.digest, layer_index=None, layer_digest=None, path="")
        for item in config_texts(config, image.annotations):
            for match in self.engine.scan_bytes(item.text.encode("utf-8", "surrogateescape")):
                loc = replace(
                    base,
                    path=item.field,
                    created_by=item.created_by,
                    exposure=Exposure.CONFIG,
                    context=match.context,
                    history_step=item.step,
                )
                occurrences.append((self.sealer.seal(match, state.secrets), loc))
                layer_of.append(None)
        by_path: dict[str, list[tuple[Sighting, Location]]] = {}
        links_left = self.config.limits.max_link_locations
        for position, (handle, result) in enumerate(zip(layers, results, strict=True)):
            notes.extend(self._check(handle, result))
            step = config.step_for_layer(handle.index)
            index = handle.index if handle.is_layer else None  # a plain directory has no layers
            layer_base = replace(base, layer_index=index, layer_digest=handle.diff_id, created_by=step)
            state.secrets.update(result.secrets)
            for m, path, line in result.matches:
                loc = replace(layer_base, path=path, line=line, context=m.context, documentation=m.documentation)
                occurrences.append((m, loc))
                layer_of.append(position)
                by_path.setdefault(path.split("!/", 1)[0], []).append((m, loc))
            for link, target in result.hardlinks:
                # a hardlink ships its target's bytes under another name, with a fate of its own
                shipped = by_path.get(target, ())
                if len(shipped) > links_left:  # links x secrets: bounded, and said so
                    if links_left >= 0:
                        limit = self.config.limits.max_link_locations
                        notes.append(
                            LayerNote(
                                handle.index,
                                f": {link}",
                                f"hard links give more than max_link_locations ({limit}) locations: "
                                "this link and the later ones not followed",
                            )
                        )
                        links_left = -1
                    continue
                links_left -= len(shipped)
                for m, loc in list(shipped):
                    linked = replace(
                        loc,
                        layer_index=index,
                        layer_digest=handle.diff_id,
                        created_by=step,
                        path=link + loc.path[len(target) :],
                    )
                    occurrences.append((m, linked))
                    layer_of.append(position)
                    by_path.setdefault(link, []).append((m, linked))
        fates = FateIndex([r.paths for r in results]).fates([(loc.layer_index, loc.path) for _, loc in occurrences])
        # Build steps are shown as context: mask every secret this image holds out of them.
        found = {(m.fingerprint, m.length, m.redacted) for m, _ in occurrences}
        key = self.config.fingerprint_key
        steps = {loc.created_by for _, loc in occurrences if loc.created_by}
        steps |= {step for h in layers if (step := config.step_for_layer(h.index))}
        masker = Masker(found, key)
        masked = {step: masker.mask(step) for step in steps}
        packages = ProvenanceIndex([r.packages for r in results]) if self.config.package_provenance else None
        for (m, loc), fate, at in zip(occurrences, fates, layer_of, strict=True):
            if packages and at is not None:
                origin = packages.origin(at, loc.path, results[at].facts.get(loc.path.split("!/", 1)[0]))
                if origin is not None:
                    loc = replace(loc, package=origin.package, package_state=origin.state)
            if fate is not None:
                loc = replace(loc, exposure=Exposure.REMOVED, removed_in_layer=fate.layer, removed_how=fate.how)
            if loc.created_by:
                loc = replace(loc, created_by=masked[loc.created_by])
            state.occurrences.append(Occurrence(m, loc))
        details = tuple(
            LayerSummary(h.index, h.diff_id, masked.get(config.step_for_layer(h.index) or "") or None, r.files, r.bytes)
            for h, r in zip(layers, results, strict=True)
            if h.is_layer
        )
        state.summaries.append(
            ImageSummary(
                image.name,
                image.digest,
                config.platform,
                len(layers),
                sum(r.files for r in results),
                sum(r.bytes for r in results),
                details,
                config.revision(image.annotations),
                sum(r.package_files for r in results),
                sum(r.package_bytes for r in results),
                sum(r.vouched_files for r in results),
                sum(r.vouched_bytes for r in results),
                config_digest=config.digest,
                verified_rules=self.package_scope,
            )
        )
        return notes

    @staticmethod
    def _check(handle: LayerFacts, result: LayerResult) -> list[LayerNote]:
        n = handle.index
        notes = [LayerNote(n, f": {s.what}", s.reason) for s in result.skipped]
        expected = handle.blob_digest or (handle.diff_id if result.compression == "none" else None)
        actual = result.stored_digest
        if expected and not expected.startswith("sha256:"):
            algorithm = expected.split(":")[0]
            notes.append(LayerNote(n, "", f"content not checked against its {algorithm} digest (only sha256 is verified)"))
        if actual and expected and expected.startswith("sha256:") and actual != expected:
            notes.append(
                LayerNote(
                    n,
                    f": content does not match its digest {expected} (got {actual}): "
                    "the image is corrupt or was tampered with",
                    None,
                )
            )
        elif result.error:
            digest = handle.diff_id or handle.blob_digest
            where = f" ({digest})" if digest and "unreadable" in result.error else ""
            notes.append(LayerNote(n, f"{where}: {result.error}", None))
        return notes
