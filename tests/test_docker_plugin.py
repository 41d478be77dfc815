"""``docker secretscan``: the plugin answers the Docker CLI plugin protocol and scans an image of
the real dockerd, through the real docker client; the git pre-push hook refuses a leaky tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import secretgen
import servers
from conftest import IN_CI, REPO, findings_key, fingerprint_of, scan_json

pytestmark = pytest.mark.servers
DEMO = REPO / "fixtures" / "demo-image.tar"


def _docker(info: servers.DockerInfo, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The docker client as a user runs it: DOCKER_HOST and DOCKER_CONFIG from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update({"DOCKER_HOST": info.host, "DOCKER_CONFIG": str(config)})
    return subprocess.run([info.cli, *args], capture_output=True, text=True, timeout=600, env=env)


def test_docker_secretscan_end_to_end(cli, docker_daemon, tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    installed = cli("install-docker-plugin", "--dir", config / "cli-plugins")
    assert installed.code == 0, installed.err
    plugin = config / "cli-plugins" / "docker-secretscan"
    assert os.access(plugin, os.X_OK)
    metadata = json.loads(subprocess.run([plugin, "docker-cli-plugin-metadata"], capture_output=True, text=True).stdout)
    assert metadata["SchemaVersion"] == "0.1.0" and metadata["Vendor"] == "secretscan"
    listed = _docker(docker_daemon, config, "--help")
    assert "secretscan*" in listed.stdout and "Find leaked credentials" in listed.stdout, listed.stdout[-1500:]

    servers.docker_load(docker_daemon, DEMO)
    guard = _docker(docker_daemon, config, "secretscan", "--fail-on", "high", "-q", "secretscan/demo:1.0")
    assert guard.returncode == 1, guard.stderr  # the pre-push guard stops `&& docker push`
    report = _docker(
        docker_daemon, config, "secretscan", "-f", "json", "-q", "--fail-on", "none", "secretscan/demo:1.0"
    )
    assert report.returncode == 0, report.stderr
    from_plugin = json.loads(report.stdout)
    assert from_plugin["target"] == "docker-daemon:secretscan/demo:1.0"
    assert findings_key({"findings": [{**f, "secret": None} for f in from_plugin["findings"]]}) == findings_key(
        {"findings": [{**f, "secret": None} for f in scan_json(cli, DEMO)["findings"]]}
    )
    missing = _docker(docker_daemon, config, "secretscan", "-q", "no/such-image:1")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_pre_push_hook_refuses_a_leaky_tree(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        if IN_CI:
            pytest.fail("git is not installed (make test installs it with apt)")
        pytest.skip("git is not installed: run `make test` as root, which installs it")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # this venv's secretscan
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([git, "init", "-q", str(repo)], check=True)
    (repo / "Dockerfile").write_text("FROM scratch\nCOPY app.conf /\n")
    (repo / "app.conf").write_text("debug = false\n")
    hook = REPO / "hooks" / "pre-push"
    clean = subprocess.run([hook], cwd=repo, capture_output=True, text=True, env=env)
    assert clean.returncode == 0, clean.stderr
    token = secretgen.github_pat()
    (repo / "app.conf").write_text(f"token = {token}\n")
    leaky = subprocess.run([hook], cwd=repo, capture_output=True, text=True, env=env)
    assert leaky.returncode == 1 and "push refused" in leaky.stderr
    assert token not in leaky.stdout + leaky.stderr and fingerprint_of(token) in leaky.stdout


def test_pre_commit_hook_entry_runs_and_fails_on_a_secret(tmp_path: Path) -> None:
    import shlex

    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    entry = next(h for h in hooks if h["id"] == "secretscan-build-context")
    assert entry["pass_filenames"] is False and entry["language"] == "python"
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / ".env").write_text(f"GITHUB_TOKEN={secretgen.github_pat()}\n")
    argv = shlex.split(entry["entry"])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    (tmp_path / ".env").write_text("GITHUB_TOKEN=\n")
    assert subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300).returncode == 0
