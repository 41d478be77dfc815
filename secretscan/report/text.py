"""The default report, for people: severity first, grouped, one line per location.

Lines are assembled as plain text and escaped as a whole (``terminal.terminal_safe``) when the
report is joined, so no field from an image, a registry or a rule pack can reach the terminal raw,
and a newline in a file name shows as ``\\n`` instead of starting a line of its own. Our colour
codes are added after the escaping.
"""

from __future__ import annotations

from secretscan.models import (
    Exposure,
    Finding,
    ImageSummary,
    Location,
    ManagedMatch,
    PackageState,
    RuleScope,
    ScanReport,
    SecretStore,
    Severity,
)
from secretscan.terminal import terminal_safe

_COLORS = {
    Severity.CRITICAL: "\033[1;31m",
    Severity.HIGH: "\033[31m",
    Severity.MEDIUM: "\033[33m",
    Severity.LOW: "\033[36m",
    Severity.INFO: "\033[2m",
}
_RESET = "\033[0m"


def exposure_note(loc: Location) -> str:
    """How the location ships, and what the package records say of its file."""
    if loc.exposure is Exposure.CONFIG:
        return "image config/history — visible to anyone with `docker inspect`"
    if loc.exposure is Exposure.REMOVED:
        note = f"{loc.removed_how or 'removed'} in layer {loc.removed_in_layer} — gone from the final filesystem, still shipped in layer {loc.layer_index}'s blob"
    else:
        note = "in the final filesystem"
    package = package_note(loc)
    return f"{note}; {package}" if package else note


_PACKAGE_NOTES = {
    PackageState.PRISTINE: "as installed by {}",
    PackageState.MEMBER: "as installed by {} (no per-file digest to check)",
    PackageState.MODIFIED: "modified after install: package {}",
    PackageState.UNRECORDED: "not installed by a package: {}",
    None: "a file of {}",
}


def package_note(loc: Location) -> str | None:
    """What the package managers' records say of the location's file, if any speaks of it."""
    return _PACKAGE_NOTES[loc.package_state].format(loc.package) if loc.package else None


def short_digest(digest: str) -> str:
    """``sha256:542132ade47f…``: 12 hex digits, as ``docker`` shortens IDs, enough to grep for."""
    algorithm, sep, hexpart = digest.partition(":")
    return digest if not sep or len(hexpart) <= 12 else f"{algorithm}:{hexpart[:12]}…"


def layer_note(loc: Location) -> str | None:
    """Which layer, by diff ID: ``layer sha256:542132ade47f…`` for a place in a layer; for a
    build-history entry, the layer its step created (``created layer 6, sha256:4f6dda6e354c…``),
    or that it created none."""
    if loc.layer_index is not None:
        return f"layer {short_digest(loc.layer_digest)}" if loc.layer_digest else None
    step = loc.history_step
    if step is None:
        return None
    if step.layer_index is not None:
        digest = f", {short_digest(step.layer_digest)}" if step.layer_digest else ""
        return f"created layer {step.layer_index}{digest}"
    if step.empty_layer:
        return "no layer: metadata-only step"
    return "layer not known: the history does not line up with the layers"


def place(loc: Location) -> str:
    """Where, for a person: ``Location.describe``, the key, and which layer by its diff ID:
    ``layer 1: /app/.env:1 (AWS_ACCESS_KEY_ID) [layer sha256:542132ade47f…]``,
    ``history[7].created_by (access-token) [created layer 6, sha256:4f6dda6e354c…]``."""
    ctx = f" ({loc.context})" if loc.context else ""
    note = layer_note(loc)
    return loc.describe() + ctx + (f" [{note}]" if note else "")


def managed_note(match: ManagedMatch) -> str:
    """A store's verdict for people, naming where the value is held and never the value:
    ``current kv/app/db#password version 3 (current 3)``, ``former app/db#password (AWSPREVIOUS,
    version …) arn:aws:secretsmanager:…``, ``unmanaged``."""
    if match.secret is None:
        return str(match.status)
    if match.store is SecretStore.VAULT:
        return f"{match.status} {match.ref} version {match.version} (current {match.current_version})"
    return f"{match.status} {match.label} ({match.stage or 'no staging label'}, version {match.version}) {match.secret}"


