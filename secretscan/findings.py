"""From occurrences to findings: one finding per distinct secret, every place it was seen.

Also where suppression happens (allowlist, baseline, known test keys), so that each decision is
counted in the report instead of making a finding vanish.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from secretscan.config import ScanConfig
from secretscan.detect.rules import CONFIDENCE_RANK, RuleSet
from secretscan.detect.seal import Sighting
from secretscan.detect.thirdparty import ThirdPartyPaths
from secretscan.models import Documentation, Exposure, Finding, KnownTestKey, Location, Severity

DEFAULT_REMEDIATION = "Revoke and rotate this credential, then rebuild the image without it."


@dataclass(frozen=True, slots=True)
class Occurrence:
    sighting: Sighting
    location: Location


@dataclass(frozen=True, slots=True)
class Aggregated:
    findings: tuple[Finding, ...]
    """Without plaintext (``secret`` is None): enrichers and ``--show-secrets`` use ``secrets``."""
    known_test_keys: tuple[KnownTestKey, ...]
    suppressed: int
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """fingerprint -> plaintext, in memory only, for verification and Vault matching."""


def aggregate(
    occurrences: Iterable[Occurrence],
    ruleset: RuleSet,
    config: ScanConfig,
    baseline: frozenset[str] = frozenset(),
    secrets: dict[str, str] | None = None,
    third_party: ThirdPartyPaths | None = None,
) -> Aggregated:
    """``secrets`` (fingerprint -> plaintext, from sealing) is carried over for the findings kept;
    occurrences read back from a cache have none, and aggregate the same. A secret seen only in
    installed packages' docs, examples or tests (``third_party``) is listed as published."""
    groups: dict[str, list[Occurrence]] = {}
    suppressed_fps: set[str] = set()
    for occ in occurrences:
        fp = occ.sighting.fingerprint
        if config.allowlist.allows_path(occ.location.path):
            suppressed_fps.add(fp)
            continue
        groups.setdefault(fp, []).append(occ)
    findings, known_keys = [], []
    suppressed = len(suppressed_fps - groups.keys())
    for fp, occs in groups.items():
        best = max(occs, key=lambda o: _rank(o.sighting, ruleset))
        sighting = best.sighting
        rule = ruleset.by_id.get(sighting.rule_id)
        locations = _unique(o.location for o in occs)
        if sighting.allowlisted_value or config.allowlist.allows_secret(sighting.rule_id, fp) or fp in baseline:
            suppressed += 1
            continue
        source = sighting.known_source or _listing_reason(locations, third_party)
        if source is not None:
            known_keys.append(KnownTestKey(sighting.rule_id, fp, sighting.redacted, source, locations))
            continue
        findings.append(
            Finding(
                rule_id=sighting.rule_id,
                title=rule.name if rule else sighting.rule_id,
                severity=rule.severity if rule else Severity.MEDIUM,
                confidence=sighting.confidence,
                fingerprint=fp,
                redacted=sighting.redacted,
                locations=locations,
                remediation=(rule.remediation if rule else None) or DEFAULT_REMEDIATION,
            )
        )
    kept = {f.fingerprint for f in findings}
    return Aggregated(
        tuple(sort_findings(findings)),
        tuple(known_keys),
        suppressed,
        {fp: s for fp, s in (secrets or {}).items() if fp in kept},
    )


def _listing_reason(locations: tuple[Location, ...], third_party: ThirdPartyPaths | None) -> str | None:
    """Where a secret seen only in content published with packages, or only as an example in
    source code's documentation, comes from: files whose bytes the package manager's records vouch
    for, docstrings and prose comments (and ``.pyc`` compiled from such a docstring), or, where no
    record speaks of a file, an installed package's docs, examples or tests by path; None if one
    location is anything else."""
    packages: list[str] = []
    documented: list[str] = []
    by_path: list[str] = []
    vouched = {(o.image, o.path): o.package for o in locations if o.package_state and o.package_state.published}
    docstrings = {(o.image, o.path) for o in locations if o.documentation is Documentation.DOCSTRING}
    for loc in locations:
        if loc.exposure is Exposure.CONFIG:
            return None
        if loc.package_state is not None and loc.package_state.published:
            packages.append(loc.package or "")
            continue
        if loc.documentation is not None:
            documented.append(f"{loc.documentation} of {loc.path}")
            continue
        if loc.package_state is not None or loc.package is not None:
            return None  # changed or added after install, or not verifiable: the application's
        source = _source_of(loc)
        if source is not None and (loc.image, source) in vouched:
            packages.append(vouched[(loc.image, source)] or "")
            continue
        if source is not None and (loc.image, source) in docstrings:
            documented.append(f"docstring of {source}, compiled")
            continue
        reason = third_party.describe(loc.path) if third_party is not None else None
        if reason is None:
            return None
        by_path.append(reason)
    parts = []
    if packages:
        parts.append("published by " + ", ".join(dict.fromkeys(p for p in packages if p)))
    if documented:
        shown = list(dict.fromkeys(documented))
        more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
        parts.append("an example in documentation: " + "; ".join(shown[:3]) + more)
    if by_path:
        parts.append("published with a package: " + "; ".join(dict.fromkeys(by_path)))
    return "; ".join(parts) or None


def _source_of(loc: Location) -> str | None:
    """The ``.py`` a ``.pyc`` was compiled from, which holds what it holds (its value is published
    when that source is pristine package content: dpkg compiles ``.pyc`` after install, and no
    record vouches for them); None for any other file."""
    path = loc.path.split("!/", 1)[0]
    if not path.endswith(".pyc"):
        return None
    directory, _, name = path.rpartition("/")
    if directory.endswith("/__pycache__"):
        directory = directory[: -len("/__pycache__")]
        name = name.split(".", 1)[0] + ".pyc"
    return f"{directory}/{name[:-4]}.py"


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Severity first, then rule and first location: the order every report uses."""
    return sorted(findings, key=lambda f: (-f.severity, f.rule_id, f.locations[0].describe()))


def _rank(sighting: Sighting, ruleset: RuleSet) -> tuple[int, int]:
    rule = ruleset.by_id.get(sighting.rule_id)
    return (CONFIDENCE_RANK.get(sighting.confidence, 0), int(rule.severity) if rule else 0)


def _unique(locations: Iterable[Location]) -> tuple[Location, ...]:
    seen: dict[Location, None] = {}
    for loc in locations:
        seen.setdefault(loc, None)
    return tuple(
        sorted(
            seen,
            key=lambda loc: (
                loc.image,
                loc.layer_index if loc.layer_index is not None else -1,
                loc.path,
                loc.line or 0,
            ),
        )
    )
