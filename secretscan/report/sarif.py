"""``--format sarif``: SARIF 2.1.0 as GitHub code scanning accepts it.

Image paths become relative artifact URIs (``app/config/.env``; nested archives keep their
``!/``); config and history locations point at a pseudo-artifact ``image-config.json`` with a
logical location naming the field. ``partialFingerprints`` carries our keyed fingerprint so code
scanning tracks a secret across runs without seeing it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from secretscan.models import Exposure, Finding, Location, ScanReport, SecretStore, Severity
from secretscan.report.text import exposure_note, place

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/secretscan/secretscan"
CONFIG_ARTIFACT = "image-config.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def render_sarif(report: ScanReport) -> str:
    rules: dict[str, dict[str, Any]] = {}
    for f in report.findings:
        rules.setdefault(f.rule_id, _rule(f))
    rule_index = {rule_id: i for i, rule_id in enumerate(rules)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "secretscan",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": list(rules.values()),
            }
        },
        "invocations": [
            {
                "executionSuccessful": not report.errors,
                "toolExecutionNotifications": [
                    {"level": "warning", "message": {"text": f"Not fully scanned: {s.what}: {s.reason}"}}
                    for s in report.skipped
                ]
                + [{"level": "error", "message": {"text": e}} for e in report.errors],
            }
        ],
        "results": [_result(f, rule_index[f.rule_id]) for f in report.findings],
        "properties": {
            "target": report.target,
            "rulesDigest": report.rules_digest,
            "images": [{"name": i.name, "digest": i.digest, "configDigest": i.config_digest} for i in report.images],
        },
    }
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _rule(f: Finding) -> dict[str, Any]:
    return {
        "id": f.rule_id,
        "name": "".join(part.capitalize() for part in f.rule_id.replace("-", ".").split(".")),
        "shortDescription": {"text": f"{f.title}."},
        "fullDescription": {"text": f"A hardcoded {f.title} in a container image."},
        "help": {"text": f.remediation, "markdown": f.remediation},
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[f.severity],
            "tags": ["security", "secret"],
            "precision": {"high": "high", "medium": "medium", "low": "low"}.get(f.confidence, "medium"),
        },
    }


def _result(f: Finding, index: int) -> dict[str, Any]:
    first = f.locations[0]
    value = f.secret if f.secret is not None else f.redacted
    message = f"{f.title} ({value}) at {first.image}: {place(first)} — {exposure_note(first)}."
    if len(f.locations) > 1:
        message += f" Seen in {len(f.locations)} places."
    return {
        "ruleId": f.rule_id,
        "ruleIndex": index,
        "level": _LEVEL[f.severity],
        "message": {"text": message},
        "locations": [_location(loc) for loc in f.locations[:10]],
        "relatedLocations": [dict(_location(loc), id=i) for i, loc in enumerate(f.locations[10:], start=1)],
        "partialFingerprints": {"secretscanFingerprint/v1": f.fingerprint},
        "properties": {
            "exposure": f.exposure.value,
            "confidence": f.confidence,
            "severity": str(f.severity),
            **({"verification": f.verification.verdict.value} if f.verification else {}),
            **_managed_properties(f),
        },
    }


def _managed_properties(f: Finding) -> dict[str, Any]:
    """Each store's verdict: ``vault``/``vaultPath``, ``awsSecrets``/``awsSecretsArn``/
    ``awsSecretsField``/``awsSecretsStage``, and all of them as ``managed``."""
    out: dict[str, Any] = {}
    for m in f.managed:
        if m.store is SecretStore.VAULT:
            out.update(vault=m.status.value, vaultPath=m.ref)
        else:
            out.update(
                awsSecrets=m.status.value, awsSecretsArn=m.secret, awsSecretsField=m.field, awsSecretsStage=m.stage
            )
    if f.managed:
        out["managed"] = [
            {"store": m.store.value, "status": m.status.value, "ref": m.ref, "stage": m.stage, "version": m.version}
            for m in f.managed
        ]
    return out


def _location(loc: Location) -> dict[str, Any]:
    if loc.exposure is Exposure.CONFIG:
        physical: dict[str, Any] = {"artifactLocation": {"uri": CONFIG_ARTIFACT}, "region": {"startLine": 1}}
    else:
        physical = {"artifactLocation": {"uri": quote(loc.path.lstrip("/"), safe="/!")}}
        if loc.line:
            physical["region"] = {"startLine": loc.line}
    out: dict[str, Any] = {
        "physicalLocation": physical,
        "message": {"text": f"{loc.image}: {place(loc)} ({exposure_note(loc)})"},
    }
    if loc.exposure is Exposure.CONFIG:
        out["logicalLocations"] = [{"fullyQualifiedName": loc.path, "kind": "member"}]
    layer = _layer_properties(loc)
    if layer:
        out["properties"] = layer
    return out


def _layer_properties(loc: Location) -> dict[str, Any]:
    """The layer a location is in (by index and diff ID) or, for a build-history entry, the layer
    its step created: what a responder needs to find the blob."""
    step = loc.history_step
    if loc.layer_index is not None:
        found: dict[str, Any] = {"layerIndex": loc.layer_index, "layerDigest": loc.layer_digest}
    elif step is not None:
        found = {
            "historyIndex": step.index,
            "createdLayerIndex": step.layer_index,
            "createdLayerDigest": step.layer_digest,
            "emptyLayer": step.empty_layer,
        }
    else:
        return {}
    return {k: v for k, v in found.items() if v is not None}
