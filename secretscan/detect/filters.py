"""Predicates that drop candidates which are not secrets: placeholders, templates, ids.

``is_placeholder`` runs on every candidate; the detect-secrets heuristics (reused, not rewritten)
run on rules that opt into ``filters: [heuristic]`` — the generic, name-based rules whose pattern
alone cannot tell a secret from code.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from detect_secrets.filters import heuristic as ds_heuristic

_PLACEHOLDER_WORDS = re.compile(
    r"(?i)(example|placeholder|redacted|changeme|change[_-]me|replace[_-]?me|your[_-]|"
    r"insert[_-]|dummy|xxxx|\*\*\*\*|\.\.\.\.|\$\{|\$\(|\{\{|%\()"
)
_PLACEHOLDER_WHOLE = re.compile(r"<[^<>]*>|\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%|%s", re.S)
"""Values that are entirely a reference: ``<token>``, ``$TOKEN``, ``%TOKEN%``."""
_PLACEHOLDER_EXACT = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "null",
        "none",
        "nil",
        "true",
        "false",
        "undefined",
        "test",
        "testing",
        "admin",
        "root",
        "default",
        "empty",
        "string",
        "value",
        "changeit",
        "pass",
        "foobar",
        "hunter2",
        "todo",
        "tbd",
        "fixme",
    }
)
_LONG_RUN = re.compile(r"(.)\1{5,}")
_FILLER_RUN = re.compile(r"([xX*0.#_=-])\1{5,}")
"""Filler characters people type in placeholders. Other runs occur in real tokens: STS session
tokens hold ``//////////``, OpenSSH key bodies ``AAAAAAAAAAAB``, X bearer tokens lead with As."""


def is_placeholder(value: str, *, strict: bool = False) -> bool:
    """True for values that stand for a secret rather than being one.

    A real credential never is a bare reference (``$TOKEN``, ``<token>``), never contains a
    template marker or a word like ``example``, is not made of one repeated character, and never
    has six filler characters (``x``, ``*``, ``0``…) in a row. ``strict`` (generic name=value rules,
    which see human-typed values) rejects a run of any six equal characters.
    """
    v = value.strip().strip("'\"").strip()
    low = v.lower()
    if len(v) < 4 or low in _PLACEHOLDER_EXACT or len(set(low) - set("-_. ")) <= 1:
        return True
    if _PLACEHOLDER_WHOLE.fullmatch(v) or _PLACEHOLDER_WORDS.search(v):
        return True
    return bool((_LONG_RUN if strict else _FILLER_RUN).search(v))


def is_heuristic_non_secret(secret: str, line: str) -> bool:
    """detect-secrets' heuristic filters, for generic rules."""
    return (
        ds_heuristic.is_templated_secret(secret)
        or ds_heuristic.is_sequential_string(secret)
        or ds_heuristic.is_potential_uuid(secret)
        or ds_heuristic.is_prefixed_with_dollar_sign(secret)
        or ds_heuristic.is_indirect_reference(line)
        or _is_hash_like(secret)
        or _CONTROL.search(secret) is not None
    )


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")
"""A NUL or other control byte inside a value: binary data (a .mo catalogue, bytecode) around a
secret-looking name, not a credential someone typed."""


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _is_hash_like(secret: str) -> bool:
    """A bare hex string of a digest length (md5/sha1/sha256/sha512) is a checksum far more often than a key."""
    return bool(_HEX.match(secret)) and len(secret) in (32, 40, 64, 128)


def shannon_entropy(value: str) -> float:
    """Bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def is_lock_file(path: str) -> bool:
    """Lock files are full of integrity hashes; detect-secrets' list of them, reused."""
    return ds_heuristic.is_lock_file(path)
