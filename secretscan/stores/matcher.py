"""``--vault`` and ``--aws-secrets``: each finding compared with a managed-secret store — the
*current* value of a managed secret (critical: rotate now), a *former* value (already rotated; the
leak exposes history), or *unmanaged* (migrate it).

The same matcher serves scans, which compare the plaintext in memory, and sweeps, which compare
the fingerprints their database holds (``verdicts``): both look up keyed fingerprints made with
the run's fingerprint key, so a sweep needs no plaintext and stores none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from secretscan.models import Finding, ManagedMatch, ManagedStatus, SecretStore, Severity, Skipped
from secretscan.stores.model import Held, ManagedIndex, ManagedStore, StoreError


@dataclass(frozen=True)
class Verdicts:
    """A store's verdicts on a set of fingerprints (a sweep's findings), and what kept it from
    saying more."""

    store: SecretStore
    matches: Mapping[str, ManagedMatch] = field(default_factory=dict)
    """fingerprint -> verdict; a fingerprint without one was not decided (the store was not
    fully read)."""
    errors: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()


class StoreMatcher:
    """The enricher for one store. The store is read once, on first use, into an index of
    fingerprints under ``key`` (the run's fingerprint key)."""

    def __init__(self, store: ManagedStore, key: bytes) -> None:
        self.store = store
        self.key = key
        self._index: ManagedIndex | None = None
        self._errors: list[str] = []

    @property
    def kind(self) -> SecretStore:
        return self.store.kind

    def index(self) -> ManagedIndex | None:
        """The store's index; None when it could not be read (the reason is in the errors)."""
        if self._index is None and not self._errors:
            index = ManagedIndex(self.kind, self.key)
            try:
                self.store.read(index)
            except StoreError as exc:
                self._errors.append(f"{self.kind.label} matching not done: {exc}")
                return None
            if index.truncated:
                self._errors.append(
                    f"{self.kind.label} matching: stopped after {index.secrets_read} secrets; "
                    "findings not matched are not called unmanaged"
                )
            self._errors.extend(index.unread)
            self._index = index
        return self._index

    def enrich(
        self, findings: Sequence[Finding], secrets: Mapping[str, str]
    ) -> tuple[list[Finding], list[str | Skipped]]:
        if not findings:
            return list(findings), []
        index = self.index()
        problems: list[str | Skipped] = [*self._errors]
        if index is None:
            return list(findings), problems
        problems.extend(index.skipped)
        out = []
        for finding in findings:
            match = _verdict(index, index.lookup_value(secrets[finding.fingerprint]))
            out.append(with_match(finding, match) if match else finding)
        return out, problems

    def verdicts(self, fingerprints: Iterable[str]) -> Verdicts:
        """For fingerprints without their plaintext (a sweep's findings). Nothing to compare, as
        for a scan without findings, asks the store nothing."""
        fingerprints = list(fingerprints)
        if not fingerprints:
            return Verdicts(self.kind)
        index = self.index()
        if index is None:
            return Verdicts(self.kind, {}, tuple(self._errors))
        matches = {}
        for fp in fingerprints:
            match = _verdict(index, index.lookup({fp}))
            if match is not None:
                matches[fp] = match
        return Verdicts(self.kind, matches, tuple(self._errors), tuple(index.skipped))


def _verdict(index: ManagedIndex, held: list[Held]) -> ManagedMatch | None:
    if held:
        return held[0].match(index.store)
    return ManagedMatch(index.store, ManagedStatus.UNMANAGED) if index.complete else None


def with_match(finding: Finding, match: ManagedMatch) -> Finding:
    """``finding`` with a store's verdict: a current managed value becomes critical and says what
    to rotate; a former one says it was rotated."""
    managed = (*finding.managed, match)
    if match.status is ManagedStatus.CURRENT:
        first = not any(m.status is ManagedStatus.CURRENT for m in finding.managed)
        return replace(
            finding,
            managed=managed,
            severity=Severity.CRITICAL,
            title=f"live managed secret leaked — rotate {_where(match)}" if first else finding.title,
            remediation=_rotate(match) + finding.remediation,
        )
    if match.status is ManagedStatus.FORMER:
        return replace(finding, managed=managed, remediation=_rotated(match) + finding.remediation)
    return replace(finding, managed=managed)


def _where(match: ManagedMatch) -> str:
    if match.store is SecretStore.VAULT:
        return match.ref or ""
    return f"{match.label} in {match.store.label}"


def _rotate(match: ManagedMatch) -> str:
    if match.store is SecretStore.VAULT:
        return (
            f"Rotate {match.ref} in Vault now (write a new version and revoke the old credential at its provider), "
            "then remove it from the image. "
        )
    return (
        f"Rotate {match.label} in AWS Secrets Manager now (rotate the secret, or put a new value, and revoke the old "
        "credential at its provider), then remove it from the image. "
    )


def _rotated(match: ManagedMatch) -> str:
    if match.store is SecretStore.VAULT:
        where = f"{match.ref} is now at version {match.current_version}"
    else:
        where = f"{match.label}: this value is version {match.version} ({match.stage or 'no staging label'}), not AWSCURRENT"
    return (
        f"Already rotated in {match.store.label} ({where}); make sure the old value is revoked at its provider, and "
        "rebuild the image without it. "
    )
