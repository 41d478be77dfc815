"""Rules are data: load ``patterns/*.yaml``, validate them, and check each against its examples.

A rule either has a ``pattern`` (a regex with exactly one capture group: the secret) or names a
``parser`` from :mod:`secretscan.detect.credfiles` (structured credential files). Validation is
strict and fails closed: a rule without examples and negative examples is an error, because an
untested rule is how scanners drift into false positives and misses.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from secretscan.detect.artefacts import ArtefactStore
from secretscan.errors import RuleError
from secretscan.models import Severity

BUILTIN_RULES_DIR = Path(__file__).resolve().parent.parent / "data" / "patterns"
"""Installed copy of the repository's ``patterns/`` (a symlink in a source checkout)."""

CONFIDENCES = ("high", "medium", "low")
CONFIDENCE_RANK = {"high": 2, "medium": 1, "low": 0}
"""Which of two overlapping matches wins, and which rule names a secret found by several."""
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_KNOWN_KEYS = {
    "id",
    "name",
    "pattern",
    "parser",
    "keywords",
    "severity",
    "confidence",
    "min_entropy",
    "examples",
    "negative_examples",
    "references",
    "remediation",
    "filters",
    "description",
    "detect_secrets",
    "verifier",
    "quoted_in",
    "self_identifying",
}


class RuleFilter(StrEnum):
    PLACEHOLDER = "placeholder"
    """Drop obvious placeholders (always on)."""
    HEURISTIC = "heuristic"
    """Also detect-secrets' heuristic filters (templated values, UUIDs, sequential strings,
    indirect references): for the generic rules that guess from a name and a value's looks, whose
    pattern alone cannot tell a secret from code."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    severity: Severity
    confidence: str
    keywords: tuple[bytes, ...]
    """Lower-case byte strings; the rule runs only on data containing one of them."""
    source: bytes | None
    """The regex (exactly one capture group: the secret), as text; compiled as ``pattern``."""
    parser: str | None
    detect_secrets: str | None
    """Class name of a detect-secrets plugin run on the lines that hold a keyword (reused, not rewritten)."""
    verifier: str | None
    """Name of the ``--verify`` check for this credential type (``secretscan.verify``)."""
    min_entropy: float
    filters: frozenset[RuleFilter]
    remediation: str
    examples: tuple[Any, ...]
    negative_examples: tuple[Any, ...]
    references: tuple[str, ...] = ()
    origin: str = ""
    """``patterns/aws.yaml#aws.access-key-id``, for error messages."""
    quoted_in: tuple[str, ...] = ()
    """File name endings (``.js``, ``.py``) of source code, where a hardcoded value is a string
    literal: there a bare ``NAME = value`` is an expression (``token = this.getToken()``)."""
    self_identifying: bool | None = None
    """Whether the secret names its own kind, so that the rule searches package content by
    default (``detect.scope``); None: read from the regex (a fixed prefix such as ``ghp_``)."""
    compiled: re.Pattern[bytes] | None = field(default=None, repr=False, compare=False)
    """``pattern`` once compiled (given at load when the rule was validated there)."""

    @property
    def pattern(self) -> re.Pattern[bytes] | None:
        """The compiled regex, compiled at its first use when not at load (``load_rules``'s
        ``trusted``): most of 500 rules never meet a keyword in a given image, and compiling them
        all took a tenth of a second of every start."""
        if self.compiled is None and self.source is not None:
            object.__setattr__(self, "compiled", re.compile(self.source))
        return self.compiled

    @property
    def heuristic(self) -> bool:
        """A rule that guesses from a name and a value's looks (``generic.*``), not a provider's format."""
        return RuleFilter.HEURISTIC in self.filters


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    digest: str
    """Hash over the rule files' contents: names the rule-pack version in reports and caches."""
    by_id: Mapping[str, Rule] = field(default_factory=dict)
    order: Mapping[str, int] = field(default_factory=dict)
    """Rule id -> position in the loaded pack: the last tie-breaker between overlapping matches."""

    def __len__(self) -> int:
        return len(self.rules)


