"""Steps that add knowledge to findings after the scan, while the plaintext is still in memory:
verification (``--verify``) and Vault matching (``--vault``). They never put the secret into a
finding, a log line or an error message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from secretscan.models import Finding


class Enricher(Protocol):
    def enrich(self, findings: Sequence[Finding], secrets: Mapping[str, str]) -> tuple[list[Finding], list[str]]:
        """(findings, problems): problems are one-line messages for the report (a Vault that does
        not answer); the findings are returned either way, so nothing found is lost."""
        ...
