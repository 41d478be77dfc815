"""``--format gitlab-secret-detection``: GitLab's secret-detection report. Every document is checked
against tests/schemas/gitlab-secret-detection-15.2.json (GitLab's published constraints for schema
15.2, stricter where GitLab accepts anything), and against the JSON report of the same scan."""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import secretgen
from conftest import REPO, fingerprint_of, gitlab_report_errors
from imagebuilder import Entry, ImageSpec, Layer, read_files_tar, write_docker_archive, write_files_tar, zip_bytes
from openbao import Vault
from test_reports import managed_image

DEMO = REPO / "fixtures" / "demo-image.tar"
GITLAB_SEVERITIES = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "info": "Info"}


def _gitlab(cli, image: Path | str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = cli("scan", image, "-f", "gitlab-secret-detection", "-q", *extra)
    assert result.code in (0, 1, 2), result.err
    doc = json.loads(result.out)
    errors = gitlab_report_errors(doc)
    assert not errors, errors
    return result.code, doc


def test_demo_report_meets_the_schema_and_holds_every_place_of_every_finding(cli) -> None:
    code, doc = _gitlab(cli, DEMO)
    assert code == 1
    assert doc["version"].startswith("15.2.") and doc["scan"]["type"] == "secret_detection"
    assert doc["scan"]["status"] == "success"
    report = cli("scan", DEMO, "-f", "json", "-q").report
    places = {
        (f["fingerprint"], loc["path"].lstrip("/"), loc.get("line")): f
        for f in report["findings"]
        for loc in f["locations"]
    }
    seen = {}
    for v in doc["vulnerabilities"]:
        key = (v["details"]["fingerprint"]["value"], v["location"]["file"], v["location"].get("start_line"))
        seen[key] = v
        finding = places[key]
        assert v["identifiers"][0]["value"] == finding["rule_id"]
        assert v["severity"] == GITLAB_SEVERITIES[finding["severity"]]
        assert v["name"] == finding["title"]
        assert "raw_source_code_extract" not in v  # it would carry the secret
    assert seen.keys() == places.keys()
    assert len({v["id"] for v in doc["vulnerabilities"]}) == len(doc["vulnerabilities"])
    # the deleted .env is reported with the layer that shipped it and the one that deleted it
    deleted = [v for v in doc["vulnerabilities"] if v["location"]["file"] == "app/.env"]
    assert deleted and all("deleted in layer" in v["details"]["exposure"]["value"] for v in deleted)
    assert all(v["details"]["build_step"]["value"].startswith("COPY") for v in deleted)


def test_ids_are_stable_across_runs(cli) -> None:
    first = [v["id"] for v in _gitlab(cli, DEMO)[1]["vulnerabilities"]]
    assert first == [v["id"] for v in _gitlab(cli, DEMO)[1]["vulnerabilities"]]


def test_the_schema_check_refuses_what_gitlab_refuses(cli) -> None:
    """The check above can fail: each of these breaks one published constraint."""
    _, doc = _gitlab(cli, DEMO)

    def broken(change) -> list[str]:
        bad = copy.deepcopy(doc)
        change(bad)
        return gitlab_report_errors(bad)

    first = 0
    assert broken(lambda d: d["vulnerabilities"][first]["location"].pop("commit"))
    assert broken(lambda d: d["vulnerabilities"][first]["location"]["commit"].update(sha=""))
    assert broken(lambda d: d["scan"].update(end_time=d["scan"]["end_time"] + "Z"))
    assert broken(lambda d: d["vulnerabilities"][first].update(severity="critical"))
    assert broken(lambda d: d["vulnerabilities"][first].update(identifiers=[]))
    assert broken(lambda d: d["vulnerabilities"][first].update(name="x" * 256))
    assert broken(lambda d: d["scan"].update(type="sast"))
    assert broken(lambda d: d["scan"]["analyzer"].pop("vendor"))
    assert broken(lambda d: d["vulnerabilities"][first]["location"].update(start_Line=1))
    assert broken(lambda d: d.pop("version"))


def _image_with_token(tmp_path: Path, labels: dict[str, str] | None = None) -> tuple[Path, str]:
    token = secretgen.github_pat()
    path = tmp_path / f"image-{secrets.token_hex(4)}.tar"
    spec = ImageSpec([Layer([Entry("app/config.env", f"GITHUB_TOKEN={token}\n".encode())])], labels=labels or {})
    write_docker_archive(path, spec)
    return path, token


def test_commit_is_the_images_revision_then_the_pipelines_then_unknown(cli, tmp_path: Path, monkeypatch) -> None:
    revision = secrets.token_hex(20)
    pipeline = secrets.token_hex(20)
    labelled, token = _image_with_token(tmp_path, {"org.opencontainers.image.revision": revision})
    unlabelled, _ = _image_with_token(tmp_path)

    _, doc = _gitlab(cli, unlabelled)
    assert {v["location"]["commit"]["sha"] for v in doc["vulnerabilities"]} == {"0000000"}
    assert any(m["level"] == "info" and "0000000" in m["value"] for m in doc["scan"]["messages"])

    monkeypatch.setenv("CI_COMMIT_SHA", pipeline)
    _, doc = _gitlab(cli, unlabelled)
    assert {v["location"]["commit"]["sha"] for v in doc["vulnerabilities"]} == {pipeline}
    assert not doc["scan"]["messages"]

    _, doc = _gitlab(cli, labelled)  # what built the image wins over the pipeline scanning it
    assert {v["location"]["commit"]["sha"] for v in doc["vulnerabilities"]} == {revision}
    assert fingerprint_of(token) in {v["details"]["fingerprint"]["value"] for v in doc["vulnerabilities"]}
    assert cli("scan", labelled, "-f", "json", "-q").report["images"][0]["revision"] == revision


def test_a_label_that_is_not_a_revision_is_not_used(cli, tmp_path: Path) -> None:
    image, _ = _image_with_token(tmp_path, {"org.opencontainers.image.revision": "see\nhttps://x.test [me]"})
    _, doc = _gitlab(cli, image)
    assert {v["location"]["commit"]["sha"] for v in doc["vulnerabilities"]} == {"0000000"}


def test_image_authored_text_cannot_become_markdown_links_or_mentions(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    name = "app/[login](https://phish.test)/@admin #1\n# heading.env"
    image = tmp_path / "hostile.tar"
    write_docker_archive(image, ImageSpec([Layer([Entry(name, f"token={token}\n".encode())])]))
    _, doc = _gitlab(cli, image)
    (v,) = doc["vulnerabilities"]
    assert token not in json.dumps(doc)
    description = v["description"]
    assert "[login]" not in description and "\\[login\\]" in description
    assert " @admin" not in description and "\\@admin" in description
    assert "\n" not in description and "\\#1" in description
    (finding,) = cli("scan", image, "-f", "json", "-q").report["findings"]
    assert v["location"]["file"] == finding["locations"][0]["path"].lstrip("/")  # data, not Markdown: as it is


def test_partial_scan_keeps_findings_and_says_what_was_missed(cli, tmp_path: Path) -> None:
    token, other = secretgen.github_pat(), secretgen.slack_bot_token()
    archive = tmp_path / "partial.tar"
    spec = ImageSpec(
        [
            Layer([Entry("app/token.txt", f"token={token}\n".encode())], compression="none"),
            Layer([Entry("app/deep.zip", zip_bytes({"inner.zip": zip_bytes({"s.txt": f"x={other}\n".encode()})}))]),
            Layer([Entry("app/later.txt", b"hello\n")], compression="none"),
        ]
    )
    write_docker_archive(archive, spec)
    code, doc = _gitlab(cli, archive, "--limit", "max_nested_depth=1")
    assert doc["scan"]["status"] == "success"
    assert any(m["level"] == "warn" and "Not fully scanned" in m["value"] for m in doc["scan"]["messages"])
    assert fingerprint_of(token) in {v["details"]["fingerprint"]["value"] for v in doc["vulnerabilities"]}

    members = read_files_tar(archive)  # now one layer blob goes missing: an error, yet the rest stays
    manifest = json.loads(members["manifest.json"])
    del members[manifest[0]["Layers"][2]]
    broken = write_files_tar(tmp_path / "broken.tar", members)
    code, doc = _gitlab(cli, broken)
    assert code == 2 and doc["scan"]["status"] == "failure"
    assert any(m["level"] == "fatal" for m in doc["scan"]["messages"])
    assert fingerprint_of(token) in {v["details"]["fingerprint"]["value"] for v in doc["vulnerabilities"]}


def test_clean_image_is_an_empty_successful_report(cli, tmp_path: Path) -> None:
    clean = tmp_path / "clean.tar"
    write_docker_archive(clean, ImageSpec([Layer([Entry("app/readme.txt", b"hello\n")])]))
    code, doc = _gitlab(cli, clean)
    assert code == 0 and doc["vulnerabilities"] == [] and doc["scan"]["status"] == "success"
    assert doc["scan"]["start_time"] <= doc["scan"]["end_time"]


@pytest.mark.parametrize("show", [False, True])
def test_the_value_is_redacted_unless_show_secrets(cli, tmp_path: Path, show: bool) -> None:
    image, token = _image_with_token(tmp_path)
    _, doc = _gitlab(cli, image, *(["--show-secrets"] if show else []))
    assert (token in json.dumps(doc)) is show


def test_details_show_the_aws_verdict_next_to_the_vault_one(
    cli, vault: Vault, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    image, tokens, stores = managed_image(tmp_path, vault, monkeypatch)
    code, doc = _gitlab(cli, image, *stores)
    assert code == 1
    details = {v["details"]["fingerprint"]["value"]: v["details"] for v in doc["vulnerabilities"]}
    github, npm = details[fingerprint_of(tokens["github"])], details[fingerprint_of(tokens["npm"])]
    assert github["vault"] == {
        "name": "Vault",
        "type": "text",
        "value": f"current {vault.mount}/app/github#token version 1 (current 1)",
    }
    assert github["aws_secrets"]["name"] == "AWS Secrets Manager"
    assert github["aws_secrets"]["value"].startswith("current app/github (AWSCURRENT, version ")
    assert npm["vault"]["value"] == "unmanaged"
    assert npm["aws_secrets"]["value"].startswith("former ci/npm (AWSPREVIOUS, version ")
    assert not any(value in json.dumps(doc) for value in tokens.values())
