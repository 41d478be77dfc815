"""``--format json``: a documented, versioned schema (``docs/report-schema.json``).

``schema_version`` changes only when a field changes meaning or disappears; new fields may be added
within a version.
"""

from __future__ import annotations

import json
from typing import Any

from secretscan.models import Finding, HistoryStep, KnownTestKey, Location, ManagedMatch, ScanReport
from secretscan.terminal import json_terminal_safe

SCHEMA_VERSION = 1


def location_dict(loc: Location) -> dict[str, Any]:
    return {
        "image": loc.image,
        "image_digest": loc.image_digest,
        "layer_index": loc.layer_index,
        "layer_digest": loc.layer_digest,
        "path": loc.path,
        "line": loc.line,
        "context": loc.context,
        "created_by": loc.created_by,
        "exposure": loc.exposure.value,
        "removed_in_layer": loc.removed_in_layer,
        "removed_how": loc.removed_how,
        "package": loc.package,
        "package_state": loc.package_state.value if loc.package_state else None,
        "documentation": loc.documentation.value if loc.documentation else None,
        "description": loc.describe(),
        "history_step": _step_dict(loc.history_step),
    }


def _step_dict(step: HistoryStep | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {
        "index": step.index,
        "layer_index": step.layer_index,
        "layer_digest": step.layer_digest,
        "empty_layer": step.empty_layer,
    }


def finding_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": str(f.severity),
        "confidence": f.confidence,
        "fingerprint": f.fingerprint,
        "redacted": f.redacted,
        "exposure": f.exposure.value,
        "remediation": f.remediation,
        "locations": [location_dict(loc) for loc in f.locations],
    }
    out["verification"] = (
        {
            "verdict": f.verification.verdict.value,
            "provider": f.verification.provider,
            "evidence": f.verification.evidence,
        }
        if f.verification
        else None
    )
    out["vault"] = (
        {
            "status": f.vault.status.value,
            "path": f.vault.path,
            "version": f.vault.version,
            "current_version": f.vault.current_version,
        }
        if f.vault
        else None
    )
    out["managed"] = [_managed_dict(m) for m in f.managed]
    if f.secret is not None:
        out["secret"] = f.secret
    return out


def _managed_dict(m: ManagedMatch) -> dict[str, Any]:
    return {
        "store": m.store.value,
        "status": m.status.value,
        "secret": m.secret,
        "name": m.name,
        "field": m.field,
        "version": m.version,
        "stage": m.stage,
        "current_version": m.current_version,
    }


def _known_dict(k: KnownTestKey) -> dict[str, Any]:
    return {
        "rule_id": k.rule_id,
        "fingerprint": k.fingerprint,
        "redacted": k.redacted,
        "source": k.source,
        "locations": [location_dict(loc) for loc in k.locations],
    }


def report_dict(report: ScanReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "secretscan", "version": report.tool_version, "rules_digest": report.rules_digest},
        "target": report.target,
        "complete": report.complete,
        "images": [
            {
                "name": i.name,
                "digest": i.digest,
                "config_digest": i.config_digest,
                "platform": i.platform,
                "revision": i.revision,
                "layers": i.layers,
                "files_scanned": i.files_scanned,
                "bytes_scanned": i.bytes_scanned,
                "package_files": i.package_files,
                "package_bytes": i.package_bytes,
                "verified_files": i.verified_files,
                "verified_bytes": i.verified_bytes,
                "verified_rules": i.verified_rules.value,
                "layer_details": [
                    {
                        "index": d.index,
                        "digest": d.digest,
                        "created_by": d.created_by,
                        "files": d.files,
                        "bytes": d.bytes,
                    }
                    for d in i.layer_details
                ],
            }
            for i in report.images
        ],
        "findings": [finding_dict(f) for f in report.findings],
        "known_test_keys": [_known_dict(k) for k in report.known_test_keys],
        "suppressed": report.suppressed,
        "skipped": [{"what": s.what, "reason": s.reason} for s in report.skipped],
        "errors": list(report.errors),
    }


def render_json(report: ScanReport) -> str:
    # readable UTF-8, but control, bidi and invisible characters as \u escapes: it is often read on a terminal
    return json_terminal_safe(json.dumps(report_dict(report), indent=2, ensure_ascii=False)) + "\n"
