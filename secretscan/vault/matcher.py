"""``--vault``: classify each finding against Vault KV v2 — the *current* value of a managed secret
(critical: rotate now), a *former* value (already rotated; history exposure), or *unmanaged*."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from secretscan.models import Finding, Severity, VaultMatch, VaultStatus
from secretscan.vault.connect import VaultError, VaultSettings, connect
from secretscan.vault.index import VaultIndex, build_index


class VaultMatcher:
    def __init__(self, settings: VaultSettings, connector: Callable[[VaultSettings], Any] = connect) -> None:
        self.settings = settings
        self._connector = connector
        self.index: VaultIndex | None = None

    def enrich(self, findings: Sequence[Finding], secrets: Mapping[str, str]) -> tuple[list[Finding], list[str]]:
        if not findings:
            return list(findings), []
        if not self.settings.kv:
            return list(findings), [
                "Vault matching: no KV locations to search (vault.kv in secretscan.yaml or --vault-kv)"
            ]
        try:
            self.index = build_index(self._connector(self.settings), self.settings.kv)
        except VaultError as exc:
            return list(findings), [f"Vault matching not done: {exc}"]
        problems = [f"Vault matching: stopped after {self.index.secrets_read} secrets"] if self.index.truncated else []
        return [self._classify(f, secrets[f.fingerprint]) for f in findings], problems

    def _classify(self, finding: Finding, secret: str) -> Finding:
        assert self.index is not None
        refs = self.index.lookup(secret)
        if not refs:
            return replace(finding, vault=VaultMatch(VaultStatus.UNMANAGED))
        best = refs[0]
        if best.current:
            return replace(
                finding,
                severity=Severity.CRITICAL,
                title=f"live managed secret leaked — rotate {best.path}",
                vault=VaultMatch(VaultStatus.CURRENT, best.path, best.version, best.current_version),
                remediation=f"Rotate {best.path} in Vault now (write a new version and revoke the old credential "
                f"at its provider), then remove it from the image. {finding.remediation}",
            )
        return replace(
            finding,
            vault=VaultMatch(VaultStatus.FORMER, best.path, best.version, best.current_version),
            remediation=f"Already rotated in Vault ({best.path} is now at version {best.current_version}); make sure the "
            f"old value is revoked at its provider, and rebuild the image without it. {finding.remediation}",
        )
