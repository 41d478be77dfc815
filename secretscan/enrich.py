"""Steps that add knowledge to findings after the scan, while the plaintext is still in memory:
verification (``--verify``) and managed-secret matching (``--vault``, ``--aws-secrets``). They
never put the secret into a finding, a log line or an error message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from secretscan.models import Finding, Skipped


class Enricher(Protocol):
    def enrich(
        self, findings: Sequence[Finding], secrets: Mapping[str, str]
    ) -> tuple[list[Finding], Sequence[str | Skipped]]:
        """(findings, problems): a problem is a one-line error for the report (a store that does
        not answer, a permission missing) or a ``Skipped`` (a value that could not be compared);
        the findings are returned either way, so nothing found is lost."""
        ...


def file_problems(problems: Sequence[str | Skipped], errors: list[str], skipped: list[Skipped]) -> None:
    """Each problem to the report's errors or to what it says was not (fully) done."""
    for problem in problems:
        if isinstance(problem, Skipped):
            skipped.append(problem)
        else:
            errors.append(problem)
