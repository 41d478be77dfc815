"""Report formats: JSON against its published schema, SARIF through Microsoft's validator, text for people."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import jsonschema
import secretgen
from conftest import REPO, sarif_errors
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

DEMO = REPO / "fixtures" / "demo-image.tar"
SCHEMA = json.loads((REPO / "docs" / "report-schema.json").read_text())


def test_json_report_matches_the_documented_schema(cli) -> None:
    for extra in ((), ("--show-secrets",)):
        result = cli("scan", DEMO, "--format", "json", "--quiet", *extra)
        assert result.code == 1
        jsonschema.validate(result.report, SCHEMA)


def test_sarif_passes_the_sarif_multitool(cli, sarif_multitool: str, tmp_path: Path) -> None:
    out = tmp_path / "demo.sarif"
    assert cli("scan", DEMO, "--format", "sarif", "--output", out, "--quiet").code == 1
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    errors = sarif_errors(sarif_multitool, out)
    assert not errors, "\n".join(errors)


def test_sarif_results_carry_rules_levels_and_fingerprints(cli, tmp_path: Path) -> None:
    out = tmp_path / "demo.sarif"
    cli("scan", DEMO, "--format", "sarif", "--output", out, "--quiet")
    run = json.loads(out.read_text())["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    for result in run["results"]:
        assert result["ruleId"] in rule_ids
        assert result["level"] in ("error", "warning", "note")
        assert result["partialFingerprints"]["secretscanFingerprint/v1"].startswith("ssf1:")
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_text_report_groups_by_severity_and_explains_exposure(cli) -> None:
    text = cli("scan", DEMO, "--quiet").out
    severities = [
        ln.split(" ")[0]
        for ln in text.splitlines()
        if ln and ln.split(" ")[0] in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
    ]
    order = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
    assert severities == sorted(severities, key=order.index) and len(set(severities)) == len(severities)
    assert "still shipped in layer 1's blob" in text
    assert "visible to anyone with `docker inspect`" in text
    assert "fix: " in text


def test_output_file_with_show_secrets_is_private(cli, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    cli("scan", DEMO, "--format", "json", "--show-secrets", "--output", out, "--quiet")
    assert out.stat().st_mode & 0o777 == 0o600
    plain = tmp_path / "plain.json"
    cli("scan", DEMO, "--format", "json", "--output", plain, "--quiet")
    assert "secret" not in json.loads(plain.read_text())["findings"][0]


def test_every_report_lists_what_was_not_scanned(cli, tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("token.txt", f"token = {secretgen.github_pat()}\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("inner.zip", inner.getvalue())
    image = tmp_path / "img.tar"
    write_docker_archive(image, [ImageSpec(steps=[Layer([Entry("app/bundle.zip", outer.getvalue())])])])
    (tmp_path / "cfg.yaml").write_text("limits:\n  max_nested_depth: 1\n")
    for fmt in ("text", "json", "sarif"):
        result = cli("scan", image, "--format", fmt, "--config", tmp_path / "cfg.yaml", "--quiet")
        assert "nested archive deeper than 1" in result.out, fmt
