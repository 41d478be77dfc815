"""Which rules search what: every rule for an application's own files, fewer for package content.

Files that package records vouch for (pristine package content) can only publish a value: a
finding seen nowhere else is informational. Searching them with every provider rule lists what
they publish, but costs as much again as the rest of the scan on an application image. Searched
with only the **self-identifying** rules (a secret that names its own kind: ``ghp_…``,
``AKIA…``, ``-----BEGIN … PRIVATE KEY``, ``scheme://user:password@host``), the search takes a
fraction of that and still lists the values worth knowing about: a live provider key published in a
package. A rule is self-identifying when every match of its secret starts with a fixed,
case-sensitive literal of at least ``MIN_LEAD`` characters (read from its regex), or when its YAML
says ``self_identifying: true``; ``false`` takes a rule out. Rules that need a name around the
value (``aws_secret_access_key = …``) do not search package content by default
(``--search-packages`` adds them).

Reading 500 regexes takes a twentieth of a second, so the result is kept in the artefact store with
the rule set's digest in its name (``scope-KEY.json``), as the compiled database is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from secretscan.detect.artefacts import ArtefactStore
from secretscan.detect.prefilter import newlines_in
from secretscan.detect.rules import Rule, RuleSet

try:  # the regex parser moved in 3.11
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse  # type: ignore[no-redef]

MIN_LEAD = 3
"""A shorter literal (``s.``, ``AK``) is too common in code to say what follows it."""
_MAX_LEADS = 64
_GROUPED = 5
"""Multiline leads sharing this many first characters are looked for by what they share."""
_VERSION = 2
"""Bumped when the derivation changes, so a kept result of an older one is not used."""


def secret_leads(rule: Rule) -> tuple[tuple[bytes, ...], bool]:
    """(the literals every match of ``rule``'s secret, its capture group, starts with, one per
    alternative; whether the secret can span lines). No literals when some alternative starts with
    anything else, or with fewer than ``MIN_LEAD`` case-sensitive characters."""
    if rule.source is None:
        return (), False
    try:
        tree = _sre_parse.parse(rule.source.decode("latin-1"))
    except (re.error, RecursionError):
        return (), False
    group = _capture_group(list(tree.data))
    if group is None:
        return (), False
    multiline = newlines_in(group, dotall=bool(tree.state.flags & re.DOTALL)) > 0
    leads = None if tree.state.flags & re.IGNORECASE else _leads(group)
    if not leads or min(len(lead) for lead in leads) < MIN_LEAD:
        return (), multiline
    return tuple(sorted({lead.encode("latin-1") for lead in leads})), multiline


def _capture_group(items: list[Any]) -> list[Any] | None:
    """The items of capture group 1, wherever it sits in the tree."""
    for op, av in items:
        name = str(op)
        children: Iterable[list[Any]] = ()
        if name == "SUBPATTERN":
            if av[0] == 1:
                return list(av[3])
            children = [list(av[3])]
        elif name == "BRANCH":
            children = [list(branch) for branch in av[1]]
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            children = [list(av[2])]
        elif name == "ATOMIC_GROUP":
            children = [list(av)]
        for child in children:
            found = _capture_group(child)
            if found is not None:
                return found
    return None


def _leads(items: list[Any]) -> list[str] | None:
    """Every literal a match of ``items`` can start with (None: it can start with anything)."""
    out = [""]
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            out = [lead + chr(av) for lead in out]
            continue
        if name == "ASSERT" or name == "ASSERT_NOT":  # consumes nothing: the literal goes on after it
            continue
        if name == "SUBPATTERN" and not av[1] & re.IGNORECASE:
            inner = _leads(list(av[3]))
            return _joined(out, inner)
        if name == "BRANCH":
            alternatives: list[str] = []
            for branch in av[1]:
                lead = _leads(list(branch))
                if lead is None:
                    return _joined(out, None)
                alternatives += lead
            return _joined(out, alternatives)
        break
    return out if out != [""] else None


def _joined(heads: list[str], tails: list[str] | None) -> list[str] | None:
    if tails is None:
        return heads if heads != [""] else None
    joined = [head + tail for head in heads for tail in tails]
    return joined if len(joined) <= _MAX_LEADS else heads if heads != [""] else None


@dataclass(frozen=True)
class SelfIdentifying:
    """The self-identifying rules of a rule set, and the literals that can start a match spanning
    lines (a PEM key): in a source map its sources' line breaks are written ``\\n``, so the map's
    raw bytes are checked for those literals rather than for the whole pattern."""

    rule_ids: frozenset[str]
    multiline_leads: tuple[bytes, ...]

    @staticmethod
    def of(ruleset: RuleSet, store: ArtefactStore | None) -> SelfIdentifying:
        key = hashlib.sha256(f"{_VERSION}:{ruleset.digest}:{MIN_LEAD}".encode()).hexdigest()[:32]
        name = f"scope-{key}.json"
        for doc in store.found_json(name) if store else ():
            try:
                return SelfIdentifying(
                    frozenset(doc["rule_ids"]), tuple(lead.encode("latin-1") for lead in doc["multiline_leads"])
                )
            except (KeyError, TypeError, AttributeError, UnicodeError):
                continue
        found = SelfIdentifying.derive(ruleset)
        if store:
            doc = {"rule_ids": sorted(found.rule_ids), "multiline_leads": [x.decode("latin-1") for x in found.multiline_leads]}
            store.write(name, json.dumps(doc).encode())
        return found

    @staticmethod
    def derive(ruleset: RuleSet) -> SelfIdentifying:
        ids: set[str] = set()
        multiline: set[bytes] = set()
        for rule in ruleset.rules:
            if rule.parser:
                ids.add(rule.id)
                continue
            if rule.source is None or rule.heuristic or rule.self_identifying is False:
                continue
            leads, spans_lines = secret_leads(rule)
            if not leads and not rule.self_identifying:
                continue
            ids.add(rule.id)
            if spans_lines:
                multiline.update(leads)
        return SelfIdentifying(frozenset(ids), _shared_prefixes(multiline))


def _shared_prefixes(leads: set[bytes]) -> tuple[bytes, ...]:
    """Leads that begin alike (``-----BEGIN RSA …``, ``-----BEGIN EC …``) as their common prefix:
    a superset to look for, one pass over a map instead of one per key type."""
    groups: dict[bytes, list[bytes]] = {}
    for lead in leads:
        groups.setdefault(lead[:_GROUPED], []).append(lead)
    return tuple(sorted(_common_prefix(group) for group in groups.values()))


def _common_prefix(group: list[bytes]) -> bytes:
    first, last = min(group), max(group)  # what the first and last in order share, all share
    n = 0
    while n < len(first) and first[n] == last[n]:
        n += 1
    return first[:n]
