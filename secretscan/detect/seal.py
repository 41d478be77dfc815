"""Where plaintext stops: a ``Match`` becomes a ``Sighting`` as soon as a detector returns it.

Everything after this point (layer results, the per-layer cache, the sweep database, reports)
carries sightings: a keyed fingerprint, a redacted form and the facts that need the plaintext to
decide (is it a published test key? does an allowlist regex accept the value?), decided here, once.
The plaintext goes into a separate in-memory map that is never serialised, for the consumers that
need the value itself (verification, Vault matching, ``--show-secrets``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from secretscan.detect.knownkeys import KnownKeys
from secretscan.detect.match import Match
from secretscan.models import Documentation
from secretscan.redact import fingerprint, redact


@dataclass(frozen=True, slots=True)
class Sighting:
    rule_id: str
    fingerprint: str
    redacted: str
    length: int
    """Of the plaintext: lets history lines be masked by fingerprint, without the value."""
    confidence: str = "high"
    context: str | None = None
    known_source: str | None = None
    """Where the value is published as a test key, if it is one."""
    allowlisted_value: bool = False
    """An allowlist regex accepts the value."""
    documentation: Documentation | None = None
    """This occurrence is in a docstring or prose comment (``Match.documentation``)."""


@dataclass(frozen=True)
class Sealer:
    key: bytes
    known: KnownKeys
    allow_values: tuple[re.Pattern[str], ...] = ()

    def seal(self, m: Match, secrets: dict[str, str]) -> Sighting:
        """The sighting of ``m``; its plaintext is added to ``secrets`` (fingerprint -> value)."""
        fp = fingerprint(m.secret, self.key)
        secrets[fp] = m.secret
        return Sighting(
            rule_id=m.rule_id,
            fingerprint=fp,
            redacted=redact(m.secret),
            length=len(m.secret),
            confidence=m.confidence,
            context=m.context,
            documentation=m.documentation,
            known_source=self.known.lookup(m.secret),
            allowlisted_value=any(r.search(m.secret) for r in self.allow_values),
        )

    @property
    def identity(self) -> str:
        """Changes whenever a sighting of the same match would change (for cache keys); never
        reveals the fingerprint key."""
        h = hashlib.sha256(hashlib.sha256(self.key).digest())
        for fp in sorted(self.known.sources):
            h.update(fp.encode() + b"\0" + self.known.sources[fp].encode() + b"\n")
        for r in self.allow_values:
            h.update(b"re\0" + r.pattern.encode() + b"\n")
        h.update(b"third-party\0" + self.known.third_party.identity().encode())
        return h.hexdigest()
