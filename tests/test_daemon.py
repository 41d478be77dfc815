"""Scanning from a real Docker engine (Debian's dockerd on a private socket): loaded archives and
images built by the classic builder give the archive's findings; no daemon is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import secretgen
import servers
from conftest import REPO, findings_key, scan_json

pytestmark = pytest.mark.servers
DEMO = REPO / "fixtures" / "demo-image.tar"


@pytest.fixture
def daemon_env(docker_daemon, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKER_HOST", docker_daemon.host)
    return docker_daemon


def test_loaded_demo_has_the_archive_findings(cli, daemon_env) -> None:
    servers.docker_load(daemon_env, DEMO)
    from_daemon = scan_json(cli, "docker-daemon:secretscan/demo:1.0", "--show-secrets")
    from_archive = scan_json(cli, DEMO, "--show-secrets")
    assert findings_key(from_daemon) == findings_key(from_archive)
    assert from_daemon["images"][0]["digest"] == from_archive["images"][0]["digest"]
    bare = scan_json(cli, "secretscan/demo:1.0", "--show-secrets")  # a bare name: the daemon first
    assert bare["target"] == "docker-daemon:secretscan/demo:1.0"
    assert findings_key(bare) == findings_key(from_archive)


def test_classic_builder_image_from_scratch(cli, daemon_env, tmp_path: Path) -> None:
    token, label_token, arg_token = secretgen.github_pat(), secretgen.gitlab_pat(), secretgen.npm_token()
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "app.conf").write_text(f"[upstream]\ntoken = {token}\n")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "ARG NPM_TOKEN\n"
        "COPY app.conf /etc/app.conf\n"
        "ENV PUBLISH_TOKEN=$NPM_TOKEN\n"
        f"LABEL ci.token={label_token}\n"
    )
    servers.docker_build(daemon_env, context, "built/app:1", {"NPM_TOKEN": arg_token})
    report = scan_json(cli, "docker-daemon:built/app:1", "--show-secrets")
    where = {f["secret"]: {(loc["path"], loc["exposure"]) for loc in f["locations"]} for f in report["findings"]}
    assert ("/etc/app.conf", "final") in where[token]
    assert any(path.startswith("config.Env[") for path, _ in where[arg_token])
    assert any(path.startswith("config.Labels[") for path, _ in where[label_token])
    created = {
        loc["created_by"] for f in report["findings"] for loc in f["locations"] if loc["path"] == "/etc/app.conf"
    }
    assert len(created) == 1 and "COPY" in created.pop()
    text = cli("scan", "docker-daemon:built/app:1", "-q").out + json.dumps(scan_json(cli, "docker-daemon:built/app:1"))
    assert all(s not in text for s in (token, label_token, arg_token))


def test_missing_image_and_missing_daemon_are_one_line_errors(cli, daemon_env, monkeypatch, tmp_path: Path) -> None:
    missing = cli("scan", "docker-daemon:nothing/here:1", "-q")
    assert missing.code == 2 and "no such image" in missing.err and len(missing.err.strip().splitlines()) == 1
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    nodaemon = cli("scan", "docker-daemon:secretscan/demo:1.0", "-q")
    assert nodaemon.code == 2 and "no Docker daemon answers" in nodaemon.err and str(tmp_path) in nodaemon.err
    assert nodaemon.err.strip().endswith("none.sock (no such file or directory)"), nodaemon.err  # not urllib3's text