def package_content(image: ImageSummary) -> str | None:
    """How much of the image its package managers installed, and what became of the files their
    records vouched for (``walk.layer.Vouching``); None when no record lists a file."""
    if not image.package_files:
        return None
    text = f"{image.package_files} files, {_size(image.package_bytes)} as installed by package managers"
    if not image.verified_files:
        return text
    verified = f"{text}; {image.verified_files} of them ({_size(image.verified_bytes)}) verified unchanged"
    if image.verified_rules is RuleScope.PROVIDER:
        return f"{verified}, searched with every provider-format rule to list what they publish"
    return (
        f"{verified}, searched with the self-identifying rules only (secretscan rules list --self-identifying) "
        "to list the keys they publish: no value in them can fail the scan, and --search-packages adds every "
        "provider-format rule"
    )


def image_digests(image: ImageSummary) -> list[tuple[str, str]]:
    """(label, digest): the names ``docker`` and registries know the image by: its config digest
    (the image ID), and its manifest digest when the source named one."""
    found = []
    if image.config_digest:
        found.append(("image ID (config digest)", image.config_digest))
    if image.digest and image.digest != image.config_digest:
        found.append(("manifest digest" if image.config_digest else "digest", image.digest))
    return found


def render_text(report: ScanReport, *, color: bool = False) -> str:
    out: list[str] = []
    painted: dict[int, str] = {}  # line index -> colour of the whole line
    for img in report.images:
        plat = f" ({img.platform})" if img.platform else ""
        packaged = package_content(img)
        out.append(
            f"Scanned {img.name}{plat}: {img.layers} layers, {img.files_scanned} files, {_size(img.bytes_scanned)}"
            + (f" searched ({packaged})" if packaged else "")
        )
        out.extend(f"  {label}: {digest}" for label, digest in image_digests(img))
    out.append("")
    if not report.findings:
        out.append("No secrets found.")
    for sev in sorted({f.severity for f in report.findings}, reverse=True):
        group = [f for f in report.findings if f.severity == sev]
        head = f"{str(sev).upper()} ({len(group)})"
        if color:
            painted[len(out)] = _COLORS[sev]
        out.append(head)
        for f in group:
            out.extend(_finding_lines(f))
        out.append("")
    if report.known_test_keys:
        out.append(f"Published test keys and package content (informational, {len(report.known_test_keys)}):")
        for k in report.known_test_keys:
            out.append(f"  {k.rule_id} {k.redacted} — {k.source}")
            out.extend(f"      at {loc.image}: {place(loc)}" for loc in k.locations[:3])
        out.append("")
    if report.suppressed:
        out.append(f"{report.suppressed} finding(s) suppressed by the allowlist or baseline.")
    if report.skipped:
        out.append(f"Not fully scanned ({len(report.skipped)}):")
        out.extend(f"  - {s.what}: {s.reason}" for s in report.skipped)
    if report.errors:
        out.append(f"Errors ({len(report.errors)}) — the scan is incomplete:")
        out.extend(f"  - {e}" for e in report.errors)
    n = len(report.findings)
    out.append(f"{n} finding{'s' if n != 1 else ''}" + ("" if report.complete else " (scan incomplete)"))
    safe = [terminal_safe(line) for line in out]
    for i, colour in painted.items():
        safe[i] = colour + safe[i] + _RESET
    return "\n".join(safe).rstrip() + "\n"


def _finding_lines(f: Finding) -> list[str]:
    value = f.secret if f.secret is not None else f.redacted
    lines = [f"  {f.title} [{f.rule_id}] {value}", f"    fingerprint {f.fingerprint}  confidence {f.confidence}"]
    if f.verification:
        v = f.verification
        lines.append(f"    verified: {v.verdict.value.upper()} ({v.provider}: {v.evidence})")
    lines.extend(f"    {m.store}: {managed_note(m)}" for m in f.managed)
    for loc in f.locations:
        lines.append(f"    at {loc.image}: {place(loc)}")
        lines.append(f"       {exposure_note(loc)}")
        if loc.created_by:
            lines.append(f"       added by: {_short(loc.created_by)}")
    lines.append(f"    fix: {f.remediation}")
    return lines


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
