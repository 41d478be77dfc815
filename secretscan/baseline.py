"""Baselines: the findings a team has accepted, by fingerprint only (never the value), so CI
fails only on new ones."""

from __future__ import annotations

import json
from pathlib import Path

from secretscan.errors import ConfigError
from secretscan.models import ScanReport
from secretscan.safewrite import write_file

BASELINE_VERSION = 1


def write_baseline(report: ScanReport, path: Path) -> int:
    entries = [
        {
            "fingerprint": f.fingerprint,
            "rule_id": f.rule_id,
            "redacted": f.redacted,
            "first_location": f"{f.locations[0].image}: {f.locations[0].describe()}",
        }
        for f in report.findings
    ]
    doc = {"secretscan_baseline": BASELINE_VERSION, "target": report.target, "findings": entries}
    write_file(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")  # never through a symlink
    return len(entries)


def read_baseline(path: Path) -> frozenset[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read baseline ({exc})") from None
    if not isinstance(doc, dict) or doc.get("secretscan_baseline") != BASELINE_VERSION:
        raise ConfigError(f"{path}: not a secretscan baseline (version {BASELINE_VERSION})")
    return frozenset(
        str(e["fingerprint"]) for e in doc.get("findings") or [] if isinstance(e, dict) and "fingerprint" in e
    )
