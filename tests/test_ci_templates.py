"""The GitHub Action and the GitLab CI template: their commands run here as the CI would run them
(inputs and variables through the environment) and their outputs validate — SARIF with Microsoft's
SARIF Multitool, JUnit against junit-10.xsd, GitLab's secret-detection report against the
constraints of its schema 15.2."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from conftest import REPO, gitlab_report_errors, junit_valid, sarif_errors

DEMO = REPO / "fixtures" / "demo-image.tar"


def _bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", script], env=full, cwd=cwd, capture_output=True, text=True, timeout=600)


def _expand(value: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    """GitHub's ${{ … }} expressions that the action uses, resolved as the runner would."""

    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("inputs."):
            return inputs[expr[len("inputs.") :]]
        if expr == "github.action_path":
            return str(REPO)
        if expr.startswith("steps.scan.outputs."):
            return outputs[expr.rsplit(".", 1)[1]]
        raise AssertionError(f"unexpected expression {expr}")

    return re.sub(r"\$\{\{(.*?)\}\}", one, value)


def test_github_action_scans_uploads_valid_sarif_and_gates(tmp_path: Path, sarif_multitool: str) -> None:
    action: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update({"image": f"docker-archive:{DEMO}", "sarif-file": "out/secretscan.sarif"})
    (tmp_path / "out").mkdir()
    outputs: dict[str, str] = {}
    gate: subprocess.CompletedProcess[str] | None = None
    for step in action["runs"]["steps"]:
        if "uses" in step:
            assert step["uses"].startswith("github/codeql-action/upload-sarif@")
            assert _expand(step["with"]["sarif_file"], inputs, outputs) == "out/secretscan.sarif"
            assert "always()" in step["if"]  # the SARIF is uploaded even when the scan step fails
            continue
        env = {k: _expand(str(v), inputs, outputs) for k, v in (step.get("env") or {}).items()}
        assert "${{" not in step["run"], "run steps take their inputs from env only (no expression injection)"
        if step["name"].startswith("Install"):
            assert env["SECRETSCAN_SOURCE"] == str(REPO) and "pip install" in step["run"]
            continue  # installing would replace the test environment's secretscan
        github_output = tmp_path / "github-output"
        env["GITHUB_OUTPUT"] = str(github_output)
        result = _bash(step["run"], env, tmp_path)
        if step.get("id") == "scan":
            assert result.returncode == 0, result.stderr
            outputs.update(dict(line.split("=", 1) for line in github_output.read_text().splitlines()))
        else:
            gate = result
    assert outputs["exit-code"] == "1"  # the demo has high and critical findings
    assert gate is not None and gate.returncode == 1
    sarif = tmp_path / "out" / "secretscan.sarif"
    assert json.loads(sarif.read_text())["runs"][0]["results"]
    assert not sarif_errors(sarif_multitool, sarif)


def test_gitlab_template_writes_valid_junit_and_reports(tmp_path: Path, junit_schema) -> None:
    template: dict[str, Any] = yaml.safe_load((REPO / "ci" / "secretscan.gitlab-ci.yml").read_text())
    job = template["secretscan"]
    variables = {k: str(v) for k, v in job["variables"].items()}
    password = "job-token-" + base64.b32encode(os.urandom(10)).decode()
    commit = os.urandom(20).hex()
    variables.update(
        {
            "SECRETSCAN_IMAGE": f"docker-archive:{DEMO}",
            "HOME": str(tmp_path / "home"),
            "CI_REGISTRY": "registry.example.test",
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": password,
            "CI_COMMIT_SHA": commit,
        }
    )
    credentials = [line for line in job["before_script"] if ".docker/config.json" in line]
    assert _bash("\n".join(credentials), variables, tmp_path).returncode == 0
    auth = json.loads((tmp_path / "home" / ".docker" / "config.json").read_text())
    decoded = base64.b64decode(auth["auths"]["registry.example.test"]["auth"]).decode()
    assert decoded == f"gitlab-ci-token:{password}"
    result = _bash("\n".join(job["script"]), variables, tmp_path)
    assert result.returncode == 1, result.stderr  # fails the job at high
    assert password not in result.stdout + result.stderr
    junit = tmp_path / job["artifacts"]["reports"]["junit"]
    doc = junit_valid(junit_schema, junit.read_text())
    assert int(doc.get("failures")) > 0
    for path in job["artifacts"]["paths"]:
        assert (tmp_path / path).stat().st_size > 0, path
    assert json.loads((tmp_path / "secretscan-report.json").read_text())["schema_version"] == 1
    security = json.loads((tmp_path / job["artifacts"]["reports"]["secret_detection"]).read_text())
    assert not gitlab_report_errors(security)
    assert security["vulnerabilities"]
    assert {v["location"]["commit"]["sha"] for v in security["vulnerabilities"]} == {commit}
