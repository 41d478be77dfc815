"""``--format gitlab-secret-detection``: GitLab's secret-detection report (schema 15.2), the artifact
``artifacts: reports: secret_detection`` takes, so leaks show in the merge-request widget, the
pipeline's security tab and the vulnerability report next to GitLab's own findings.

GitLab's format was made for secrets in a git repository, so every vulnerability must name a
commit. An image has none of its own; the commit given is, in order: the revision the image says
it was built from (its ``org.opencontainers.image.revision`` label), the pipeline's commit
(``CI_COMMIT_SHA``, passed in by the caller), or ``0000000`` (what GitLab's own analyzer writes
for a scan that is not of history), and a scan message then says the commit is unknown.

GitLab tracks a vulnerability by its one location, so each place a secret was seen is its own
vulnerability; the image, layer, build step, fate and fingerprint go in its details.
``raw_source_code_extract`` is never written: it would carry the secret.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from secretscan.image.model import OCI_REVISION
from secretscan.models import Finding, Location, ScanReport, Severity
from secretscan.report.sarif import INFORMATION_URI
from secretscan.report.text import exposure_note, managed_note

SCHEMA_VERSION = "15.2.1"
"""GitLab validates a report against the schema version it declares, and falls back to the newest
patch level it vendors of the same MAJOR.MINOR. An instance that does not vendor 15.2 yet (GitLab
17.1 did not, gitlab-org/gitlab#497405) refuses the report; the JUnit report still shows the leaks."""
SCHEMA_URL = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
    f"v{SCHEMA_VERSION}/dist/secret-detection-report-format.json"
)
UNKNOWN_COMMIT = "0000000"
_SEVERITY = {
    Severity.CRITICAL: "Critical",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    Severity.INFO: "Info",
}
_IDS = uuid.UUID("5ec7e75c-a11e-4c0d-9d1e-6a7b00000001")
"""Namespace for the vulnerabilities' ids: the same place and secret get the same id every run."""
_MARKDOWN = re.compile(r"[\\`*_\[\]<>&@#!~%$|]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_NAME, _MAX_DESCRIPTION, _MAX_SOLUTION = 255, 1_048_576, 7_000


def render_gitlab(report: ScanReport, *, pipeline_commit: str | None = None) -> str:
    revisions = {image.name: image.revision for image in report.images if image.revision}
    pipeline_commit = (pipeline_commit or "").strip() or None
    vulnerabilities = []
    unknown_commit = False
    for f in report.findings:
        for loc in f.locations:
            commit = revisions.get(loc.image) or pipeline_commit
            unknown_commit |= commit is None
            vulnerabilities.append(_vulnerability(f, loc, commit or UNKNOWN_COMMIT))
    messages = [{"level": "warn", "value": f"Not fully scanned: {s.what}: {s.reason}"} for s in report.skipped]
    messages += [{"level": "fatal", "value": error} for error in report.errors]
    if unknown_commit:
        messages.append(
            {
                "level": "info",
                "value": f"No source revision known for some images (no {OCI_REVISION} label, "
                f"no CI_COMMIT_SHA): their findings name commit {UNKNOWN_COMMIT}.",
            }
        )
    tool = {
        "id": "secretscan",
        "name": "secretscan",
        "version": report.tool_version,
        "vendor": {"name": "secretscan"},
        "url": INFORMATION_URI,
    }
    now = time.time()
    doc = {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URL,
        "scan": {
            "analyzer": tool,
            "scanner": tool,
            "type": "secret_detection",
            "start_time": _timestamp(report.started if report.started is not None else now),
            "end_time": _timestamp(report.finished if report.finished is not None else now),
            "status": "failure" if report.errors else "success",
            "messages": messages,
        },
        "vulnerabilities": vulnerabilities,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _vulnerability(f: Finding, loc: Location, commit: str) -> dict[str, Any]:
    value = f.secret if f.secret is not None else f.redacted
    where = f"{loc.image}: {loc.describe()}"
    location: dict[str, Any] = {"file": loc.path.lstrip("/") or loc.path, "commit": {"sha": commit}}
    if loc.line:
        location.update(start_line=loc.line, end_line=loc.line)
    identity = "\n".join([f.fingerprint, loc.image, loc.layer_digest or "", loc.path, str(loc.line or "")])
    return {
        "id": str(uuid.uuid5(_IDS, identity)),
        "name": f.title[:_MAX_NAME],
        "description": _markdown_text(f"A hardcoded {f.title} ({value}) in {where} — {exposure_note(loc)}.")[
            :_MAX_DESCRIPTION
        ],
        "severity": _SEVERITY[f.severity],
        "solution": f.remediation[:_MAX_SOLUTION],
        "identifiers": [{"type": "secretscan_rule_id", "name": f"secretscan rule {f.rule_id}", "value": f.rule_id}],
        "location": location,
        "details": _details(f, loc),
    }


def _details(f: Finding, loc: Location) -> dict[str, Any]:
    def text(name: str, value: str) -> dict[str, str]:
        return {"name": name, "type": "text", "value": value}

    details = {"image": text("Image", loc.image + (f"@{loc.image_digest}" if loc.image_digest else ""))}
    if loc.layer_index is not None:
        details["layer"] = text("Layer", f"{loc.layer_index} ({loc.layer_digest or 'no digest'})")
    if loc.created_by:
        details["build_step"] = {"name": "Build step", "type": "code", "value": loc.created_by}
    details["value"] = text("Value", f.secret if f.secret is not None else f.redacted)  # unescaped, to copy
    details["exposure"] = text("Exposure", exposure_note(loc))
    details["fingerprint"] = text("Fingerprint", f.fingerprint)
    details["confidence"] = text("Confidence", f.confidence)
    if f.verification is not None:
        details["verification"] = text("Verification", f.verification.verdict.value)
    for m in f.managed:  # each store's verdict: "vault", "aws_secrets"
        details[m.store.value.replace("-", "_")] = text(m.store.label, managed_note(m))
    return details


def _markdown_text(text: str) -> str:
    """GitLab renders ``description`` as Markdown with its references, and image names and paths are
    the image author's: escaped, ``[login](https://…)`` stays text instead of becoming a link,
    ``@name`` and ``#12`` do not reference users or issues, and a newline cannot start a heading."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _MARKDOWN.sub(r"\\\g<0>", text)


def _timestamp(seconds: float) -> str:
    """The schema's ``yyyy-mm-ddThh:mm:ss`` in UTC (no zone suffix, no fraction)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
