"""``secretscan version``: what a bug report or a CI log needs to say which scanner ran — the
tool, the rule pack (its size and digest, as reports carry it), the Hyperscan library actually
loaded (or that it is missing: scans are then slower, with the same findings) and Python."""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from secretscan.detect.rules import BUILTIN_RULES_DIR, load_rules
from secretscan.verify import VERIFIER_NAMES
from secretscan.version import __version__


@dataclass(frozen=True, slots=True)
class Versions:
    secretscan: str
    rules: int
    rules_digest: str
    hyperscan: str | None
    """The Hyperscan library's version; None when the ``hyperscan`` package cannot be imported."""
    python_hyperscan: str | None
    python: str
    platform: str


def versions(rule_dirs: Sequence[Path] = ()) -> Versions:
    """The versions of this installation; ``rule_dirs`` (the user's extra rules) change the digest."""
    ruleset = load_rules([BUILTIN_RULES_DIR, *rule_dirs], VERIFIER_NAMES)
    library, package = _hyperscan()
    return Versions(
        secretscan=__version__,
        rules=len(ruleset),
        rules_digest=ruleset.digest,
        hyperscan=library,
        python_hyperscan=package,
        python=f"{platform.python_version()} ({platform.python_implementation()})",
        platform=f"{platform.system().lower()}/{platform.machine()}",
    )


def _hyperscan() -> tuple[str | None, str | None]:
    """(library version, package version). The package bundles its own library, whose version
    only a compiled database tells (``Version: 5.4.12 Features: ... Mode: BLOCK``)."""
    try:
        import hyperscan
    except ImportError:
        return None, None
    package = str(getattr(hyperscan, "__version__", "")) or None
    try:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[b"secretscan"], ids=[0], elements=1, flags=[0])
        info: Any = db.info()
        text = info.decode("ascii", "replace") if isinstance(info, bytes) else str(info)
        found = re.search(r"Version:\s*([0-9][0-9A-Za-z.+-]*)", text)
    except Exception:  # noqa: BLE001 - a library that cannot compile is reported, not raised
        return "unusable", package
    return (found.group(1) if found else "unknown"), package


def render_text(v: Versions) -> str:
    hyperscan = (
        f"{v.hyperscan} (python-hyperscan {v.python_hyperscan})"
        if v.hyperscan
        else "not installed (keyword prefilter only: the same findings, slower)"
    )
    return (
        f"secretscan {v.secretscan}\n"
        f"rules:     {v.rules} ({v.rules_digest})\n"
        f"hyperscan: {hyperscan}\n"
        f"python:    {v.python}\n"
        f"platform:  {v.platform}\n"
    )


def render_json(v: Versions) -> str:
    return json.dumps(asdict(v), indent=2) + "\n"
