"""Run every rule against its own examples: the same code backs ``secretscan rules check`` and the tests.

Examples go through the whole engine (prefilter, regex, entropy, filters, overlap resolution), so a
passing check proves what users will see, not just that a bare regex matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secretscan.detect.engine import Engine
from secretscan.detect.prefilter import default_cache_dir
from secretscan.detect.rules import Rule, RuleSet, example_cases


@dataclass(frozen=True, slots=True)
class CheckFailure:
    rule_id: str
    origin: str
    problem: str


def example_input(rule: Rule, example: Any) -> tuple[bytes, str | None]:
    """Pattern rules take plain strings; parser rules take ``{path, content}`` mappings."""
    if isinstance(example, dict):
        return str(example.get("content", "")).encode(), str(example.get("path", ""))
    return str(example).encode(), None


def check_example(engine: Engine, rule: Rule, example: Any, should_match: bool) -> str | None:
    """None when the example behaves as declared, else a description of the problem."""
    if rule.parser and not isinstance(example, dict):
        return f"parser rule example must be a mapping with path and content, got {example!r:.60}"
    data, path = example_input(rule, example)
    if rule.pattern is not None and should_match and not any(k in data.lower() for k in rule.keywords):
        return f"example contains none of the keywords, the prefilter would skip it: {example!r:.80}"
    hit = any(m.rule_id == rule.id for m in engine.scan_bytes(data, path))
    if hit != should_match:
        verb = "does not match" if should_match else "matches"
        return f"{'example' if should_match else 'negative example'} {verb}: {str(example)[:80]!r}"
    return None


def check_rules(ruleset: RuleSet, *, hyperscan: bool = True) -> list[CheckFailure]:
    engine = Engine(ruleset, hyperscan=hyperscan, cache_dir=default_cache_dir())
    failures = []
    for rule, example, should_match in example_cases(ruleset):
        problem = check_example(engine, rule, example, should_match)
        if problem:
            failures.append(CheckFailure(rule.id, rule.origin, problem))
    return failures
