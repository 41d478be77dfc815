"""secretscan's own container image, built from the Dockerfile by the real dockerd (on a Debian
base made with debootstrap: there is no Docker Hub here): it runs as a non-root user, scans an
archive and a registry image from inside the container, and scans clean itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import servers
from conftest import IN_CI, REPO

# The first test builds the image (base import, wheels, docker build on the vfs driver, which
# copies every layer): minutes on a loaded machine, past the suite's default timeout.
pytestmark = [pytest.mark.servers, pytest.mark.timeout(1800)]
DEMO = REPO / "fixtures" / "demo-image.tar"
TAG = "secretscan:test"


@pytest.fixture(scope="session")
def built_image(docker_daemon, tmp_path_factory: pytest.TempPathFactory) -> servers.DockerInfo:
    rootfs = Path(os.environ.get("BASE_ROOTFS") or REPO / ".tools" / "bookworm-python3.tar")
    if not rootfs.exists():
        if IN_CI:
            pytest.fail(f"{rootfs.name} is missing (make test builds it with debootstrap, as root)")
        pytest.skip(f"{rootfs.name} is missing: run `make test` as root, which builds it with debootstrap")
    servers.docker_cli(docker_daemon, "import", rootfs, "secretscan-test-base:bookworm", timeout=600)
    context = tmp_path_factory.mktemp("image-context")
    shutil.copy(REPO / "Dockerfile", context / "Dockerfile")
    shutil.copy(REPO / ".dockerignore", context / ".dockerignore")
    wheels = context / "build" / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(REPO)],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    servers.docker_cli(
        docker_daemon, "build", "--build-arg", "BASE=secretscan-test-base:bookworm", "--tag", TAG, context, timeout=900
    )
    return docker_daemon


def _run(info: servers.DockerInfo, *args: str) -> subprocess.CompletedProcess[str]:
    return servers.docker_cli(info, "run", "--rm", *args, check=False, timeout=600)


def test_image_runs_as_non_root_and_scans_an_archive(built_image: servers.DockerInfo) -> None:
    user = _run(built_image, "--entrypoint", "id", TAG, "-u")
    assert user.stdout.strip() == "10001"
    version = _run(built_image, TAG, "--version")
    assert version.returncode == 0 and version.stdout.startswith("secretscan ")
    scan = _run(
        built_image, "-v", f"{DEMO}:/work/demo.tar:ro", TAG, "scan", "/work/demo.tar", "-f", "json", "--no-progress"
    )
    assert scan.returncode == 1, scan.stderr
    assert len(json.loads(scan.stdout)["findings"]) == 10
    # a new container has an empty cache: the image carries the compiled rule set, nothing compiles
    assert "compiling the rule database" not in scan.stderr, scan.stderr


def test_image_scans_a_registry_image(built_image: servers.DockerInfo, registry_none, unique_repo: str) -> None:
    servers.push(registry_none, DEMO, f"{unique_repo}:1")
    scan = _run(
        built_image,
        "--network",
        "host",
        TAG,
        "scan",
        f"docker://{registry_none.host}/{unique_repo}:1",
        "-f",
        "json",
        "-q",
    )
    assert scan.returncode == 1, scan.stderr
    assert len(json.loads(scan.stdout)["findings"]) == 10


def test_image_scans_clean(cli, built_image: servers.DockerInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", built_image.host)
    result = cli("scan", f"docker-daemon:{TAG}", "-f", "json", "-q")
    report = result.report
    assert result.code == 0, [(f["rule_id"], f["locations"][0]["path"]) for f in report["findings"]]
    assert report["complete"], report["skipped"][:5]
    history = " ".join(d["created_by"] or "" for d in report["images"][0]["layer_details"])
    assert "USER" not in history or "10001" in history
