"""From occurrences to findings: one finding per distinct secret, every place it was seen.

Also where suppression happens (allowlist, baseline, known test keys), so that each decision is
counted in the report instead of making a finding vanish.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from secretscan.config import ScanConfig
from secretscan.detect.knownkeys import KnownKeys
from secretscan.detect.match import Match
from secretscan.detect.rules import CONFIDENCE_RANK, RuleSet
from secretscan.models import Finding, KnownTestKey, Location
from secretscan.redact import fingerprint, redact

DEFAULT_REMEDIATION = "Revoke and rotate this credential, then rebuild the image without it."


@dataclass(frozen=True, slots=True)
class Occurrence:
    match: Match
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
    known: KnownKeys,
    baseline: frozenset[str] = frozenset(),
) -> Aggregated:
    groups: dict[str, list[Occurrence]] = {}
    secrets: dict[str, str] = {}
    suppressed_fps: set[str] = set()
    for occ in occurrences:
        fp = fingerprint(occ.match.secret, config.fingerprint_key)
        if config.allowlist.allows_path(occ.location.path):
            suppressed_fps.add(fp)
            continue
        groups.setdefault(fp, []).append(occ)
        secrets[fp] = occ.match.secret
    findings, known_keys = [], []
    suppressed = len(suppressed_fps - groups.keys())
    for fp, occs in groups.items():
        best = max(occs, key=lambda o: _rank(o.match, ruleset))
        rule = ruleset.by_id[best.match.rule_id]
        secret = secrets[fp]
        locations = _unique(o.location for o in occs)
        if config.allowlist.allows_secret(rule.id, fp, secret) or fp in baseline:
            suppressed += 1
            continue
        source = known.lookup(secret)
        if source is not None:
            known_keys.append(KnownTestKey(rule.id, fp, redact(secret), source, locations))
            continue
        findings.append(
            Finding(
                rule_id=rule.id,
                title=rule.name,
                severity=rule.severity,
                confidence=best.match.confidence,
                fingerprint=fp,
                redacted=redact(secret),
                locations=locations,
                remediation=rule.remediation or DEFAULT_REMEDIATION,
            )
        )
    kept = {f.fingerprint for f in findings}
    return Aggregated(
        tuple(sort_findings(findings)),
        tuple(known_keys),
        suppressed,
        {fp: s for fp, s in secrets.items() if fp in kept},
    )


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Severity first, then rule and first location: the order every report uses."""
    return sorted(findings, key=lambda f: (-f.severity, f.rule_id, f.locations[0].describe()))


def _rank(match: Match, ruleset: RuleSet) -> tuple[int, int]:
    rule = ruleset.by_id[match.rule_id]
    return (CONFIDENCE_RANK.get(match.confidence, 0), int(rule.severity))


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
