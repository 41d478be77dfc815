"""Turn bytes into matches: keyword prefilter, rule regexes, credential-file parsers, filters.

The engine is stateless after construction and safe to share: it is built once per run from the
rule set and handed every chunk of every file, config entry and history line.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from secretscan.detect import credfiles
from secretscan.detect.artefacts import ArtefactStore
from secretscan.detect.filters import (
    assignment_before,
    is_bare_code_value,
    is_code_identifier,
    is_heuristic_non_secret,
    is_lock_file,
    is_placeholder,
    is_test_file,
    shannon_entropy,
)
from secretscan.detect.knownkeys import KnownKeys
from secretscan.detect.match import Match
from secretscan.detect.prefilter import (
    WHOLE_BUFFER_HITS,
    KeywordIndex,
    PatternPrefilter,
    bytes_superset,
    keyword_offsets,
    line_windows,
    newline_span,
    pattern_reach,
    windows,
)
from secretscan.detect.pysource import DocumentationSpans, documentation_spans
from secretscan.detect.rules import CONFIDENCE_RANK, Rule, RuleSet, detect_secrets_plugins
from secretscan.detect.scope import SelfIdentifying
from secretscan.models import Documentation, RuleScope

MAX_LINE_FOR_FILTERS = 4096
_MULTILINE_LEADS = " multiline leads"
"""The self-identifying prefilter's entry for ``SelfIdentifying.multiline_leads`` (no rule id has a space)."""
PYTHON_SOURCE = (".py", ".pyi", ".pyw")
MAX_PYTHON_SOURCE = 4 * 1024 * 1024
"""Python files beyond this are generated data, not documented code: their spans are not read."""


