"""The pipeline for one run: every image of a source -> config, history and every layer ->
occurrences -> findings. Per-item trouble becomes a ``Skipped`` or an error entry in the report;
what was already found is never lost."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from secretscan import __version__
from secretscan.config import ScanConfig
from secretscan.detect.engine import Engine
from secretscan.detect.knownkeys import KnownKeys
from secretscan.detect.match import Match
from secretscan.detect.rules import RuleSet
from secretscan.errors import SecretScanError
from secretscan.findings import Occurrence, aggregate
from secretscan.image.compression import open_uncompressed
from secretscan.image.model import Image, LayerHandle
from secretscan.models import Exposure, ImageSummary, Location, ScanReport, Skipped
from secretscan.redact import mask
from secretscan.sources import Source
from secretscan.walk.config_fields import config_texts
from secretscan.walk.content import DECODE_ERRORS, ContentScanner
from secretscan.walk.fate import FateIndex
from secretscan.walk.tarstream import iter_tar

logger = logging.getLogger(__name__)


class Progress:
    """What the pipeline tells a progress display. The default shows nothing."""

    def start_image(self, name: str, total_bytes: int, layers: int) -> None: ...
    def start_layer(self, index: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def end_image(self) -> None: ...


class _HashingReader(io.RawIOBase):
    """Hashes and counts the stored blob as it streams past, to check it against its digest."""

    def __init__(self, inner: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._inner, self._on_bytes = inner, on_bytes
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        self.sha256.update(data)
        self._on_bytes(len(data))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class _ImageRun:
    image: Image
    occurrences: list[tuple[Match, Location]] = field(default_factory=list)
    fates: FateIndex = field(default_factory=FateIndex)
    by_path: dict[str, list[tuple[Match, Location]]] = field(default_factory=dict)
    """Layer-file occurrences by path, so a hardlink can repeat its target's findings."""

    def add(self, match: Match, loc: Location) -> None:
        self.occurrences.append((match, loc))
        if loc.layer_index is not None:
            self.by_path.setdefault(loc.path.split("!/", 1)[0], []).append((match, loc))

    def add_hardlink(
        self, layer_index: int, layer_digest: str | None, step: str | None, link: str, target: str
    ) -> None:
        """A hardlink ships its target's bytes under another name: each of the target's findings
        is also found at the link's path, whose fate is its own (deleting the target leaves the link)."""
        for match, loc in list(self.by_path.get(target, ())):
            if loc.layer_index is not None and loc.layer_index <= layer_index:
                path = link + loc.path[len(target) :]
                self.add(
                    match, replace(loc, layer_index=layer_index, layer_digest=layer_digest, path=path, created_by=step)
                )


