"""The only code that turns a secret into something printable: redaction and fingerprints."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

import ahocorasick

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
    text whether the values were just found or come from a cache. For many texts, use ``Masker``."""
    return Masker(sighted, key).mask(text)


class Masker:
    """Masks many texts (every build step of an image) against one set of sighted values. The
    values are indexed once, by length and by the start their redacted form shows, so a text costs
    one pass to find where a value could start and a fingerprint per such place and length: its
    time does not grow with the number of values (10,000 ENV steps, each with its own password,
    were 10,000 x 10,000 prefix searches)."""

    def __init__(self, sighted: Iterable[tuple[str, int, str]], key: bytes = DEFAULT_FINGERPRINT_KEY) -> None:
        self._key = key
        self._targets: dict[int, dict[str, str]] = {}
        """length -> fingerprint -> redacted form."""
        for fp, length, redacted in sighted:
            if length > 0:
                self._targets.setdefault(length, {})[fp] = redacted
        lengths_by_start: dict[str, set[int]] = {}
        for length, targets in self._targets.items():
            for redacted in targets.values():
                lengths_by_start.setdefault(_visible_prefix(redacted), set()).add(length)
        self._anywhere = sorted(lengths_by_start.pop("", ()))
        """Lengths of values whose redacted form shows no start: tried at every position."""
        self._starts = ahocorasick.Automaton()
        for start, lengths in lengths_by_start.items():
            self._starts.add_word(start, (len(start), tuple(sorted(lengths))))
        if lengths_by_start:
            self._starts.make_automaton()

    def mask(self, text: str) -> str:
        if len(text) > MAX_MASKED_TEXT:
            text = text[:MAX_MASKED_TEXT] + "…(truncated)"
        if not self._targets:
            return text
        n, key, targets = len(text), self._key, self._targets
        found: dict[tuple[int, int], str] = {}  # (length, position) of a sighted value -> its redacted form

        def try_at(j: int, lengths: Iterable[int]) -> None:
            for length in lengths:
                if j + length <= n and (length, j) not in found:
                    redacted = targets[length].get(fingerprint(text[j : j + length], key))
                    if redacted is not None:
                        found[(length, j)] = redacted

        if self._starts.kind == ahocorasick.AHOCORASICK:
            for end, (width, lengths) in self._starts.iter(text):
                try_at(end - width + 1, lengths)
        if self._anywhere:
            for j in range(n):
                try_at(j, self._anywhere)
        if not found:
            return text
        # longer values first, then left to right; a value overlapping one already masked stays
        # inside that mask (as masking one length after another would leave it)
        covered = bytearray(n)
        chosen = []
        for length, j in sorted(found, key=lambda f: (-f[0], f[1])):
            if covered.find(1, j, j + length) < 0:
                covered[j : j + length] = b"\x01" * length
                chosen.append((j, length))
        out, i = [], 0
        for j, length in sorted(chosen):
            out.append(text[i:j] + f"<{found[(length, j)]}>")
            i = j + length
        return "".join(out) + text[i:]


def _visible_prefix(redacted: str) -> str:
    """What ``redact`` shows of a value's start: candidates must start with it."""
    if redacted.startswith("-----BEGIN"):
        return redacted.removesuffix(" …(redacted)")
    return redacted.split("…", 1)[0]
