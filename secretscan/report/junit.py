"""``--format junit``: JUnit XML for CI systems that show test results but not SARIF (Jenkins,
GitLab's test report, Azure DevOps, CircleCI, Buildkite).

One ``testsuite`` per image. Every place a secret was seen is a failed ``testcase`` (classname =
rule, name = where), so the CI's failure list reads as the list of leaks. An image with nothing
found has one passing case. What could not be scanned is a ``skipped`` case, and a scan error is an
``error`` case. Validated against the Jenkins JUnit schema (junit-10.xsd) in the tests.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from secretscan.models import Finding, Location, ScanReport
from secretscan.report.text import managed_note

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _safe(text: str) -> str:
    """Characters XML 1.0 cannot carry (an image's file names may hold any) as ``\\xNN``."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render_junit(report: ScanReport) -> str:
    by_image: dict[str, list[tuple[Finding, Location]]] = defaultdict(list)
    for f in report.findings:
        for loc in f.locations:
            by_image[loc.image].append((f, loc))
    root = ET.Element("testsuites", name=f"secretscan {report.target}")
    names = [i.name for i in report.images] + [n for n in by_image if n not in {i.name for i in report.images}]
    if not names:
        names = [report.target]
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for index, name in enumerate(names):
        suite = ET.SubElement(root, "testsuite", name=name, id=str(index))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for f, loc in by_image.get(name, []):
            case = ET.SubElement(suite, "testcase", classname=f.rule_id, name=loc.describe())
            failure = ET.SubElement(
                case, "failure", message=f"{str(f.severity).upper()}: {f.title} {f.redacted}", type=str(f.severity)
            )
            failure.text = _details(f, loc)
            counts["tests"] += 1
            counts["failures"] += 1
        if index == 0:  # errors and skipped items of the run go to the first suite
            for error in report.errors:
                case = ET.SubElement(suite, "testcase", classname="secretscan", name="scan")
                ET.SubElement(case, "error", message=error[:500], type="scan-error").text = error
                counts["tests"] += 1
                counts["errors"] += 1
            for s in report.skipped:
                case = ET.SubElement(suite, "testcase", classname="secretscan.not-scanned", name=s.what)
                ET.SubElement(case, "skipped", message=s.reason[:500])
                counts["tests"] += 1
                counts["skipped"] += 1
        if counts["tests"] == 0:
            ET.SubElement(suite, "testcase", classname="secretscan", name="no secrets found")
            counts["tests"] = 1
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key in ("tests", "failures", "errors"):
        root.set(key, str(totals[key]))
    for element in root.iter():
        element.attrib.update({k: _safe(v) for k, v in element.attrib.items()})
        if element.text:
            element.text = _safe(element.text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _details(f: Finding, loc: Location) -> str:
    lines = [
        f"rule: {f.rule_id}",
        f"value: {f.secret if f.secret is not None else f.redacted}",
        f"fingerprint: {f.fingerprint}",
        f"exposure: {loc.exposure}"
        + (f" ({loc.removed_how} in layer {loc.removed_in_layer})" if loc.removed_in_layer is not None else ""),
    ]
    if loc.context:
        lines.append(f"key: {loc.context}")
    if loc.created_by:
        lines.append(f"added by: {loc.created_by}")
    lines.extend(f"{m.store}: {managed_note(m)}" for m in f.managed)
    lines.append(f"fix: {f.remediation}")
    return "\n".join(lines)
