"""Turn bytes into matches: keyword prefilter, rule regexes, credential-file parsers, filters.

The engine is stateless after construction and safe to share: it is built once per run from the
rule set and handed every chunk of every file, config entry and history line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from secretscan.detect import credfiles
from secretscan.detect.filters import is_heuristic_non_secret, is_lock_file, is_placeholder, shannon_entropy
from secretscan.detect.match import Match
from secretscan.detect.rules import Rule, RuleSet

_CONFIDENCE_RANK = {"high": 2, "medium": 1, "low": 0}
MAX_LINE_FOR_FILTERS = 4096


class Engine:
    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._pattern_rules = [r for r in ruleset.rules if r.pattern is not None]
        self._keywords: dict[bytes, list[Rule]] = {}
        for rule in self._pattern_rules:
            for kw in rule.keywords:
                self._keywords.setdefault(kw, []).append(rule)
        self._parser_rules = {r.parser for r in ruleset.rules if r.parser}

    def scan_bytes(self, data: bytes, path: str | None = None, *, parse: bool = True) -> list[Match]:
        """All matches in ``data`` after filtering and overlap resolution, in offset order.

        ``path`` (inside the image) selects path-based filters and, with ``parse`` (the data is the
        whole file, not a window of it), a credential-file parser.
        """
        matches = list(self._pattern_matches(data, path))
        if path is not None and parse:
            matches.extend(self._parsed_matches(data, path))
        return _resolve_overlaps(matches, self.ruleset)

    def _candidate_rules(self, data: bytes) -> list[Rule]:
        lowered = data.lower()
        seen: dict[str, Rule] = {}
        for kw, rules in self._keywords.items():
            if kw in lowered:
                for rule in rules:
                    seen.setdefault(rule.id, rule)
        return list(seen.values())

    def _pattern_matches(self, data: bytes, path: str | None) -> Iterable[Match]:
        lock_file = path is not None and is_lock_file(path)
        for rule in self._candidate_rules(data):
            if lock_file and "heuristic" in rule.filters:
                continue
            assert rule.pattern is not None
            for m in rule.pattern.finditer(data):
                start, end = m.span(1)
                if start < 0:
                    continue
                secret = data[start:end].decode("utf-8", "replace")
                if not _accept(rule, secret, data, start, end):
                    continue
                yield Match(rule.id, secret, start, end, confidence=rule.confidence)

    def _parsed_matches(self, data: bytes, path: str) -> Iterable[Match]:
        name = credfiles.parser_for(path)
        if name is None or name not in self._parser_rules:
            return
        for match in credfiles.parse(name, data):
            rule = self.ruleset.by_id.get(match.rule_id)
            if rule is not None and not is_placeholder(match.secret):
                yield replace(match, confidence=match.confidence if match.confidence != "high" else rule.confidence)


def _accept(rule: Rule, secret: str, data: bytes, start: int, end: int) -> bool:
    if rule.min_entropy and shannon_entropy(secret) < rule.min_entropy:
        return False
    if "\n" not in secret and is_placeholder(secret):
        return False
    if "heuristic" in rule.filters:
        line_start = data.rfind(b"\n", max(0, start - MAX_LINE_FOR_FILTERS), start) + 1
        line_end = data.find(b"\n", end, end + MAX_LINE_FOR_FILTERS)
        line = data[line_start : line_end if line_end >= 0 else end].decode("utf-8", "replace")
        if is_heuristic_non_secret(secret, line):
            return False
    return True


def _resolve_overlaps(matches: Sequence[Match], ruleset: RuleSet) -> list[Match]:
    """Where two matches overlap, keep the more confident one (a provider rule or a parsed
    credential file beats a generic name=value rule), then the longer one."""
    def rank(m: Match) -> tuple[int, int]:
        return (_CONFIDENCE_RANK.get(m.confidence, 0), m.end - m.start)

    kept: list[Match] = []
    for m in sorted(matches, key=rank, reverse=True):
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)
