"""Keyword prefilter: one Aho–Corasick pass finds every keyword, and each rule's regex then runs
only in windows around its keywords' hits instead of over the whole buffer.

A window reaches as far on each side as the rule's pattern can match (from the regex's own width
bound), so windowing never shortens a match; windows are widened to line boundaries and merged,
so a regex sees whole lines and no match is reported twice.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ahocorasick

from secretscan.detect.artefacts import ArtefactStore

try:  # the regex parser moved in 3.11; both expose getwidth()
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

MAX_WINDOW_REACH = 64 * 1024
LINE_SLACK = 4096
"""How far a window is widened to reach the start or end of the line it cuts."""
WHOLE_BUFFER_HITS = 65536
"""Past this many hits in one buffer, windows would cover most of it: scan it whole instead. (At
4,096 a dense but ordinary source file took the slow whole-buffer path: ``make bench`` a/b rose by
two thirds. Windows for 65,536 hits cost well under a tenth of a second.)"""


def pattern_reach(pattern: re.Pattern[bytes]) -> int:
    """Longest possible match of ``pattern`` in bytes, capped (unbounded repeats hit the cap)."""
    try:
        _, high = _sre_parse.parse(pattern.pattern.decode("latin-1"), pattern.flags).getwidth()
    except Exception:  # noqa: BLE001 - any parser quirk: fall back to the cap
        return MAX_WINDOW_REACH
    return min(int(high), MAX_WINDOW_REACH)


MAX_LINE_SPAN = 4
"""Rules whose matches span at most this many line breaks are confirmed on their keyword's lines."""


def newline_span(pattern: re.Pattern[bytes]) -> int | None:
    """How many newlines a match of ``pattern`` can contain at most (None: unbounded or many).

    A match holds its keyword, so a rule whose matches hold at most k newlines is confirmed on the
    keyword's line and k lines either side — far less text than the regex's whole reach."""
    try:
        tree = _sre_parse.parse(pattern.pattern.decode("latin-1"), pattern.flags)
    except Exception:  # noqa: BLE001 - unknown: no bound
        return None
    span = newlines_in(tree.data, dotall=bool(pattern.flags & re.DOTALL))
    return None if span > MAX_LINE_SPAN else int(span)


_NEWLINE = 10
_INFINITE = float("inf")


def newlines_in(items: Any, dotall: bool) -> float:
    """How many newlines a match of the parsed ``items`` can hold at most (inf: no bound)."""
    total = 0.0
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            total += av == _NEWLINE
        elif name == "NOT_LITERAL":
            total += av != _NEWLINE
        elif name == "ANY":
            total += dotall
        elif name == "IN":
            total += _set_has_newline(av)
        elif name == "SUBPATTERN":
            total += newlines_in(av[-1], dotall or bool(av[1] & re.DOTALL))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            inner = newlines_in(av[2], dotall)
            total += 0 if not inner else (_INFINITE if av[1] == _sre_parse.MAXREPEAT else inner * av[1])
        elif name == "BRANCH":
            total += max(newlines_in(branch, dotall) for branch in av[1])
        elif name == "ATOMIC_GROUP":
            total += newlines_in(av, dotall)
        elif name in ("GROUPREF", "GROUPREF_EXISTS", "CATEGORY"):
            return _INFINITE  # rare in rules: no bound
    return total


def _set_has_newline(items: Any) -> bool:
    negate, found = False, False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif (
            name == "LITERAL"
            and av == _NEWLINE
            or name == "RANGE"
            and av[0] <= _NEWLINE <= av[1]
            or name == "CATEGORY"
            and str(av)
            in (
                "CATEGORY_SPACE",
                "CATEGORY_NOT_DIGIT",
                "CATEGORY_NOT_WORD",
                "CATEGORY_LINEBREAK",
            )
        ):
            found = True
    return found != negate