class Engine:
    def __init__(
        self,
        ruleset: RuleSet,
        known: KnownKeys | None = None,
        *,
        hyperscan: bool = True,
        store: ArtefactStore | None = None,
    ) -> None:
        """``known`` test keys pass the placeholder filter (AWS's documented ``…EXAMPLE`` keys look
        like placeholders), so that they are reported as informational rather than dropped unseen.
        ``hyperscan`` adds the one-pass pattern prefilter when the package is installed; without it
        (or with ``hyperscan=False``) the keyword-only path gives the same findings, slower."""
        self.ruleset = ruleset
        self.known = known or KnownKeys({})
        self._store = store
        self._hyperscan = hyperscan
        self._pattern_rules = {r.id: r for r in ruleset.rules if r.source is not None}
        self._bounds: dict[str, tuple[int, int | None]] = {}
        """Rule id -> (``_reach``, ``_span``), worked out the first time the rule is a candidate:
        parsing 500 patterns again took a tenth of a second at every start, for the few rules a
        scan ever needs."""
        users: dict[bytes, list[str]] = {}
        for rule in ruleset.rules:
            if rule.source is not None or rule.detect_secrets:
                for kw in rule.keywords:
                    users.setdefault(kw, []).append(rule.id)
        self._keywords = KeywordIndex(users)
        self._parser_rules = {r.parser for r in ruleset.rules if r.parser}
        plugins = detect_secrets_plugins() if any(r.detect_secrets for r in ruleset.rules) else {}
        self._ds_rules = [(r, plugins[r.detect_secrets]()) for r in ruleset.rules if r.detect_secrets]
        self._rule_keywords = {r.id: r.keywords for r in ruleset.rules if r.source is not None or r.detect_secrets}
        self._heuristic = frozenset(r.id for r in ruleset.rules if r.heuristic)
        """Rules that guess from a name and a value's looks (``generic.*``), not a provider's format."""
        self._candidate_patterns = {rid: r.source for rid, r in self._pattern_rules.items() if r.source is not None}
        # a plugin rule's candidates: where one of the plugin's own regexes can match (it runs only on
        # its keywords' lines, as on the keyword-only path)
        for rule, plugin in self._ds_rules:
            self._candidate_patterns[rule.id] = bytes_superset([regex.pattern for regex in plugin.denylist])
        self.prefilter: PatternPrefilter | None = None
        self.prefilter = self._prefilter_of(self._candidate_patterns)

    def _prefilter_of(
        self, patterns: Mapping[str, bytes], keywords: Mapping[str, Sequence[bytes]] | None = None
    ) -> PatternPrefilter | None:
        if not self._hyperscan or not patterns:
            return None
        keywords = {**{rid: self._rule_keywords[rid] for rid in patterns if rid in self._rule_keywords}, **(keywords or {})}
        announce = self.prefilter is None or not self.prefilter.compiled  # one announcement a run
        try:
            return PatternPrefilter(patterns, keywords, self._store, announce=announce)
        except ImportError:
            return None

    @functools.cached_property
    def self_identifying(self) -> SelfIdentifying:
        """The rules that search package content by default (``detect.scope``)."""
        return SelfIdentifying.of(self.ruleset, self._store)

    @functools.cached_property
    def _scopes(self) -> dict[RuleScope, tuple[frozenset[str], PatternPrefilter | None]]:
        """Per scope: the rules left out, and the prefilter of the rules in it (its own, smaller
        database for the self-identifying rules: a third of the rules, so a faster pass; with it,
        the literals that start a secret spanning lines, for ``may_self_identify``)."""
        narrow = self.self_identifying.rule_ids
        patterns = {rid: p for rid, p in self._candidate_patterns.items() if rid in narrow}
        leads = self.self_identifying.multiline_leads
        if leads:
            patterns[_MULTILINE_LEADS] = b"|".join(re.escape(lead) for lead in leads)
        return {
            RuleScope.ALL: (frozenset(), self.prefilter),
            RuleScope.PROVIDER: (self._heuristic, self.prefilter),
            RuleScope.SELF_IDENTIFYING: (
                frozenset(self._candidate_patterns) - narrow | {_MULTILINE_LEADS},
                self._prefilter_of(patterns, {_MULTILINE_LEADS: tuple(lead.lower() for lead in leads)}),
            ),
        }

    def prepare_scopes(self) -> None:
        """Build the narrower scopes now: before workers fork, so that each does not load them again."""
        self._scopes  # noqa: B018 - a cached property, built for its side effect

    def with_known(self, known: KnownKeys) -> Engine:
        """This engine with other known test keys: the rules, compiled once, are shared."""
        twin = copy.copy(self)
        twin.known = known
        return twin

    def scan_bytes(
        self, data: bytes, path: str | None = None, *, parse: bool = True, scope: RuleScope = RuleScope.ALL
    ) -> list[Match]:
        """All matches in ``data`` after filtering and overlap resolution, in offset order.

        ``path`` (inside the image) selects path-based filters and, with ``parse`` (the data is the
        whole file, not a window of it), a credential-file parser. ``scope``: which rules run (fewer
        for package content its records vouch for: ``detect.scope``).
        """
        if not data:  # an empty file (images hold many) has nothing to match or parse
            return []
        skip, prefilter = self._scopes[scope] if scope is not RuleScope.ALL else (frozenset(), self.prefilter)
        hits: Mapping[str, Sequence[int]]
        if prefilter is None:
            hits = {r: o for r, o in self._keywords.hits(data).items() if r not in skip}
        else:
            hits = self._candidate_hits(prefilter, data, skip)
        parser = self._parser_for(path) if path is not None and parse else None
        if not hits and parser is None:  # no keyword, no parser: nothing can match (nearly every file)
            return []
        docs = _LazyDocumentation(data if parse and _is_python_source(path) else None)
        matches = list(self._pattern_matches(data, path, hits, docs))
        if self._ds_rules and hits:  # plugins read only the lines that hold a keyword
            matches.extend(self._plugin_matches(data, hits))
        if parser is not None:
            matches.extend(self._parsed_matches(data, parser))
        kept = [
            m if m.context else replace(m, context=assigned_name(data, m.start))
            for m in _resolve_overlaps(matches, self.ruleset)
        ]
        if any(m.rule_id in self._heuristic for m in kept) and (spans := docs.get()) is not None:
            kept = [replace(m, documentation=spans.at(m.start)) if m.rule_id in self._heuristic else m for m in kept]
        return kept

    def may_self_identify(self, data: bytes) -> bool:
        """Whether a self-identifying rule might match in ``data`` (a superset: True when unsure),
        for a file searched with those only; its credential-file parser, if any, is the caller's.
        Also True where a secret spanning lines might start: in a JSON string (a source map's
        sources) its line breaks are written ``\\n``, and the literal it starts with is all that
        is left to know it by."""
        skip, prefilter = self._scopes[RuleScope.SELF_IDENTIFYING]
        if prefilter is None:
            return any(lead in data for lead in self.self_identifying.multiline_leads) or any(
                r not in skip for r in self._keywords.hits(data)
            )
        return prefilter.matches_any(data)

    def parses(self, path: str) -> bool:
        """Whether a credential-file parser reads the whole file at ``path``."""
        return self._parser_for(path) is not None

    def _candidate_hits(self, prefilter: PatternPrefilter, data: bytes, skip: frozenset[str]) -> dict[str, Sequence[int]]:
        """Keyword offsets, as the keyword index finds them, but only for the rules Hyperscan says
        can match."""
        candidates, found = prefilter.scan(data)
        hits: dict[str, Sequence[int]] = {}
        in_pass = prefilter.in_pass
        lowered = b""
        located: dict[bytes, list[int]] = {}
        for rule_id in candidates - skip:
            limit = (WHOLE_BUFFER_HITS if rule_id in self._pattern_rules else 10_000) + 1
            offsets: list[int] = []
            for keyword in self._rule_keywords[rule_id]:
                if keyword in in_pass:
                    offsets.extend(found.get(keyword, ())[:limit])
                    continue
                if keyword not in located:  # rules share keywords: each is looked for once per buffer
                    lowered = lowered or data.lower()
                    located[keyword] = keyword_offsets(lowered, keyword, WHOLE_BUFFER_HITS + 1)
                offsets.extend(located[keyword][:limit])
            if offsets:
                hits[rule_id] = sorted(offsets)
        return hits

    def _pattern_matches(
        self, data: bytes, path: str | None, hits: Mapping[str, Sequence[int]], docs: _LazyDocumentation
    ) -> Iterable[Match]:
        lock_file = path is not None and is_lock_file(path)
        test_fixture = is_test_file(path)
        name = (path or "").rsplit("/", 1)[-1].lower()
        n = len(data)
        for rule_id, offsets in hits.items():
            rule = self._pattern_rules.get(rule_id)
            if rule is None or (lock_file and rule.heuristic):
                continue
            code = bool(rule.quoted_in) and name.endswith(rule.quoted_in)
            assert rule.pattern is not None
            bounds = self._bounds.get(rule_id)
            if bounds is None:
                bounds = self._bounds[rule_id] = (pattern_reach(rule.pattern) + 256, newline_span(rule.pattern))
            reach, span = bounds
            spans = windows(data, offsets, reach) if span is None else line_windows(data, offsets, reach, span)
            for lo, hi in spans:
                for m in rule.pattern.finditer(data, lo, hi):
                    if m.end() == hi and hi < n:  # the window's end may have cut the match short
                        m = rule.pattern.match(data, m.start(), min(n, m.start() + reach)) or m
                    start, end = m.span(1)
                    if start < 0:
                        continue
                    secret = data[start:end].decode("utf-8", "replace")
                    accepted = _accept(rule, secret, data, start, end, test_fixture) and not (
                        code
                        and (
                            is_code_identifier(secret)
                            # docstring text ("Next page token: …") is prose, not an expression
                            or (is_bare_code_value(data, start, end) and not docs.in_docstring(start))
                        )
                    )
                    if not accepted and self.known.lookup(secret) is None:
                        continue
                    yield Match(rule.id, secret, start, end, confidence=rule.confidence)

    def _plugin_matches(self, data: bytes, hits: Mapping[str, Sequence[int]]) -> Iterable[Match]:
        """detect-secrets plugins work line by line; run them only on lines holding a keyword, and
        through ``analyze_string`` (pure regex: its ``analyze_line`` consults global settings and
        may try network verification)."""
        for rule, plugin in self._ds_rules:
            lines = {data.rfind(b"\n", 0, pos) + 1 for pos in hits.get(rule.id, ())[:10_000]}
            for start in sorted(lines):
                end = data.find(b"\n", start)
                end = len(data) if end < 0 else end
                if end - start > MAX_LINE_FOR_FILTERS:
                    continue
                line = data[start:end].decode("utf-8", "replace")
                for secret in plugin.analyze_string(line):
                    offset = data.find(secret.encode(), start, end)
                    if offset >= 0 and _accept(rule, secret, data, offset, offset + len(secret.encode())):
                        yield Match(rule.id, secret, offset, offset + len(secret.encode()), confidence=rule.confidence)

    def _parser_for(self, path: str) -> str | None:
        """The credential-file parser to run on the whole file at ``path``, if a rule uses it."""
        name = credfiles.parser_name_for(path)
        return name if name in self._parser_rules else None

    def _parsed_matches(self, data: bytes, parser: str) -> Iterable[Match]:
        for match in credfiles.parse(parser, data):
            rule = self.ruleset.by_id.get(match.rule_id)
            if rule is not None and (not is_placeholder(match.secret) or self.known.lookup(match.secret)):
                yield replace(match, confidence=match.confidence if match.confidence != "high" else rule.confidence)


