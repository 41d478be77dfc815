"""Report formats: JSON against its published schema, SARIF through Microsoft's validator, text for people."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
import secretgen
from conftest import REPO, sarif_errors
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, build_config, write_docker_archive, write_oci_layout
from openbao import Vault

from secretscan.image.model import ImageConfig
from secretscan.models import Exposure, Location
from secretscan.report.text import place

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
    _, config = _demo_archive()
    created = _created_layers(config)
    places = [loc for result in run["results"] for loc in result["locations"]]
    steps = [loc for loc in places if "historyIndex" in loc.get("properties", {})]
    assert steps
    for loc in steps:
        index = loc["properties"]["historyIndex"]
        assert loc["properties"].get("createdLayerIndex") == created.get(index)
    for loc in places:
        if "layerIndex" in loc.get("properties", {}):
            assert loc["properties"]["layerDigest"] == config["rootfs"]["diff_ids"][loc["properties"]["layerIndex"]]


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


def _demo_archive() -> tuple[str, dict[str, Any]]:
    """The demo image's config digest and config, read here from the archive: the digest is the
    sha256 of the config file that manifest.json names."""
    with tarfile.open(DEMO) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        raw = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    return "sha256:" + hashlib.sha256(raw).hexdigest(), json.loads(raw)


def _created_layers(config: dict[str, Any]) -> dict[int, int]:
    """History index -> the layer that step created: non-empty entries create the layers in order."""
    created = [i for i, h in enumerate(config["history"]) if not h.get("empty_layer")]
    assert len(created) == len(config["rootfs"]["diff_ids"])
    return {step: layer for layer, step in enumerate(created)}


def test_text_report_names_the_image_and_every_layer_by_digest(cli) -> None:
    config_digest, config = _demo_archive()
    diff_ids = config["rootfs"]["diff_ids"]
    lines = cli("scan", DEMO, "--quiet").out.splitlines()
    assert lines[0].startswith("Scanned secretscan/demo:1.0")
    assert lines[1] == f"  image ID (config digest): {config_digest}"
    at_layer = [ln for ln in lines if re.match(r"\s+at .*?: layer \d+: ", ln)]
    assert len(at_layer) == 6, at_layer  # the demo's six places in files
    for line in at_layer:
        layer = int(re.search(r": layer (\d+): ", line).group(1))  # type: ignore[union-attr]
        assert line.endswith(f" [layer {diff_ids[layer][:19]}…]"), line


def test_text_report_names_the_layer_each_build_step_created(cli) -> None:
    _, config = _demo_archive()
    diff_ids, created = config["rootfs"]["diff_ids"], _created_layers(config)
    lines = cli("scan", DEMO, "--quiet").out.splitlines()
    steps = [ln for ln in lines if re.match(r"\s+at .*?: history\[\d+\]", ln)]
    made = set()
    for line in steps:
        index = int(re.search(r"history\[(\d+)\]", line).group(1))  # type: ignore[union-attr]
        if config["history"][index].get("empty_layer"):
            assert line.endswith(" [no layer: metadata-only step]"), line
        else:
            layer = created[index]
            assert line.endswith(f" [created layer {layer}, {diff_ids[layer][:19]}…]"), line
            made.add(layer)
    clone = next(i for i, h in enumerate(config["history"]) if "git clone" in h["created_by"])
    assert created[clone] in made, "the RUN line that leaked a token is not tied to its layer"
    assert len(steps) == 5 and any("metadata-only" in ln for ln in steps)


def test_text_report_names_both_digests_of_an_image_with_a_manifest(cli, tmp_path: Path) -> None:
    token, npm = secretgen.github_pat(), secretgen.npm_token()
    spec = ImageSpec(
        [
            Layer([Entry("etc/hostname", b"build\n")], "ADD rootfs.tar /"),
            EmptyStep(f"ARG NPM_TOKEN={npm}"),
            Layer([Entry("src/README", b"x\n")], f"RUN git clone https://x-access-token:{token}@github.com/o/r /src"),
        ]
    )
    [manifest_digest] = write_oci_layout(tmp_path / "layout", spec)
    config_digest = "sha256:" + hashlib.sha256(build_config(spec)).hexdigest()
    diff_ids = json.loads(build_config(spec))["rootfs"]["diff_ids"]
    text = cli("scan", f"oci:{tmp_path / 'layout'}", "--quiet").out
    assert f"  image ID (config digest): {config_digest}\n  manifest digest: {manifest_digest}\n" in text
    [run] = [ln for ln in text.splitlines() if "history[2].created_by" in ln]
    assert run.endswith(f" [created layer 1, {diff_ids[1][:19]}…]"), run
    [arg] = [ln for ln in text.splitlines() if "history[1].created_by" in ln]
    assert arg.endswith(" [no layer: metadata-only step]"), arg
    report = cli("scan", f"oci:{tmp_path / 'layout'}", "-f", "json", "--quiet").report
    assert (report["images"][0]["digest"], report["images"][0]["config_digest"]) == (manifest_digest, config_digest)


def test_json_history_locations_name_the_layer_their_step_created(cli) -> None:
    config_digest, config = _demo_archive()
    diff_ids, created = config["rootfs"]["diff_ids"], _created_layers(config)
    report = cli("scan", DEMO, "--format", "json", "--quiet").report
    assert report["images"][0]["config_digest"] == config_digest
    steps = 0
    for loc in (loc for f in report["findings"] for loc in f["locations"]):
        m = re.fullmatch(r"history\[(\d+)\]\.created_by", loc["path"])
        if m is None:
            assert loc["history_step"] is None, loc["path"]
            continue
        steps += 1
        index = int(m.group(1))
        layer = created.get(index)
        assert loc["history_step"] == {
            "index": index,
            "layer_index": layer,
            "layer_digest": diff_ids[layer] if layer is not None else None,
            "empty_layer": bool(config["history"][index].get("empty_layer")),
        }
    assert steps == 5


def test_a_history_that_does_not_line_up_with_the_layers_names_no_layer() -> None:
    """A squashed image keeps three build steps and one layer: no step is said to have made it."""
    raw = {
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "ab" * 32]},
        "history": [{"created_by": "ADD rootfs.tar /"}, {"created_by": "RUN make"}, {"created_by": "RUN make install"}],
    }
    config = ImageConfig.parse(json.dumps(raw).encode(), "squashed")
    for entry in config.history:
        loc = Location("squashed", None, None, None, f"history[{entry.index}].created_by", exposure=Exposure.CONFIG)
        loc = replace(loc, history_step=config.history_step(entry))
        assert place(loc).endswith(" [layer not known: the history does not line up with the layers]")


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


def managed_image(
    tmp_path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, str], list[str]]:
    """An image with three tokens, and two stores that know them: the GitHub token is current in
    Vault and in AWS Secrets Manager, the npm token only a former value in AWS, the Slack token in
    neither. Returns the image, the tokens, and the scan options that ask both stores."""
    tokens = {"github": secretgen.github_pat(), "npm": secretgen.npm_token(), "slack": secretgen.slack_bot_token()}
    vault.put("app/github", {"token": tokens["github"]})
    monkeypatch.setenv("VAULT_TOKEN", vault.token([vault.read_only()]))
    sm = boto3.client("secretsmanager")  # the moto_endpoint fixture points boto3 at moto
    sm.create_secret(Name="app/github", SecretString=tokens["github"])
    sm.create_secret(Name="ci/npm", SecretString=tokens["npm"])
    sm.put_secret_value(SecretId="ci/npm", SecretString=secretgen.npm_token())
    image = tmp_path / "managed.tar"
    files = {"app/.env": f"GITHUB_TOKEN={tokens['github']}\nNPM_TOKEN={tokens['npm']}\nSLACK={tokens['slack']}\n"}
    write_docker_archive(
        image, [ImageSpec([Layer([Entry(p, d.encode()) for p, d in files.items()])], repo_tags=["t/a:1"])]
    )
    return image, tokens, ["--vault", "--vault-kv", vault.mount, "--aws-secrets"]


def test_every_format_shows_the_aws_verdict_next_to_the_vault_one(
    cli, vault: Vault, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    image, tokens, stores = managed_image(tmp_path, vault, monkeypatch)
    report = cli("scan", image, *stores, "-f", "json", "-q").report
    jsonschema.validate(report, SCHEMA)
    by_rule = {f["rule_id"].split(".")[0]: f for f in report["findings"]}
    github, npm, slack = by_rule["github"], by_rule["npm"], by_rule["slack"]
    assert [(m["store"], m["status"]) for m in github["managed"]] == [("vault", "current"), ("aws-secrets", "current")]
    assert github["vault"] == {
        "status": "current",
        "path": f"{vault.mount}/app/github#token",
        "version": 1,
        "current_version": 1,
    }
    assert [(m["store"], m["status"], m["stage"]) for m in npm["managed"]] == [
        ("vault", "unmanaged", None),
        ("aws-secrets", "former", "AWSPREVIOUS"),
    ]
    assert [m["status"] for m in slack["managed"]] == ["unmanaged", "unmanaged"]

    text = cli("scan", image, *stores, "-q").out.splitlines()
    vault_line = text.index(f"    vault: current {vault.mount}/app/github#token version 1 (current 1)")
    assert text[vault_line + 1].startswith("    aws-secrets: current app/github (AWSCURRENT, version ")
    assert text[vault_line + 1].endswith(github["managed"][1]["secret"]), "the ARN"

    sarif = json.loads(cli("scan", image, *stores, "-f", "sarif", "-q").out)
    props = {r["ruleId"].split(".")[0]: r["properties"] for r in sarif["runs"][0]["results"]}
    assert (props["github"]["vault"], props["github"]["awsSecrets"]) == ("current", "current")
    assert props["github"]["awsSecretsArn"] == github["managed"][1]["secret"]
    assert (props["npm"]["vault"], props["npm"]["awsSecrets"], props["npm"]["awsSecretsStage"]) == (
        "unmanaged",
        "former",
        "AWSPREVIOUS",
    )

    junit = cli("scan", image, *stores, "-f", "junit", "-q").out
    assert "vault: current" in junit and "aws-secrets: former ci/npm (AWSPREVIOUS" in junit
    for output in (json.dumps(report), "\n".join(text), json.dumps(sarif), junit):
        assert not any(value in output for value in tokens.values())
