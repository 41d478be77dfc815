"""Run every rule against its own examples: the same code backs ``secretscan rules check`` and the tests.

Examples go through the whole engine (prefilter, regex, entropy, filters, overlap resolution), so a
passing check proves what users will see, not just that a bare regex matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from secretscan.detect.artefacts import ArtefactStore, default_cache_dir
from secretscan.detect.engine import Engine
from secretscan.detect.knownkeys import KnownKeys, known_key_fingerprint
from secretscan.detect.rules import Rule, RuleSet, example_cases
from secretscan.version import __version__


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


def with_rule_examples(
    engine: Engine, ruleset: RuleSet, rule_dirs: Sequence[Path] = (), store: ArtefactStore | None = None
) -> KnownKeys:
    """The engine's known test keys plus every secret-shaped value published in the rule pack.

    The rule files (examples, negative examples, even a regex that looks like the key it
    describes) ship with secretscan, so an image that carries secretscan, or a checkout of it,
    reports those values as known test keys, not as leaks. The rule files are scanned whole, as a
    scan of such an image sees them, and each example on its own, as other copies show it.
    ``store`` keeps them between runs (default: the user's cache directory); its key is the rule
    files' names and bytes, not where they are, so a wheel's shipped copy serves every install."""
    store = store or ArtefactStore(default_cache_dir())
    files = hashlib.sha256()
    for directory in rule_dirs:
        for rule_file in sorted(directory.glob("*.yaml")):
            files.update(
                b"%d:%s%s"
                % (len(rule_file.name), rule_file.name.encode(), hashlib.sha256(rule_file.read_bytes()).digest())
            )
        files.update(b"/")
    key = hashlib.sha256(
        json.dumps([__version__, ruleset.digest, files.hexdigest(), sorted(engine.known.sources)]).encode()
    ).hexdigest()[:32]
    name = f"published-{key}.json"
    published = _PUBLISHED.get(key)
    if published is None:
        published = _load_published(store, name)
        if published is None:
            published = _published_values(engine, ruleset, rule_dirs)
            store.write(name, json.dumps(published, sort_keys=True).encode())
        _PUBLISHED[key] = published
    return replace(engine.known, sources={**published, **engine.known.sources})


_PUBLISHED: dict[str, dict[str, str]] = {}
"""A memo; kept in the artefact store too (``published-KEY.json``), since computing the values
takes over half a second. The file holds fingerprints of public example values only."""


def _load_published(store: ArtefactStore, name: str) -> dict[str, str] | None:
    for doc in store.found_json(name):
        if isinstance(doc, dict):
            return {str(k): str(v) for k, v in doc.items()}
    return None


def _published_values(engine: Engine, ruleset: RuleSet, rule_dirs: Sequence[Path]) -> dict[str, str]:
    sources: dict[str, str] = {}
    for directory in rule_dirs:
        for rule_file in sorted(directory.glob("*.yaml")):
            for m in engine.scan_bytes(rule_file.read_bytes(), rule_file.name):
                sources.setdefault(known_key_fingerprint(m.secret), f"secretscan rule file ({rule_file.name})")
    published: list[tuple[Rule, bytes, str | None]] = [
        (rule, *example_input(rule, example))
        for rule, example, _ in example_cases(ruleset)  # negative examples too: any value in them is published
    ]
    published += [(rule, rule.source, None) for rule in ruleset.rules if rule.source is not None]
    for rule, data, name in published:  # (a rule's own regex can look like the key it describes)
        for m in engine.scan_bytes(data, name):
            sources.setdefault(known_key_fingerprint(m.secret), f"secretscan rule example ({rule.id})")
    return sources


def check_example(engine: Engine, rule: Rule, example: Any, should_match: bool) -> str | None:
    """None when the example behaves as declared, else a description of the problem."""
    if rule.parser and not isinstance(example, dict):
        return f"parser rule example must be a mapping with path and content, got {example!r:.60}"
    data, path = example_input(rule, example)
    if rule.source is not None and should_match and not any(k in data.lower() for k in rule.keywords):
        return f"example contains none of the keywords, the prefilter would skip it: {example!r:.80}"
    hit = any(m.rule_id == rule.id for m in engine.scan_bytes(data, path))
    if hit != should_match:
        verb = "does not match" if should_match else "matches"
        return f"{'example' if should_match else 'negative example'} {verb}: {str(example)[:80]!r}"
    return None


MAX_REGEX_SECONDS = 2.0
"""Per rule, for all its adversarial inputs together. A linear regex needs a few milliseconds; a
catastrophically backtracking one needs hours, and a hostile file could hand it exactly that input."""


def adversarial_inputs(rule: Rule, size: int = 16 * 1024) -> list[bytes]:
    """Inputs that make backtracking regexes explode: a keyword, then long runs of what secret
    and separator classes accept, ending in a byte that makes the match fail late."""
    keyword = rule.keywords[0] if rule.keywords else b"key"
    runs = (b"a", b"A1", b"a-", b"a_b.", b" ", b"=", b"\\", b"%2F", b"aa:", b"/a")
    return [keyword + sep + run * (size // len(run)) + b"\0" for run in runs for sep in (b"", b"=", b'="', b": ")]


def slow_regex_rules(rules: Sequence[Rule], budget: float = MAX_REGEX_SECONDS) -> list[Rule]:
    """The rules whose regex does not finish its adversarial inputs within ``budget`` seconds.

    A regex that backtracks catastrophically cannot be interrupted in-process, so the inputs run
    in a forked child that announces each rule it starts; the parent kills a child that stays on
    one rule too long, notes the rule, and goes on with a fresh child from the next one."""
    pending = [r for r in rules if r.source is not None]
    if not hasattr(os, "fork"):  # pragma: no cover - POSIX only
        return []
    slow: list[Rule] = []
    start = 0
    while start < len(pending):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(read_fd)
            for j in range(start, len(pending)):
                os.write(write_fd, struct.pack("!i", j))
                pattern = pending[j].pattern
                assert pattern is not None
                for data in adversarial_inputs(pending[j]):
                    pattern.search(data)
            os.write(write_fd, struct.pack("!i", -1))
            os._exit(0)
        os.close(write_fd)
        current = start
        while True:
            ready, _, _ = select.select([read_fd], [], [], budget)
            message = os.read(read_fd, 4) if ready else b""
            if len(message) != 4:  # too slow (or the child died) on the current rule
                _stop(pid)
                slow.append(pending[current])
                start = current + 1
                break
            (index,) = struct.unpack("!i", message)
            if index < 0:
                os.waitpid(pid, 0)
                start = len(pending)
                break
            current = index
        os.close(read_fd)
    return slow


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def check_rules(ruleset: RuleSet, *, hyperscan: bool = True) -> list[CheckFailure]:
    engine = Engine(ruleset, hyperscan=hyperscan, store=ArtefactStore(default_cache_dir()))
    failures = []
    for rule, example, should_match in example_cases(ruleset):
        problem = check_example(engine, rule, example, should_match)
        if problem:
            failures.append(CheckFailure(rule.id, rule.origin, problem))
    for rule in slow_regex_rules(ruleset.rules):
        failures.append(
            CheckFailure(
                rule.id,
                rule.origin,
                f"regex needs over {MAX_REGEX_SECONDS:.0f} s on 16 KiB adversarial inputs: it backtracks "
                "catastrophically, and a hostile file could stall the scan with such input",
            )
        )
    return failures