def assigned_name(data: bytes, start: int) -> str | None:
    """The name a secret is assigned to on its line (``DB_PASSWORD=…``, ``"token": "…"``,
    ``ENV API_KEY …``, ``--password=…``): what reports and migration plans call it."""
    assignment = assignment_before(data, start)
    return assignment.name if assignment else None


def _is_python_source(path: str | None) -> bool:
    return path is not None and path.endswith(PYTHON_SOURCE)


class _LazyDocumentation:
    """A Python file's documentation spans, read the first time a match asks (most files have no
    heuristic match, and most of those that do need no answer); None for any other data."""

    def __init__(self, data: bytes | None) -> None:
        self._data = data if data is not None and len(data) <= MAX_PYTHON_SOURCE else None
        self._spans: DocumentationSpans | None = None

    def get(self) -> DocumentationSpans | None:
        if self._spans is None and self._data is not None:
            self._spans = documentation_spans(self._data)
        return self._spans

    def in_docstring(self, offset: int) -> bool:
        spans = self.get()
        return spans is not None and spans.at(offset) is Documentation.DOCSTRING


def _accept(rule: Rule, secret: str, data: bytes, start: int, end: int, test_fixture: bool = False) -> bool:
    if rule.min_entropy and shannon_entropy(secret) < rule.min_entropy:
        return False
    if "\n" not in secret and is_placeholder(secret, strict=rule.heuristic, test_fixture=test_fixture):
        return False
    if rule.heuristic:
        line_start = data.rfind(b"\n", max(0, start - MAX_LINE_FOR_FILTERS), start) + 1
        line_end = data.find(b"\n", end, end + MAX_LINE_FOR_FILTERS)
        line = data[line_start : line_end if line_end >= 0 else end].decode("utf-8", "replace")
        if is_heuristic_non_secret(secret, line, assigned_name(data, start)):
            return False
    return True


