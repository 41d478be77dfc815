"""The only code that turns a secret into something printable: redaction and fingerprints."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

DEFAULT_FINGERPRINT_KEY = b"secretscan/fingerprint/v1"
"""Used when no key is configured. It makes fingerprints stable across machines (baselines work in
CI) but is public, so a fingerprint of a weak password could be brute-forced; teams that share
reports set ``fingerprint_key`` (config) or ``SECRETSCAN_FINGERPRINT_KEY`` to a private value."""


def fingerprint(secret: str, key: bytes = DEFAULT_FINGERPRINT_KEY) -> str:
    """Keyed hash of the secret value alone, so the same secret is one finding wherever it is."""
    digest = hmac.new(key, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return "ssf1:" + digest[:32]


_PEM_HEADER = re.compile(r"-----BEGIN [A-Z0-9 ]{1,60}-----")


def redact(secret: str) -> str:
    """Show enough to recognise a value, never enough to use it.

    Long values keep their first 4 and last 2 characters (prefixes such as ``ghp_`` or ``AKIA``
    identify the kind); short ones show nothing; multi-line values (PEM keys) keep their first line.
    """
    header = _PEM_HEADER.match(secret.strip())
    if header:  # only the BEGIN line: a PEM written with escaped newlines is one long "line"
        return header.group(0) + " …(redacted)"
    n = len(secret)
    if n >= 16:
        return f"{secret[:4]}…{secret[-2:]} ({n} chars)"
    if n >= 10:
        return f"{secret[:2]}…({n} chars)"
    return f"…({n} chars)"


MAX_MASKED_TEXT = 256 * 1024
"""Context lines longer than this are cut before masking: they are shown to people, and masking
hashes a window at every candidate position."""


def mask(text: str, sighted: Iterable[tuple[str, int, str]], key: bytes = DEFAULT_FINGERPRINT_KEY) -> str:
    """``text`` with every value in ``sighted`` (fingerprint, length, redacted form) replaced by
    its redacted form: for showing context such as a history line (``RUN curl -H 'token: …'``)
    without re-leaking it. Works from fingerprints, so it needs no plaintext and gives the same
    text whether the values were just found or come from a cache."""
    if len(text) > MAX_MASKED_TEXT:
        text = text[:MAX_MASKED_TEXT] + "…(truncated)"
    wanted: dict[int, dict[str, str]] = {}
    for fp, length, redacted in sighted:
        if length > 0:
            wanted.setdefault(length, {})[fp] = redacted
    for length in sorted(wanted, reverse=True):
        targets = wanted[length]
        hints = {_visible_prefix(r) for r in targets.values()}
        out, i = [], 0
        while i + length <= len(text):
            j = _next_candidate(text, i, hints)
            if j < 0 or j + length > len(text):
                break
            fp = fingerprint(text[j : j + length], key)
            if fp in targets:
                out.append(text[i:j] + f"<{targets[fp]}>")
                i = j + length
            else:
                out.append(text[i : j + 1])
                i = j + 1
        text = "".join(out) + text[i:]
    return text


def _visible_prefix(redacted: str) -> str:
    """What ``redact`` shows of a value's start: candidates must start with it."""
    if redacted.startswith("-----BEGIN"):
        return redacted.removesuffix(" …(redacted)")
    return redacted.split("…", 1)[0]


def _next_candidate(text: str, start: int, hints: set[str]) -> int:
    if "" in hints:
        return start
    found = [j for j in (text.find(h, start) for h in hints) if j >= 0]
    return min(found) if found else -1