def load_rules(
    dirs: Sequence[Path],
    verifiers: Collection[str] = (),
    trusted: Collection[Path] = (),
    store: ArtefactStore | None = None,
) -> RuleSet:
    """Load every ``*.yaml`` rule file under ``dirs``. Raises RuleError on the first invalid rule.
    ``verifiers``: the names a rule's ``verifier:`` may take (``verify.VERIFIER_NAMES``: the
    checks live in ``verify``, above this module); empty, names are not checked. ``trusted``:
    directories among ``dirs`` whose regexes are known to compile and whose detect-secrets plugins
    exist (the built-in rules, checked by every test run and by the build of their shipped
    prefilter): compiled at first use, and detect-secrets imported only when a scan needs it.
    Every other rule is checked here, so a user's rule fails before any scan. ``store``: where
    the parsed files of ``trusted`` directories are kept (``_parsed``)."""
    rules: list[Rule] = []
    hasher = hashlib.sha256()
    for directory in dirs:
        if not directory.is_dir():
            raise RuleError(f"rule directory {directory} does not exist")
        files = [(path.name, path.read_bytes()) for path in sorted(directory.glob("*.yaml"))]
        kept = store if directory in trusted else None  # a user's own files are not copied anywhere
        for (name, text), doc in zip(files, _parsed(files, kept), strict=True):
            if not isinstance(doc, dict) or "rules" not in doc:
                continue  # data files that live beside the rules (known-test-keys.yaml)
            hasher.update(name.encode() + b"\0" + text)
            for raw in doc["rules"] or []:
                rules.append(_parse_rule(raw, name, verifiers, validate=directory not in trusted))
    if not rules:
        raise RuleError("no rules loaded: an empty rule set would report every image as clean")
    by_id: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in by_id:
            raise RuleError(f"duplicate rule id {rule.id!r} in {rule.origin} and {by_id[rule.id].origin}")
        by_id[rule.id] = rule
    order = {rule.id: i for i, rule in enumerate(rules)}
    return RuleSet(rules=tuple(rules), digest="sha256:" + hasher.hexdigest(), by_id=by_id, order=order)


def _parsed(files: Sequence[tuple[str, bytes]], store: ArtefactStore | None) -> list[Any]:
    """Each (name, text) file's YAML document. Parsing the built-in pack's 38 files takes 40 ms of
    every start, on the way to the first scan; the documents are kept as JSON (a fiftieth of that to
    read) in ``store`` under a digest of the files and PyYAML's version, when JSON holds them as
    they are."""
    hasher = hashlib.sha256(yaml.__version__.encode())
    for name, text in files:
        hasher.update(b"%d:%s:%d:" % (len(name), name.encode(), len(text)) + text)
    key = f"rulefiles-{hasher.hexdigest()[:32]}.json"
    for docs in store.found_json(key) if store else ():
        if isinstance(docs, list) and len(docs) == len(files):
            return docs
    docs = []
    for name, text in files:
        try:
            docs.append(load_yaml(text))
        except yaml.YAMLError as exc:
            raise RuleError(f"{name}: not valid YAML: {exc}".splitlines()[0]) from None
    if store:
        try:
            kept = json.dumps(docs, ensure_ascii=False)
        except (TypeError, ValueError):  # a value JSON has no type for (a date, a set)
            return docs
        if json.loads(kept) == docs:
            store.write(key, kept.encode("utf-8"))
    return docs