def line_windows(data: bytes, hits: Sequence[int], reach: int, span: int) -> Iterable[tuple[int, int]]:
    """Each hit's line and ``span`` lines either side, cut to ``reach`` bytes from the hit, merged."""
    n = len(data)
    if len(hits) > WHOLE_BUFFER_HITS:  # callers keep only this many hits: the rest must be covered too
        yield 0, n
        return
    current: tuple[int, int] | None = None
    for hit in sorted(hits):
        floor, ceiling = max(0, hit - reach), min(n, hit + reach)
        start = hit
        for _ in range(span + 1):
            start = data.rfind(b"\n", floor, start)
            if start < 0:
                break
        start = floor if start < 0 else start + 1
        end = hit
        for _ in range(span + 1):
            end = data.find(b"\n", end + (end != hit), ceiling)
            if end < 0:
                break
        end = ceiling if end < 0 else end
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


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

    Keyword positions are found only where they are needed: the keywords of rules that are always
    candidates (the rules Hyperscan cannot compile) in the same pass, the others
    by ``keyword_offsets`` for the candidate rules of a buffer. Source code is full of ``key`` and
    ``token``: reporting every occurrence from the pass cost a callback each, mostly for buffers
    where no rule can match.
    """

    def __init__(
        self,
        patterns: Mapping[str, bytes],
        keywords: Mapping[str, Sequence[bytes]],
        store: ArtefactStore | None,
        *,
        announce: bool = True,
    ) -> None:
        """``patterns``: rule id -> the bytes regex whose matches make it a candidate; ``keywords``:
        rule id -> its keywords; ``store``: where a compiled database is looked up and kept;
        ``announce``: say so on stderr when compiling (once a run is enough)."""
        import hyperscan

        self._hs = hyperscan
        ids = sorted(patterns)
        self._ids = ids
        self._rule_keywords = {rid: tuple(kws) for rid, kws in keywords.items()}
        self._keywords: list[bytes] = []
        """The literals in the database, set with ``unsupported``."""
        self.unsupported: frozenset[str] = frozenset()
        key = hashlib.sha256(
            repr(
                (
                    getattr(hyperscan, "__version__", "?"),
                    [(i, patterns[i]) for i in ids],
                    MAX_EXACT_REPEAT,
                    sorted(self._rule_keywords.items()),
                )
            ).encode()
        ).hexdigest()[:32]
        name = f"hyperscan-{key}.db"
        loaded = self._load(store, name) if store else None
        self.compiled = loaded is None
        """Whether the database was compiled here rather than loaded."""
        if loaded is None:
            if announce:
                logger.warning(
                    "compiling the rule database for this rule set (seconds, once%s)",
                    f"; kept in {store.cache_dir}" if store else "",
                )
            self._db: Any = self._compile(patterns)
            if store:
                self._store(store, name)
        else:
            self._db = loaded
            self.unsupported = frozenset(self._cached_unsupported)
            self._keywords = self._literals()
        self.in_pass = frozenset(self._keywords)
        """Keywords whose offsets ``scan`` returns."""

    def _compile(self, patterns: Mapping[str, bytes]) -> Any:
        """All patterns in one database; only if that fails, each alone, to find the ones
        Hyperscan cannot take (probing costs a compile per rule: seconds on a first run)."""
        relaxed = {rule_id: relax_repeats(pattern) for rule_id, pattern in patterns.items()}
        try:
            return self._build(relaxed, list(range(len(self._ids))))
        except self._hs.error:
            pass
        usable, unsupported = [], set()
        for index, rule_id in enumerate(self._ids):
            try:
                self._build(relaxed, [index], literals=False)
                usable.append(index)
            except self._hs.error:
                unsupported.add(rule_id)
        self.unsupported = frozenset(unsupported)
        return self._build(relaxed, usable)

    def _build(self, patterns: Mapping[str, bytes], usable: list[int], literals: bool = True) -> Any:
        hs = self._hs
        flags = hs.HS_FLAG_PREFILTER | hs.HS_FLAG_SINGLEMATCH | hs.HS_FLAG_ALLOWEMPTY
        self._keywords = self._literals() if literals else []
        offset = len(self._ids)
        escaped = [re.escape(k.decode("latin-1")).encode("latin-1") for k in self._keywords]
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        db.compile(
            expressions=[patterns[self._ids[i]] for i in usable] + escaped,
            ids=usable + [offset + j for j in range(len(escaped))],
            elements=len(usable) + len(escaped),
            flags=[flags] * len(usable) + [hs.HS_FLAG_CASELESS] * len(escaped),
        )
        return db

    def _literals(self) -> list[bytes]:
        found: set[bytes] = set()
        for rule_id in self.unsupported:
            found.update(self._rule_keywords.get(rule_id, ()))
        return sorted(found)

    def _load(self, store: ArtefactStore, name: str) -> Any:
        for raw, _ in store.found(name):
            header, _, blob = raw.partition(b"\n")
            try:
                db = self._hs.loadb(blob, self._hs.HS_MODE_BLOCK)
                db.scratch = self._hs.Scratch(db)  # a deserialised database comes without scratch space
            except (ValueError, self._hs.error):
                continue  # built for another CPU, or damaged: the next place, else a compile
            self._cached_unsupported = [u for u in header.decode("latin-1").split(",") if u]
            return db
        return None

    def _store(self, store: ArtefactStore, name: str) -> None:
        store.write(name, ",".join(sorted(self.unsupported)).encode() + b"\n" + self._hs.dumpb(self._db))

    def matches_any(self, data: bytes) -> bool:
        """Whether any rule can match in ``data``: the pass stops at the first report. (A rule
        Hyperscan cannot take runs only where its keyword is, and its keywords are in the pass.)"""
        try:
            self._db.scan(data, match_event_handler=_stop)
        except self._hs.ScanTerminated:
            return True
        return False

    def scan(self, data: bytes) -> tuple[set[str], dict[bytes, list[int]]]:
        """(rules that can match, keyword -> start offsets in order for the ``in_pass`` keywords)."""
        found: set[str] = set(self.unsupported)
        hits: list[tuple[int, int]] = []
        n_rules, ids, add_hit = len(self._ids), self._ids, hits.append

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            if index < n_rules:
                found.add(ids[index])
            else:
                add_hit((index - n_rules, end))

        self._db.scan(data, match_event_handler=on_match)
        offsets: dict[bytes, list[int]] = {}
        for j, end in hits:
            keyword = self._keywords[j]
            offsets.setdefault(keyword, []).append(end - len(keyword))
        return found, offsets


def _stop(*_: object) -> bool:
    return True


MAX_EXACT_REPEAT = 255
"""Bounded repeats up to this stay as they are in the prefilter; ``{64,20000}`` becomes ``{64,}``.
A superset, which is all a prefilter needs, and Hyperscan compiles the rule set in well under a
second instead of ten (a PEM body's ``{64,20000}`` took half a second per rule)."""


def relax_repeats(pattern: bytes) -> bytes:
    """``pattern`` with every bounded repeat whose upper bound exceeds ``MAX_EXACT_REPEAT`` left
    open (outside character classes; escaped braces are literals)."""
    out, i, in_class = bytearray(), 0, False
    n = len(pattern)
    while i < n:
        ch = pattern[i : i + 1]
        if ch == b"\\":
            out += pattern[i : i + 2]
            i += 2
            continue
        if in_class:
            in_class = ch != b"]"
        elif ch == b"[":
            in_class = True
            out += ch
            i += 1
            if pattern[i : i + 1] == b"^":
                out += b"^"
                i += 1
            if pattern[i : i + 1] == b"]":  # a "]" first in a class is a member
                out += b"]"
                i += 1
            continue
        elif ch == b"{":
            found = _BOUNDED.match(pattern, i)
            if found is not None and int(found.group(2)) > MAX_EXACT_REPEAT:
                out += b"{" + found.group(1) + b",}"
                i = found.end()
                continue
        out += ch
        i += 1
    return bytes(out)


_BOUNDED = re.compile(rb"\{(\d+),(\d+)\}")


def bytes_superset(patterns: Sequence[str]) -> bytes:
    """One caseless bytes pattern matching wherever any of ``patterns`` (text regexes, as
    detect-secrets' plugins write them) matches decoded UTF-8: ``\\w`` also takes any non-ASCII
    byte, as a word character outside ASCII is encoded with such bytes. For the prefilter only."""
    return ("(?i)(?:" + "|".join(_widen_word_class(p) for p in patterns) + ")").encode("utf-8")


def _widen_word_class(pattern: str) -> str:
    out, i, in_class, negated = [], 0, False, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            if escape == "\\w" and not negated:  # ([^\\w] over bytes already takes every byte >= 0x80)
                escape = "\\w\\x80-\\xff" if in_class else "[\\w\\x80-\\xff]"
            out.append(escape)
            i += 2
            continue
        if ch == "[" and not in_class:
            negated = pattern[i + 1 : i + 2] == "^"
            opening = pattern[i : i + 2] if negated else ch
            in_class = True
            out.append(opening)
            i += len(opening)
            if pattern[i : i + 1] == "]":  # a "]" first in a class is a member, not its end
                out.append("]")
                i += 1
            continue
        if ch == "]" and in_class:
            in_class = negated = False
        out.append(ch)
        i += 1
    return "".join(out)


def keyword_offsets(lowered: bytes, keyword: bytes, limit: int) -> list[int]:
    """Start offsets of ``keyword`` (lower case) in ``lowered`` (the buffer in lower case), overlapping
    ones included, at most ``limit``: what the pass reports for a caseless literal."""
    if not _overlaps_itself(keyword):  # no occurrence can start inside another: the regex engine's loop
        return [m.start() for m in itertools.islice(_finder(keyword).finditer(lowered), limit)]
    found: list[int] = []
    at = lowered.find(keyword)
    while at >= 0 and len(found) < limit:
        found.append(at)
        at = lowered.find(keyword, at + 1)
    return found


@functools.lru_cache(maxsize=4096)
def _finder(keyword: bytes) -> re.Pattern[bytes]:
    return re.compile(re.escape(keyword))


@functools.lru_cache(maxsize=4096)
def _overlaps_itself(keyword: bytes) -> bool:
    """Whether two occurrences can overlap (``aba`` in ``ababa``): a proper prefix that is also a suffix."""
    return any(keyword[:n] == keyword[-n:] for n in range(1, len(keyword)))
