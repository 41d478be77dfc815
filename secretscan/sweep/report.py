"""A sweep from the database as a ``ScanReport`` (so text, JSON and SARIF render it as they render
a scan), with the verdicts of the managed-secret stores the sweep asked, optionally reduced to
what is new since the previous sweep of the same target, and the summary table printed at the end
of a sweep."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from secretscan.errors import UsageError
from secretscan.findings import sort_findings
from secretscan.models import Finding, ImageSummary, KnownTestKey, ScanReport, Skipped
from secretscan.stores.matcher import with_match
from secretscan.sweep.store import Store, SweepRow, SweepStatus, Unresolved
from secretscan.terminal import terminal_lines
from secretscan.version import __version__

if TYPE_CHECKING:  # the sweep itself (and its registry client) is not needed to read its database
    from secretscan.sweep.run import SweepSummary


def pick_sweep(store: Store, sweep_id: int | None) -> SweepRow:
    sweeps = store.sweeps()
    if not sweeps:
        raise UsageError(f"{store.path}: no sweep recorded yet (run secretscan sweep --db {store.path} first)")
    if sweep_id is None:
        return sweeps[-1]
    for row in sweeps:
        if row.id == sweep_id:
            return row
    raise UsageError(f"{store.path}: no sweep {sweep_id} (known: {', '.join(str(r.id) for r in sweeps)})")


def previous_sweep(store: Store, sweep: SweepRow) -> SweepRow | None:
    earlier = [r for r in store.sweeps() if r.id < sweep.id and r.target == sweep.target and r.status is SweepStatus.FINISHED]
    return earlier[-1] if earlier else None


def sweep_report(store: Store, sweep: SweepRow, since: SweepRow | None = None) -> ScanReport:
    """One finding per secret across the sweep's images. With ``since``, only locations where a
    secret appears in an image (manifest digest) that did not hold it in that sweep."""
    seen_before: set[tuple[str, str | Unresolved | None]] = set()
    if since is not None:
        for row in store.images(since.id):
            if row.result is not None:
                seen_before.update((f.fingerprint, row.manifest_digest) for f in row.result.findings)
    findings: dict[str, Finding] = {}
    known: dict[str, KnownTestKey] = {}
    images: list[ImageSummary] = []
    skipped: list[Skipped] = []
    errors: list[str] = []
    suppressed = 0
    for row in store.images(sweep.id):
        name = row.name
        if row.error:
            where = name if isinstance(row.manifest_digest, Unresolved) else f"{name}@{row.manifest_digest}"
            errors.append(f"{where}: {row.error}")
        if row.result is None:
            continue
        result = row.result
        images.append(result.summary)
        skipped.extend(result.skipped)
        suppressed += result.suppressed
        for f in result.findings:
            if (f.fingerprint, row.manifest_digest) in seen_before:
                continue
            have = findings.get(f.fingerprint)
            findings[f.fingerprint] = f if have is None else replace(have, locations=have.locations + f.locations)
        for k in result.known_test_keys:
            had = known.get(k.fingerprint)
            known[k.fingerprint] = k if had is None else replace(had, locations=had.locations + k.locations)
    for note in sweep.summary.get("notes") or ():  # listings cut short: repositories or tags not swept
        skipped.append(Skipped(f"sweep {sweep.id}", str(note)))
    for verdicts in store.verdicts(sweep.id):  # --vault, --aws-secrets: as a scan shows them
        for fp, match in verdicts.matches.items():
            if fp in findings:
                findings[fp] = with_match(findings[fp], match)
        errors.extend(verdicts.errors)
        skipped.extend(verdicts.skipped)
    if sweep.status is not SweepStatus.FINISHED:  # killed, or still running: what is missing must not look clean
        skipped.insert(
            0,
            Skipped(
                f"sweep {sweep.id}",
                "did not finish (killed, or still running): images it had not reached are not in this report",
            ),
        )
    return ScanReport(
        tool_version=__version__,
        rules_digest=sweep.rules_digest,
        target=f"sweep {sweep.id} of {sweep.target}" + (f" (new since sweep {since.id})" if since else ""),
        images=tuple(images),
        findings=tuple(sort_findings(findings.values())),
        known_test_keys=tuple(known.values()),
        skipped=tuple(skipped),
        suppressed=suppressed,
        errors=tuple(errors),
        started=sweep.started,
        finished=sweep.finished,
    )


def summary_table(sweep_id: int, summary: SweepSummary) -> str:
    """The table printed at the end of a sweep. Each image and each unique layer is counted once,
    as scanned by this sweep, from cache (answered by the database without a download), or
    failed, so the three add up to its total on a cold sweep and a warm one alike."""
    s = summary
    rows = [
        ("repositories", s.repositories, f"{s.repositories_failed} could not be listed"),
        (
            "images",
            s.images,
            f"{s.images_scanned} scanned, {s.images_cached} from cache, {s.images_failed} failed",
        ),
        (
            "layers",
            s.layer_references,
            f"{s.layers_unique} unique: {s.layers_scanned} scanned, {s.layers_cached} from cache, {s.layers_failed} failed",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"sweep {sweep_id} finished in {s.seconds:.1f} s"]
    lines += [f"  {label:<{width}}  {count:>7}  {detail}" for label, count, detail in rows]
    lines += [f"  not swept: {note}" for note in s.notes]
    return terminal_lines(lines) + "\n"  # a note may quote a registry