@dataclass
class Scanner:
    config: ScanConfig
    ruleset: RuleSet
    known: KnownKeys
    progress: Progress = field(default_factory=Progress)
    baseline: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.engine = Engine(self.ruleset, self.known)

    def scan(self, source: Source) -> ScanReport:
        occurrences: list[Occurrence] = []
        summaries: list[ImageSummary] = []
        skipped: list[Skipped] = []
        errors: list[str] = []
        try:
            for image in source.images():
                summary = self._scan_image(image, occurrences, skipped, errors)
                summaries.append(summary)
        except SecretScanError as exc:
            if not summaries and not occurrences:
                raise
            errors.append(str(exc))
        result = aggregate(occurrences, self.ruleset, self.config, self.known, self.baseline)
        return ScanReport(
            tool_version=__version__,
            rules_digest=self.ruleset.digest,
            target=source.description,
            images=tuple(summaries),
            findings=result.findings,
            known_test_keys=result.known_test_keys,
            skipped=tuple(skipped),
            suppressed=result.suppressed,
            errors=tuple(errors),
        )

    def _scan_image(
        self, image: Image, out: list[Occurrence], skipped: list[Skipped], errors: list[str]
    ) -> ImageSummary:
        config = image.config()
        layers = image.layers()
        digest = image.digest
        run = _ImageRun(image)
        for item in config_texts(config, image.annotations):
            for m in self.engine.scan_bytes(item.text.encode("utf-8", "surrogateescape")):
                loc = Location(
                    image=image.name,
                    image_digest=digest,
                    layer_index=None,
                    layer_digest=None,
                    path=item.field,
                    created_by=item.created_by,
                    exposure=Exposure.CONFIG,
                    context=m.context,
                )
                run.add(m, loc)
        self.progress.start_image(image.name, sum(h.size or 0 for h in layers), len(layers))
        files = nbytes = 0
        try:
            for handle in layers:
                self.progress.start_layer(handle.index)
                scanner = self._scan_layer(handle, run, skipped, errors, config.step_for_layer(handle.index))
                files += scanner.stats.files
                nbytes += scanner.stats.bytes
        finally:
            self.progress.end_image()
        # Build steps are shown as context: mask every secret this image holds out of them.
        found = [m.secret for m, _ in run.occurrences]
        masked = {step: mask(step, found) for step in {loc.created_by for _, loc in run.occurrences if loc.created_by}}
        for m, loc in run.occurrences:
            fate = run.fates.fate(loc.layer_index, loc.path) if loc.layer_index is not None else None
            if fate is not None:
                loc = replace(loc, exposure=Exposure.REMOVED, removed_in_layer=fate.layer, removed_how=fate.how)
            if loc.created_by:
                loc = replace(loc, created_by=masked[loc.created_by])
            out.append(Occurrence(m, loc))
        return ImageSummary(image.name, digest, config.platform, len(layers), files, nbytes)

    def _scan_layer(
        self, handle: LayerHandle, run: _ImageRun, skipped: list[Skipped], errors: list[str], step: str | None
    ) -> ContentScanner:
        label = f"layer {handle.index}"
        name = run.image.name

        def on_match(m: Match, path: str, line: int | None) -> None:
            layer_index = None if handle.walk is not None else handle.index  # a plain directory has no layers
            loc = Location(
                image=name,
                image_digest=run.image.digest,
                layer_index=layer_index,
                layer_digest=handle.diff_id,
                path=path,
                line=line,
                created_by=step,
                context=m.context,
            )
            run.add(m, loc)

        def on_skip(s: Skipped) -> None:
            skipped.append(Skipped(f"{name} {s.what}", s.reason))

        scanner = ContentScanner(self.engine, self.config.limits, on_match, on_skip)
        try:
            if handle.walk is not None:
                for entry in handle.walk():
                    run.fates.record(handle.index, entry)
                    if entry.kind == "file" and entry.open is not None:
                        try:
                            with entry.open() as f:
                                scanner.scan(entry.path, f, label)
                        except OSError as exc:
                            on_skip(Skipped(f"{label}: {entry.path}", f"unreadable ({exc.strerror or exc})"))
                return scanner
            with handle.open() as raw:
                hashing = _HashingReader(raw, self.progress.advance)
                stream, compression = open_uncompressed(io.BufferedReader(hashing, 1 << 20))  # type: ignore[arg-type]
                for entry in iter_tar(stream):
                    run.fates.record(handle.index, entry)
                    if entry.kind == "file" and entry.open is not None:
                        scanner.scan(entry.path, entry.open(), label)
                    elif entry.kind == "hardlink":
                        run.add_hardlink(handle.index, handle.diff_id, step, entry.path, entry.link_target)
                while stream.read(1 << 20):
                    pass  # the rest of the blob (tar padding) still counts for its digest
                while hashing.read(1 << 20):
                    pass
            expected = handle.blob_digest or (handle.diff_id if compression == "none" else None)
            actual = "sha256:" + hashing.sha256.hexdigest()
            if expected and expected.startswith("sha256:") and actual != expected:
                errors.append(
                    f"{name} {label}: content does not match its digest {expected} (got {actual}): the image is corrupt or was tampered with"
                )
        except SecretScanError as exc:
            errors.append(f"{name} {label}: {exc}")
        except DECODE_ERRORS as exc:
            errors.append(
                f"{name} {label} ({handle.diff_id or handle.blob_digest}): unreadable layer: "
                f"{type(exc).__name__}: {str(exc)[:160]}; files before the damage were scanned"
            )
        return scanner
