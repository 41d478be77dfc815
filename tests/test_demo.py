"""The README's demo image: every planted secret found where the plan says, and nothing else."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from conftest import REPO, scan_json

DEMO = REPO / "fixtures" / "demo-image.tar"
EXPECTED = json.loads((REPO / "fixtures" / "demo-expected.json").read_text())
LOCATION_KEYS = ("layer_index", "path", "line", "exposure", "removed_in_layer", "removed_how")


def _by_sha(report: dict) -> dict[str, dict]:
    return {hashlib.sha256(f["secret"].encode()).hexdigest(): f for f in report["findings"]}


def test_every_planted_secret_is_found_where_planted_and_nothing_else(cli) -> None:
    report = scan_json(cli, DEMO, "--show-secrets")
    found = _by_sha(report)
    planted = {p["sha256"]: p for p in EXPECTED["secrets"]}
    assert set(found) == set(planted), "extra or missing findings"
    for sha, plan in planted.items():
        finding = found[sha]
        assert finding["rule_id"] == plan["rule_id"]
        got = sorted((tuple(loc[k] for k in LOCATION_KEYS) for loc in finding["locations"]), key=str)
        want = sorted((tuple(loc[k] for k in LOCATION_KEYS) for loc in plan["locations"]), key=str)
        assert got == want, plan["rule_id"]
    assert report["complete"] and not report["skipped"] and not report["errors"]


def test_layer_locations_name_the_build_step_that_added_them(cli) -> None:
    report = scan_json(cli, DEMO)
    steps = {
        loc["path"]: loc["created_by"]
        for f in report["findings"]
        for loc in f["locations"]
        if loc["layer_index"] is not None
    }
    assert steps["/app/.env"] == "COPY .env /app/.env"
    assert steps["/app/lib/app.jar!/config/app.properties"] == "COPY target/app.jar /app/lib/app.jar"
    assert steps["/root/.ssh/id_rsa"] == "COPY id_rsa /root/.ssh/id_rsa"


def test_secrets_appear_in_full_only_with_show_secrets(cli) -> None:
    plain = scan_json(cli, DEMO)
    shown = scan_json(cli, DEMO, "--show-secrets")
    values = [f["secret"] for f in shown["findings"]]
    assert all("secret" not in f for f in plain["findings"])
    text = cli("scan", DEMO, "--quiet").out + json.dumps(plain)
    for value in values:
        needle = value.strip().splitlines()[1] if value.startswith("-----BEGIN") else value
        assert needle not in text


def test_make_demo_command_runs_the_scanner_on_the_bundled_image() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "secretscan", "scan", str(DEMO)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert f"{len(EXPECTED['secrets'])} findings" in result.stdout
    assert "deleted in layer 4" in result.stdout and "overwritten in layer 4" in result.stdout
