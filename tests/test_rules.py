"""Every rule in patterns/ against its own examples and negative examples, through the whole engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretscan.detect.checks import check_example
from secretscan.detect.engine import Engine
from secretscan.detect.rules import example_cases, load_rules

PATTERNS = Path(__file__).resolve().parent.parent / "patterns"
RULESET = load_rules([PATTERNS])
ENGINE = Engine(RULESET)  # with the Hyperscan prefilter when installed
SLOW_ENGINE = Engine(RULESET, hyperscan=False)  # keyword prefilter only
CASES = list(example_cases(RULESET))


def _case_id(case: tuple) -> str:
    rule, example, should = case
    return f"{rule.id}-{'pos' if should else 'neg'}-{abs(hash(str(example))) % 10**6}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_rule_example(case: tuple) -> None:
    rule, example, should_match = case
    assert check_example(ENGINE, rule, example, should_match) is None
    assert check_example(SLOW_ENGINE, rule, example, should_match) is None


def test_rule_pack_is_big_enough() -> None:
    credential_types = {r.id for r in RULESET.rules}
    assert len(credential_types) >= 60, f"only {len(credential_types)} rules"


def test_every_rule_has_positive_and_negative_examples() -> None:
    for rule in RULESET.rules:
        assert rule.examples and rule.negative_examples, rule.id
