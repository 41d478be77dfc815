"""Keyword prefilter: one Aho–Corasick pass finds every keyword, and each rule's regex then runs
only in windows around its keywords' hits instead of over the whole buffer.

A window reaches as far on each side as the rule's pattern can match (from the regex's own width
bound), so windowing never shortens a match; windows are widened to line boundaries and merged,
so a regex sees whole lines and no match is reported twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import ahocorasick

try:  # the regex parser moved in 3.11; both expose getwidth()
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

MAX_WINDOW_REACH = 64 * 1024
LINE_SLACK = 4096
"""How far a window is widened to reach the start or end of the line it cuts."""
WHOLE_BUFFER_HITS = 4096
"""Past this many hits in one buffer, windows would cover most of it: scan it whole instead."""


def pattern_reach(pattern: re.Pattern[bytes]) -> int:
    """Longest possible match of ``pattern`` in bytes, capped (unbounded repeats hit the cap)."""
    try:
        _, high = _sre_parse.parse(pattern.pattern.decode("latin-1"), pattern.flags).getwidth()
    except Exception:  # noqa: BLE001 - any parser quirk: fall back to the cap
        return MAX_WINDOW_REACH
    return min(int(high), MAX_WINDOW_REACH)


class KeywordIndex:
    """Maps lower-case keywords to the ids that use them and finds all of them in one pass."""

    def __init__(self, keywords: Mapping[bytes, Sequence[str]]) -> None:
        self._automaton = ahocorasick.Automaton()
        for kw, ids in keywords.items():
            self._automaton.add_word(kw.decode("latin-1"), (len(kw), tuple(ids)))
        self._empty = not keywords
        if not self._empty:
            self._automaton.make_automaton()

    def hits(self, data: bytes) -> dict[str, list[int]]:
        """id -> start offsets of its keywords in ``data`` (case-insensitive), in order."""
        if self._empty:
            return {}
        found: dict[str, list[int]] = {}
        # latin-1 maps every byte to one code point, so string offsets are byte offsets
        for end, (length, ids) in self._automaton.iter(data.lower().decode("latin-1")):
            start = end - length + 1
            for rule_id in ids:
                found.setdefault(rule_id, []).append(start)
        return found


def windows(data: bytes, hits: Sequence[int], reach: int) -> Iterable[tuple[int, int]]:
    """Merged [start, end) windows of ``reach`` bytes around each hit, widened to line boundaries."""
    n = len(data)
    if len(hits) > WHOLE_BUFFER_HITS:
        yield 0, n
        return
    current: tuple[int, int] | None = None
    for hit in sorted(hits):
        lo, hi = max(0, hit - reach), min(n, hit + reach)
        if current is not None and lo <= current[1]:
            current = (current[0], max(current[1], hi))
            continue
        if current is not None:
            yield _to_lines(data, *current)
        current = (lo, hi)
    if current is not None:
        yield _to_lines(data, *current)


def _to_lines(data: bytes, lo: int, hi: int) -> tuple[int, int]:
    start = data.rfind(b"\n", max(0, lo - LINE_SLACK), lo)
    end = data.find(b"\n", hi, hi + LINE_SLACK)
    return (
        start + 1 if start >= 0 else max(0, lo - LINE_SLACK) if lo > LINE_SLACK else 0,
        end if end >= 0 else min(len(data), hi + LINE_SLACK),
    )
