"""The only code that turns a secret into something printable: redaction and fingerprints."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

DEFAULT_FINGERPRINT_KEY = b"secretscan/fingerprint/v1"
"""Used when no key is configured. It makes fingerprints stable across machines (baselines work in
CI) but is public, so a fingerprint of a weak password could be brute-forced; teams that share
reports set ``fingerprint_key`` (config) or ``SECRETSCAN_FINGERPRINT_KEY`` to a private value."""


def fingerprint(secret: str, key: bytes = DEFAULT_FINGERPRINT_KEY) -> str:
    """Keyed hash of the secret value alone, so the same secret is one finding wherever it is."""
    digest = hmac.new(key, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return "ssf1:" + digest[:32]


def redact(secret: str) -> str:
    """Show enough to recognise a value, never enough to use it.

    Long values keep their first 4 and last 2 characters (prefixes such as ``ghp_`` or ``AKIA``
    identify the kind); short ones show nothing; multi-line values (PEM keys) keep their first line.
    """
    first_line = secret.strip().splitlines()[0] if secret.strip() else ""
    if first_line.startswith("-----BEGIN"):
        return first_line + " …(redacted)"
    n = len(secret)
    if n >= 16:
        return f"{secret[:4]}…{secret[-2:]} ({n} chars)"
    if n >= 10:
        return f"{secret[:2]}…({n} chars)"
    return f"…({n} chars)"


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by its redacted form: for showing
    context such as a history line (``RUN curl -H 'token: …'``) without re-leaking the value."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, f"<{redact(secret)}>")
    return text
