"""Keyword prefilter: one Aho–Corasick pass finds every keyword, and each rule's regex then runs
only in windows around its keywords' hits instead of over the whole buffer.

A window reaches as far on each side as the rule's pattern can match (from the regex's own width
bound), so windowing never shortens a match; windows are widened to line boundaries and merged,
so a regex sees whole lines and no match is reported twice.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

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


class PatternPrefilter:
    """One Hyperscan pass over a buffer tells which rules can match at all.

    Every rule pattern is compiled in Hyperscan's prefilter mode (a guaranteed superset of the
    regex: assertions Hyperscan lacks are relaxed) with one report per rule per buffer, into one
    database. Rules it cannot compile are always candidates. The regex engine then runs only for
    candidate rules, around their keywords — so the findings are exactly those of the keyword-only
    path, only sooner. The compiled database is cached by pattern digest (compiling takes seconds).
    """

    def __init__(self, patterns: Mapping[str, bytes], cache_dir: Path | None) -> None:
        import hyperscan

        self._hs = hyperscan
        ids = sorted(patterns)
        self._ids = ids
        self.unsupported: frozenset[str] = frozenset()
        key = hashlib.sha256(
            repr((getattr(hyperscan, "__version__", "?"), [(i, patterns[i]) for i in ids])).encode()
        ).hexdigest()[:32]
        loaded = self._load(cache_dir, key) if cache_dir else None
        if loaded is None:
            self._db: Any = self._compile(patterns)
            if cache_dir:
                self._store(cache_dir, key)
        else:
            self._db = loaded
            self.unsupported = frozenset(self._cached_unsupported)

    def _compile(self, patterns: Mapping[str, bytes]) -> Any:
        hs = self._hs
        flags = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_ALLOWEMPTY
        usable, unsupported = [], set()
        for index, rule_id in enumerate(self._ids):
            probe = hs.Database(mode=hs.HS_MODE_BLOCK)
            try:
                probe.compile(expressions=[patterns[rule_id]], ids=[index], elements=1, flags=[flags])
                usable.append(index)
            except hs.error:
                unsupported.add(rule_id)
        self.unsupported = frozenset(unsupported)
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(
            expressions=[patterns[self._ids[i]] for i in usable],
            ids=usable,
            elements=len(usable),
            flags=[flags] * len(usable),
        )
        return db

    def _load(self, cache_dir: Path, key: str) -> Any:
        path = cache_dir / f"hyperscan-{key}.db"
        try:
            raw = path.read_bytes()
            header, _, blob = raw.partition(b"\n")
            self._cached_unsupported = [u for u in header.decode().split(",") if u]
            db = self._hs.loadb(blob, self._hs.HS_MODE_BLOCK)
            db.scratch = self._hs.Scratch(db)  # a deserialised database comes without scratch space
            return db
        except (OSError, ValueError, self._hs.error):
            return None

    def _store(self, cache_dir: Path, key: str) -> None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = cache_dir / f".hyperscan-{key}.{os.getpid()}"
            tmp.write_bytes(",".join(sorted(self.unsupported)).encode() + b"\n" + self._hs.dumpb(self._db))
            tmp.replace(cache_dir / f"hyperscan-{key}.db")
        except OSError:
            pass  # a cache that cannot be written only costs the compile time next run

    def candidates(self, data: bytes) -> set[str]:
        found: set[str] = set(self.unsupported)

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            found.add(self._ids[index])

        self._db.scan(data, match_event_handler=on_match)
        return found


def keyword_offsets(lowered: bytes, keyword: bytes, limit: int) -> list[int]:
    """Start offsets of ``keyword`` in ``lowered`` (overlapping), at most ``limit`` + 1 of them."""
    out: list[int] = []
    pos = lowered.find(keyword)
    while pos >= 0 and len(out) <= limit:
        out.append(pos)
        pos = lowered.find(keyword, pos + 1)
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "secretscan"
