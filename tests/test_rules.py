"""Every rule in patterns/ against its own examples and negative examples, through the whole engine."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
import zlib
from pathlib import Path

import pytest

from secretscan.detect.checks import check_example
from secretscan.detect.engine import Engine
from secretscan.detect.prefilter import relax_repeats
from secretscan.detect.rules import example_cases, load_rules

PATTERNS = Path(__file__).resolve().parent.parent / "patterns"
RULESET = load_rules([PATTERNS])
ENGINE = Engine(RULESET)  # with the Hyperscan prefilter when installed
SLOW_ENGINE = Engine(RULESET, hyperscan=False)  # keyword prefilter only
CASES = list(example_cases(RULESET))


def _case_id(case: tuple) -> str:
    rule, example, should = case
    return f"{rule.id}-{'pos' if should else 'neg'}-{zlib.crc32(str(example).encode()) % 10**6}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_rule_example(case: tuple) -> None:
    rule, example, should_match = case
    assert check_example(ENGINE, rule, example, should_match) is None
    assert check_example(SLOW_ENGINE, rule, example, should_match) is None


def test_rule_pack_is_big_enough() -> None:
    credential_types = {r.id for r in RULESET.rules}
    assert len(credential_types) >= 450, f"only {len(credential_types)} rules"


def test_every_rule_states_where_its_format_comes_from() -> None:
    """A rule's shape is taken from its provider's documentation; the YAML says which page."""
    unsourced = [r.id for r in RULESET.rules if not r.references]
    assert unsourced == []
    for rule in RULESET.rules:
        assert all(ref.startswith("https://") for ref in rule.references), rule.id


def _benign_corpus() -> bytes:
    """Text every image is full of and no rule may find: digests, UUIDs, base64 and paths (fixed
    seed, so the test is deterministic)."""
    rng = random.Random(17)
    words = ["usr", "lib", "share", "python3", "site-packages", "node_modules", "dist", "src", "build", "cache", "docs"]
    lines = []
    for _ in range(200):
        b = rng.randbytes(32)
        lines += [
            hashlib.sha256(b).hexdigest(),
            hashlib.sha1(b).hexdigest(),
            hashlib.md5(b).hexdigest(),
            hashlib.sha512(b).hexdigest(),
            str(uuid.UUID(bytes=rng.randbytes(16), version=4)),
            base64.b64encode(rng.randbytes(57)).decode(),
            base64.urlsafe_b64encode(rng.randbytes(48)).decode().rstrip("="),
            "/" + "/".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + "/" + "_".join(rng.sample(words, 3)),
        ]
    return "\n".join(lines).encode()


def test_no_rule_is_a_prefilter_candidate_on_digests_uuids_base64_or_paths() -> None:
    """Hyperscan's prefilter drops lookarounds. A rule whose only literal sits in one (``\\b(?=ATTA)``
    in front of ``[a-f0-9]{64}``) becomes a run of character classes that digests, base64 and paths
    satisfy everywhere: the prefilter passes it on nearly every buffer and the pack scans several
    times slower. Each rule's prefilter form must need something these lines lack."""
    hyperscan = pytest.importorskip("hyperscan", reason="the Hyperscan prefilter is not installed")
    corpus = _benign_corpus()
    flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    candidates: list[str] = []
    for rule in RULESET.rules:
        if rule.pattern is None:
            continue
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[relax_repeats(rule.pattern.pattern)], ids=[0], elements=1, flags=[flags])
        db.scan(corpus, match_event_handler=_note_candidate, context=(candidates, rule.id))
    assert candidates == []


def _note_candidate(_id: int, _start: int, _end: int, _flags: int, context: tuple[list[str], str]) -> None:
    found, rule_id = context
    found.append(rule_id)


KEYWORDLESS_CONTEXTS = ("cli.", "http.basic-auth", "url.connection-string", "url.mysql-dsn", "php.", "wordpress.")
KEYWORDLESS_RULES = [
    r
    for r in RULESET.rules
    if r.pattern is not None and (r.id.startswith(KEYWORDLESS_CONTEXTS) or r.id.endswith("-client"))
]
STAND_INS = [
    "$DB_PASSWORD",
    "${DB_PASSWORD}",
    "<password>",
    "********",
    "xxxxxxxx",
    "%s",
    "{password}",
    "$(cat /run/secrets/pw)",
]


@pytest.mark.parametrize("rule", KEYWORDLESS_RULES, ids=[r.id for r in KEYWORDLESS_RULES])
def test_keywordless_contexts_reject_variable_references_and_placeholders(rule) -> None:
    """Issue 17, class 1: where the context (a client call, a command-line option, define(), a
    connection string) stands in for a variable name, what stands in for the value is not a
    secret: each rule's own examples, with the secret replaced by a reference or a placeholder."""
    for example in rule.examples:
        data = (example["content"] if isinstance(example, dict) else example).encode()
        path = example.get("path") if isinstance(example, dict) else None
        secrets_found = [m.secret for m in ENGINE.scan_bytes(data, path) if m.rule_id == rule.id]
        assert secrets_found, f"{rule.id}: example not found: {example!r:.80}"
        for stand_in in STAND_INS:
            replaced = data
            for secret in secrets_found:
                replaced = replaced.replace(secret.encode(), stand_in.encode())
            assert not [m for m in ENGINE.scan_bytes(replaced, path) if m.rule_id == rule.id], (rule.id, stand_in)


def test_the_built_in_rule_files_kept_parsed_give_the_same_rules_and_a_damaged_copy_is_not_used(tmp_path: Path) -> None:
    """The parsed rule files are kept (JSON, read in a fraction of YAML's time) for the trusted
    built-in directory only; what is read back is the rule set YAML gives, and a damaged or
    foreign copy is parsed again, never trusted."""
    from secretscan.detect.artefacts import ArtefactStore

    store = ArtefactStore(tmp_path / "cache", shipped_dir=None)
    first = load_rules([PATTERNS], trusted=(PATTERNS,), store=store)
    [kept] = list((tmp_path / "cache").glob("rulefiles-*.json"))
    again = load_rules([PATTERNS], trusted=(PATTERNS,), store=store)
    assert again.digest == first.digest == RULESET.digest
    assert [(r.id, r.source, r.keywords, r.examples) for r in again.rules] == [
        (r.id, r.source, r.keywords, r.examples) for r in RULESET.rules
    ]
    kept.write_text('{"not": "a list of documents"}')
    assert load_rules([PATTERNS], trusted=(PATTERNS,), store=store).by_id.keys() == RULESET.by_id.keys()
    own = tmp_path / "own"
    own.mkdir()
    (own / "team.yaml").write_text(
        "rules:\n  - id: team.token\n    name: T\n    pattern: '(tmtok_[a-z0-9]{24})'\n    keywords: [tmtok_]\n"
        "    severity: high\n    examples: ['tmtok_0123456789abcdefghijklmn']\n    negative_examples: ['tmtok_x']\n"
    )
    load_rules([PATTERNS, own], trusted=(PATTERNS,), store=store)
    assert not any("tmtok_0123456789" in p.read_text() for p in (tmp_path / "cache").iterdir())
