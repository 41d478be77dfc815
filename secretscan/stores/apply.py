"""``secretscan migrate apply``: each planned value written by the store's ``Writer`` (never over a
different current value unless forced; safe to re-run), and a record of what was done — names,
versions, fingerprints, never a value — appended to a private file."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretscan.errors import OutputError
from secretscan.safewrite import PRIVATE_MODE, write_file
from secretscan.stores.model import StoreError, Writer
from secretscan.stores.plan import MigrationPlan


@dataclass
class ApplyResult:
    written: list[dict[str, Any]] = field(default_factory=list)
    """One record entry per planned secret, in plan order."""
    problems: list[str] = field(default_factory=list)


def apply_plan(
    writer: Writer, plan: MigrationPlan, secrets: Mapping[str, str], *, force: bool, record: Path | None
) -> ApplyResult:
    """Write every item of ``plan``. A store that fails outright (``StoreError``) stops the run,
    after what was already written is recorded."""
    result = ApplyResult()
    try:
        for item in plan.items:
            entry: dict[str, Any] = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "store": plan.store.value,
                "path": item.target,
                "fingerprint": item.fingerprint,
                "rule_id": item.rule_id,
            }
            written = writer.write(item.place, secrets[item.fingerprint], item.fingerprint, force=force)
            entry["action"] = written.action.value
            if written.version is not None:
                entry["version"] = written.version
            entry.update(written.details)
            if written.problem:
                result.problems.append(written.problem)
            result.written.append(entry)
    except StoreError:
        _record(record, result)
        raise
    _record(record, result)
    return result


def _record(record: Path | None, result: ApplyResult) -> None:
    if record is None or not result.written:
        return
    try:
        existing = json.loads(record.read_text()) if record.is_file() else []
    except (OSError, ValueError):
        existing = None
    if not isinstance(existing, list):
        result.problems.append(f"{record}: not a migration record (a JSON list): left as is")
        return
    try:  # mode 0600, never through a symlink; a failure must not hide what was already written
        write_file(record, json.dumps(existing + result.written, indent=2) + "\n", mode=PRIVATE_MODE)
    except OutputError as exc:
        result.problems.append(f"{exc} (what was written is listed on standard output only)")
