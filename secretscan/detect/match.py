"""What a detector returns: a candidate secret and where it sits in the scanned bytes.

The plaintext lives only here, in memory. Everything downstream (findings, reports, caches)
carries the redacted form and a keyed fingerprint instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretscan.models import Documentation


@dataclass(frozen=True, slots=True)
class Match:
    rule_id: str
    """Id of the rule in ``patterns/*.yaml`` that this match belongs to (for severity, name, remediation)."""

    secret: str
    """The credential itself, as text. Never logged; reports show it only with ``--show-secrets``."""

    start: int
    """Byte offset of the secret in the scanned data (for line numbers and overlap resolution)."""

    end: int

    line: int | None = None
    """1-based line of ``start``, when the detector knows it; the walker fills it in otherwise."""

    context: str | None = None
    """Where inside a structured file the value was read, e.g. ``auths.registry.example.com``
    or ``[default] aws_secret_access_key``. Never contains the secret."""

    confidence: str = "high"
    """``high`` for a provider-specific format or a parsed credential file, ``medium``/``low`` for
    heuristics (entropy of a value assigned to a secret-looking name)."""

    documentation: Documentation | None = None
    """Set for a heuristic rule's match in a docstring or prose comment (``detect.pysource``)."""