def _resolve_overlaps(matches: Sequence[Match], ruleset: RuleSet) -> list[Match]:
    """Where two matches overlap, keep the more confident one (a provider rule beats a generic
    name=value rule), then a parsed credential file over a regex, then the longer one, then the
    rule listed first (so the result never depends on where keywords happen to occur)."""

    def rank(m: Match) -> tuple[int, int, int, int]:
        structured = ruleset.by_id[m.rule_id].parser is not None
        return (CONFIDENCE_RANK.get(m.confidence, 0), structured, m.end - m.start, -order[m.rule_id])

    order = ruleset.order
    ranked = sorted(matches, key=rank, reverse=True)
    if len(ranked) <= _FEW_MATCHES:
        kept: list[Match] = []
        for m in ranked:
            if all(m.end <= k.start or m.start >= k.end for k in kept):
                kept.append(m)
        return sorted(kept, key=lambda m: m.start)
    return sorted(_first_disjoint(ranked), key=lambda m: m.start)


_FEW_MATCHES = 16


def _first_disjoint(ranked: Sequence[Match]) -> list[Match]:
    """The matches, best first, that overlap none kept before them: the rule above, in time
    linear in the bytes the matches span (a window of 100,000 tokens is 100,000 matches; comparing
    each with every kept one was quadratic). Exact also for empty matches, which overlap only a
    match that strictly contains their position."""
    size = max(m.end for m in ranked) + 1
    covered = bytearray(size)  # inside a kept match
    starts = bytearray(size)  # first byte of a kept match
    points = bytearray(size)  # where an empty kept match sits
    kept = []
    for m in ranked:
        s, e = m.start, m.end
        if e > s:
            if covered.find(1, s, e) >= 0 or points.find(1, s + 1, e) >= 0:
                continue
            covered[s:e] = b"\x01" * (e - s)
            starts[s] = 1
        else:
            if s > 0 and covered[s - 1] and covered[s] and not starts[s]:
                continue
            points[s] = 1
        kept.append(m)
    return kept
