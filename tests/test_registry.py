"""Scanning straight from a real registry (Debian's docker-registry 2.8 on loopback): the same
findings as from the archive under every auth mode, multi-arch selection, retries, digest checks,
safe redirects, ECR credentials through boto3 (moto), and credentials kept off argv and output."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest
import servers
from conftest import REPO, findings_key, scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_oci_layout

pytestmark = pytest.mark.servers
DEMO = REPO / "fixtures" / "demo-image.tar"


@pytest.fixture(scope="module")
def archive_findings(tmp_path_factory: pytest.TempPathFactory) -> list:
    from secretscan.cli import main

    out = tmp_path_factory.mktemp("arc") / "demo.json"
    assert main(["scan", str(DEMO), "-q", "-f", "json", "--show-secrets", "-o", str(out)]) == 1
    return findings_key(json.loads(out.read_text()))


def _with_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


@pytest.mark.parametrize("mode", ["none", "htpasswd", "token"])
def test_demo_from_registry_has_the_archive_findings(
    request: pytest.FixtureRequest,
    cli,
    monkeypatch,
    unique_repo: str,
    archive_findings: list,
    mode: str,
    tmp_path: Path,
) -> None:
    info = request.getfixturevalue(f"registry_{mode}")
    digest = servers.push(info, DEMO, f"{unique_repo}:1.0")
    extra: list[str] = []
    if mode == "htpasswd":
        _with_stdin(monkeypatch, info.password + "\n")
        extra = ["--username", info.username, "--password-stdin"]
    elif mode == "token":
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(info.write_authfile(tmp_path / "auth.json")))
    report = scan_json(cli, f"docker://{info.host}/{unique_repo}:1.0", "--show-secrets", *extra)
    assert findings_key(report) == archive_findings
    assert report["images"][0]["digest"] == digest and report["complete"]
    if mode == "htpasswd":
        _with_stdin(monkeypatch, info.password + "\n")
    pinned = scan_json(cli, f"docker://{info.host}/{unique_repo}@{digest}", "--show-secrets", *extra)
    assert findings_key(pinned) == archive_findings


def test_docker_config_auths_and_credential_helpers(
    cli, monkeypatch, registry_htpasswd, unique_repo: str, tmp_path: Path
) -> None:
    info = registry_htpasswd
    servers.push(info, DEMO, f"{unique_repo}:1.0")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    (config_dir / "config.json").write_text(json.dumps(info.auth_json()))
    assert len(scan_json(cli, f"docker://{info.host}/{unique_repo}:1.0")["findings"]) == 10

    # a credential helper, spoken to with the real protocol: server on stdin, JSON on stdout
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-testvault"
    answer = json.dumps({"ServerURL": info.host, "Username": info.username, "Secret": info.password})
    helper.write_text(
        f"#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = '{info.host}' ] && echo '{answer}'\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {info.host: "testvault"}}))
    assert len(scan_json(cli, f"docker://{info.host}/{unique_repo}:1.0")["findings"]) == 10
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "testvault"}))  # the default store
    assert len(scan_json(cli, f"docker://{info.host}/{unique_repo}:1.0")["findings"]) == 10


def test_auth_failures_are_one_line_and_never_show_credentials(
    cli, monkeypatch, registry_htpasswd, registry_token, unique_repo: str
) -> None:
    for info in (registry_htpasswd, registry_token):
        servers.push(info, DEMO, f"{unique_repo}:1.0")
        anonymous = cli("scan", f"docker://{info.host}/{unique_repo}:1.0", "-q")
        assert anonymous.code == 2 and len(anonymous.err.strip().splitlines()) == 1
        assert info.host in anonymous.err and unique_repo in anonymous.err
        wrong = "wrong-" + info.password
        _with_stdin(monkeypatch, wrong + "\n")
        refused = cli(
            "scan", f"docker://{info.host}/{unique_repo}:1.0", "-q", "--username", info.username, "--password-stdin"
        )
        assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1
        assert wrong not in refused.err + refused.out and info.password not in refused.err + refused.out


def test_password_is_never_taken_from_argv(cli, registry_htpasswd) -> None:
    result = cli("scan", f"docker://{registry_htpasswd.host}/x:1", "--username", registry_htpasswd.username, "-q")
    assert result.code == 2 and "--password-stdin" in result.err
    assert cli("scan", "docker://x/y:1", "--password", "p").code == 2  # no such option


def test_missing_tag_is_a_404_naming_registry_and_repository(cli, registry_none, unique_repo: str) -> None:
    servers.push(registry_none, DEMO, f"{unique_repo}:1.0")
    result = cli("scan", f"docker://{registry_none.host}/{unique_repo}:2.0", "-q")
    assert result.code == 2 and "404" in result.err and unique_repo in result.err and registry_none.host in result.err


def _two_platform_layout(tmp_path: Path) -> Path:
    from tarfile import open as open_tar

    with open_tar(DEMO) as tar:  # the demo's own layers, re-wrapped per platform
        manifest = json.loads(tar.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest["Config"]).read())  # type: ignore[union-attr]
        blobs = [tar.extractfile(name).read() for name in manifest["Layers"]]  # type: ignore[union-attr]
    steps: list = []
    layers = iter(blobs)
    for entry in config["history"]:
        if entry.get("empty_layer"):
            from imagebuilder import EmptyStep

            steps.append(EmptyStep(entry["created_by"]))
        else:
            steps.append(_layer_from_tar(next(layers), entry["created_by"]))
    specs = []
    for arch in ("amd64", "arm64"):
        cfg = config["config"]
        specs.append(
            ImageSpec(
                steps=steps,
                env=cfg.get("Env") or [],
                labels=cfg.get("Labels") or {},
                cmd=cfg.get("Cmd"),
                architecture=arch,
            )
        )
    layout = tmp_path / "multi"
    write_oci_layout(layout, specs, ref_names=["1.0"], index=True)
    return layout


def _layer_from_tar(blob: bytes, created_by: str) -> Layer:
    import tarfile

    entries = []
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for m in tar:
            if m.isdir():
                entries.append(Entry(m.name, kind="dir", mode=m.mode))
            elif m.name.rsplit("/", 1)[-1].startswith(".wh."):
                parent, base = m.name.rsplit("/", 1)
                entries.append(Entry(f"{parent}/{base[4:]}", kind="whiteout"))
            else:
                entries.append(Entry(m.name, tar.extractfile(m).read(), mode=m.mode))  # type: ignore[union-attr]
    return Layer(entries, created_by=created_by)


def test_multi_arch_index(cli, registry_none, unique_repo: str, tmp_path: Path, archive_findings: list) -> None:
    layout = _two_platform_layout(tmp_path)
    servers.push(registry_none, layout, f"{unique_repo}:1.0", all_platforms=True)
    ref = f"docker://{registry_none.host}/{unique_repo}:1.0"
    both = scan_json(cli, ref, "--all-platforms", "--show-secrets")
    assert sorted(i["platform"] for i in both["images"]) == ["linux/amd64", "linux/arm64"]
    arm = scan_json(cli, ref, "--platform", "linux/arm64", "--show-secrets")
    assert [i["platform"] for i in arm["images"]] == ["linux/arm64"]
    assert findings_key(arm) == archive_findings
    host_default = scan_json(cli, ref)
    assert [i["platform"] for i in host_default["images"]] == ["linux/amd64"]
    missing = cli("scan", ref, "--platform", "windows/amd64", "-q")
    assert missing.code == 2 and "linux/amd64, linux/arm64" in missing.err and "--all-platforms" in missing.err


def test_retries_after_429_then_succeeds(cli, registry_none, unique_repo: str) -> None:
    servers.push(registry_none, DEMO, f"{unique_repo}:1.0")
    with servers.flaky_proxy(registry_none.host, fail_first=2, status=429, retry_after="1") as proxy:
        report = scan_json(cli, f"docker://{proxy.host}/{unique_repo}:1.0")
        assert proxy.failed == 2
    assert len(report["findings"]) == 10 and report["complete"]


def test_tampered_blob_is_rejected_with_a_digest_error(cli, registry_none, unique_repo: str) -> None:
    servers.push(registry_none, DEMO, f"{unique_repo}:1.0")
    ok = scan_json(cli, f"docker://{registry_none.host}/{unique_repo}:1.0")
    layer = next(
        loc["layer_digest"] for f in ok["findings"] for loc in f["locations"] if loc["path"] == "/root/.ssh/id_rsa"
    )
    manifest = json.loads(
        __import__("requests")
        .get(
            f"{registry_none.url}/v2/{unique_repo}/manifests/1.0",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        .content
    )
    config = json.loads(
        __import__("requests")
        .get(f"{registry_none.url}/v2/{unique_repo}/blobs/{manifest['config']['digest']}", timeout=10)
        .content
    )
    blob = manifest["layers"][config["rootfs"]["diff_ids"].index(layer)]["digest"]
    with servers.flaky_proxy(registry_none.host, fail_first=0, tamper_blob=blob) as proxy:
        result = cli("scan", f"docker://{proxy.host}/{unique_repo}:1.0", "-q")
    assert result.code == 2 and "does not match its digest" in result.err


def test_blob_redirects_do_not_carry_the_registry_authorization(
    cli, monkeypatch, registry_htpasswd, unique_repo: str
) -> None:
    info = registry_htpasswd
    servers.push(info, DEMO, f"{unique_repo}:1.0")
    with servers.flaky_proxy(info.host, fail_first=0, redirect_blobs_to=True) as proxy:
        _with_stdin(monkeypatch, info.password + "\n")
        report = scan_json(
            cli, f"docker://{proxy.host}/{unique_repo}:1.0", "--username", info.username, "--password-stdin"
        )
        received = list(proxy.mirror.received)
    assert len(report["findings"]) == 10
    assert received, "blobs were not fetched from the redirect target"
    assert all("authorization" not in {k.lower() for k in headers} for headers in received)


def test_ecr_credentials_come_from_boto3(cli, moto_endpoint: str, tmp_path: Path, archive_findings: list) -> None:
    import boto3

    account = boto3.client("sts").get_caller_identity()["Account"]
    with servers.registry(tmp_path, auth="htpasswd", credentials=("AWS", f"{account}-auth-token")) as info:
        servers.push(info, DEMO, "team/app:1.0")
        report = scan_json(cli, f"docker://{info.host}/team/app:1.0", "--ecr-registry", info.host, "--show-secrets")
        assert findings_key(report) == archive_findings
        without = cli("scan", f"docker://{info.host}/team/app:1.0", "-q")
        assert without.code == 2 and "401" in without.err


def test_tls_registry_on_loopback_and_verification(cli, monkeypatch, tmp_path: Path, archive_findings: list) -> None:
    with servers.registry(tmp_path, auth="none", tls=True) as info:
        servers.push(info, DEMO, "tls/app:1.0")
        ref = f"docker://{info.host}/tls/app:1.0"
        # loopback, as in Docker: HTTPS without verification when the registry speaks it
        assert findings_key(scan_json(cli, ref, "--show-secrets")) == archive_findings
        refused = cli("scan", ref, "--tls-verify", "-q")
        assert refused.code == 2 and "TLS verification failed" in refused.err
        assert len(refused.err.strip().splitlines()) == 1
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(info.root / "tls.crt"))  # a private CA, the usual way
        assert findings_key(scan_json(cli, ref, "--tls-verify", "--show-secrets")) == archive_findings


def test_retries_after_dropped_connections(cli, registry_none, unique_repo: str) -> None:
    servers.push(registry_none, DEMO, f"{unique_repo}:1.0")
    with servers.flaky_proxy(registry_none.host, fail_first=2, status=0) as proxy:
        report = scan_json(cli, f"docker://{proxy.host}/{unique_repo}:1.0")
        assert proxy.failed == 2
    assert len(report["findings"]) == 10 and report["complete"]


def test_credentials_from_environment_and_retries_on_503(cli, monkeypatch, registry_htpasswd, unique_repo: str) -> None:
    servers.push(registry_htpasswd, DEMO, f"{unique_repo}:1.0")
    monkeypatch.setenv("SECRETSCAN_REGISTRY_USERNAME", registry_htpasswd.username)
    monkeypatch.setenv("SECRETSCAN_REGISTRY_PASSWORD", registry_htpasswd.password)
    with servers.flaky_proxy(registry_htpasswd.host, fail_first=1, status=503, retry_after="0") as proxy:
        report = scan_json(cli, f"docker://{proxy.host}/{unique_repo}:1.0")
        assert proxy.failed == 1
    assert len(report["findings"]) == 10


def test_identity_token_from_docker_config(cli, monkeypatch, registry_token, unique_repo: str, tmp_path: Path) -> None:
    """docker config's ``identitytoken`` is an OAuth2 refresh token: exchanged at the token service
    with grant_type=refresh_token, as Docker Hub expects."""
    info = registry_token
    servers.push(info, DEMO, f"{unique_repo}:1.0")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    entry = {
        "auth": __import__("base64").b64encode(f"{info.username}:".encode()).decode(),
        "identitytoken": info.issuer.refresh_token,
    }
    (config_dir / "config.json").write_text(json.dumps({"auths": {info.host: entry}}))
    assert len(scan_json(cli, f"docker://{info.host}/{unique_repo}:1.0")["findings"]) == 10
    granted = [r for r in info.issuer.requests if r["grant_type"] == "refresh_token" and r["status"] == 200]
    assert granted and granted[-1]["user"] == info.username


def test_bare_name_falls_back_to_the_registry(
    cli, monkeypatch, registry_none, unique_repo: str, tmp_path: Path
) -> None:
    servers.push(registry_none, DEMO, f"{unique_repo}:1.0")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    report = scan_json(cli, f"{registry_none.host}/{unique_repo}:1.0")
    assert report["target"] == f"docker://{registry_none.host}/{unique_repo}:1.0" and len(report["findings"]) == 10
    only_daemon = cli("scan", f"{registry_none.host}/{unique_repo}:1.0", "--source", "daemon", "-q")
    assert only_daemon.code == 2 and "no Docker daemon answers" in only_daemon.err
    missing = cli("scan", f"{registry_none.host}/{unique_repo}:9.9", "-q")
    assert missing.code == 2 and "404" in missing.err and "not in the local Docker daemon" in missing.err