def _parse_rule(raw: Any, filename: str, verifiers: Collection[str] = (), *, validate: bool = True) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{filename}: each rule must be a mapping, got {type(raw).__name__}")
    rule_id = str(raw.get("id", ""))
    origin = f"{filename}#{rule_id or '?'}"

    def bad(msg: str) -> RuleError:
        return RuleError(f"rule {origin}: {msg}")

    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise bad(f"unknown keys {sorted(unknown)}")
    if not _ID.match(rule_id):
        raise bad("id must be lower-case letters, digits, dots and dashes")
    for key in ("name", "severity"):
        if not raw.get(key):
            raise bad(f"missing {key!r}")
    try:
        severity = Severity.parse(str(raw["severity"]))
    except ValueError as exc:
        raise bad(str(exc)) from None
    confidence = str(raw.get("confidence", "high"))
    if confidence not in CONFIDENCES:
        raise bad(f"confidence must be one of {CONFIDENCES}")
    if sum(bool(raw.get(k)) for k in ("pattern", "parser", "detect_secrets")) != 1:
        raise bad("needs exactly one of 'pattern', 'parser' or 'detect_secrets'")
    if validate and raw.get("detect_secrets") and str(raw["detect_secrets"]) not in detect_secrets_plugins():
        raise bad(f"unknown detect-secrets plugin {raw['detect_secrets']!r}")
    source = pattern = None
    if raw.get("pattern"):
        # a list of parts is joined: rules share a part through a YAML anchor (&value / *value)
        parts = raw["pattern"] if isinstance(raw["pattern"], list) else [raw["pattern"]]
        source = "".join(str(part) for part in parts).encode()
        if validate:
            try:
                pattern = re.compile(source)
            except re.error as exc:
                raise bad(f"pattern does not compile: {exc}") from None
            if pattern.groups != 1:
                raise bad(f"pattern must have exactly one capture group (the secret), has {pattern.groups}")
    keywords = tuple(str(k).lower().encode() for k in raw.get("keywords") or ())
    if (source is not None or raw.get("detect_secrets")) and not keywords:
        raise bad("needs keywords (the prefilter runs a rule only where one occurs)")
    examples = tuple(raw.get("examples") or ())
    negatives = tuple(raw.get("negative_examples") or ())
    if not examples or not negatives:
        raise bad("needs at least one example and one negative example")
    verifier = str(raw["verifier"]) if raw.get("verifier") else None
    if verifier is not None and verifiers and verifier not in verifiers:
        raise bad(f"unknown verifier {verifier!r} (known: {', '.join(sorted(verifiers))})")
    names = {str(f) for f in raw.get("filters") or ()}
    known_filters = [f.value for f in RuleFilter]
    if names - set(known_filters):
        raise bad(f"unknown filters {sorted(names - set(known_filters))}; known: {tuple(known_filters)}")
    filters = frozenset(RuleFilter(f) for f in names)
    self_identifying = raw.get("self_identifying")
    if self_identifying is not None and not isinstance(self_identifying, bool):
        raise bad("self_identifying must be true or false")
    return Rule(
        id=rule_id,
        name=str(raw["name"]),
        severity=severity,
        confidence=confidence,
        keywords=keywords,
        source=source,
        parser=str(raw["parser"]) if raw.get("parser") else None,
        detect_secrets=str(raw["detect_secrets"]) if raw.get("detect_secrets") else None,
        verifier=verifier,
        min_entropy=float(raw.get("min_entropy", 0.0)),
        filters=filters,
        remediation=str(raw.get("remediation") or ""),
        examples=examples,
        negative_examples=negatives,
        references=tuple(str(r) for r in raw.get("references") or ()),
        origin=origin,
        quoted_in=tuple(str(e).lower() for e in raw.get("quoted_in") or ()),
        self_identifying=self_identifying,
        compiled=pattern,
    )


def load_yaml(text: bytes | str) -> Any:
    """Rule and config files (the user's own, never image content): libyaml's safe loader when
    present, a few times faster than the pure-Python one, same result."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loaders only


def detect_secrets_plugins() -> dict[str, type]:
    """detect-secrets' regex plugins by class name (an explicit allowlist of its package, never
    anything named by a file path)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    classes: Iterable[type] = get_mapping_from_secret_type_to_class().values()
    return {c.__name__: c for c in classes if issubclass(c, RegexBasedDetector)}


def example_cases(ruleset: RuleSet) -> Iterable[tuple[Rule, Any, bool]]:
    """(rule, example, should_match) for every example and negative example."""
    for rule in ruleset.rules:
        for ex in rule.examples:
            yield rule, ex, True
        for ex in rule.negative_examples:
            yield rule, ex, False
