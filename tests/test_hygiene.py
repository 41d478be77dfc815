"""secretscan must never become the leak: no plaintext secret in any output, log line, error
message, cache or temporary file unless the user asked for ``--show-secrets``."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
import secretgen
from conftest import own_rule_dir
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout

from secretscan.report import OutputFormat


def _plants() -> dict[str, str]:
    return {
        "file": secretgen.github_pat(),
        "env": secretgen.stripe_live_secret(),
        "history": secretgen.slack_bot_token(),
        "nested": secretgen.gitlab_pat(),
        "deleted": secretgen.npm_token(),
    }


def _image(tmp: Path, plants: dict[str, str]) -> Path:
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("BOOT-INF/classes/application.properties", f"gitlab.token={plants['nested']}\n")
    spec = ImageSpec(
        [
            Layer([Entry("app/config.yml", f"github_token: {plants['file']}\n".encode())], "COPY config.yml /app/"),
            Layer([Entry("app/app.jar", jar.getvalue())], "COPY app.jar /app/"),
            Layer([Entry("root/.npmrc", f"//registry.npmjs.org/:_authToken={plants['deleted']}\n".encode())], "COPY"),
            EmptyStep(f"/bin/sh -c #(nop)  ENV STRIPE_KEY={plants['env']}"),
            Layer(
                [Entry("root/.npmrc", kind="whiteout")],
                f"/bin/sh -c curl -H 'Authorization: Bearer {plants['history']}' https://example.invalid && rm /root/.npmrc",
            ),
        ],
        env=[f"STRIPE_KEY={plants['env']}"],
    )
    path = tmp / "image.tar"
    write_docker_archive(path, spec)
    return path


def _assert_clean(text: str, plants: dict[str, str], where: str) -> None:
    for name, secret in plants.items():
        assert secret not in text, f"the {name} secret leaked into {where}"


@pytest.mark.parametrize("fmt", [f.value for f in OutputFormat])
def test_no_plaintext_in_reports_logs_or_progress(cli, tmp_path: Path, monkeypatch, fmt: str) -> None:
    plants = _plants()
    image = _image(tmp_path, plants)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    result = cli("scan", image, "-f", fmt, "-v")  # debug logging on
    assert result.code == 1, result.err
    _assert_clean(result.out, plants, f"the {fmt} report")
    _assert_clean(result.err, plants, "stderr (logs, progress)")
    assert "ssf1:" in result.out or fmt == "sarif"
    assert list(private_tmp.iterdir()) == [], "the scan left temporary files"


def test_every_planted_secret_is_found_so_the_hygiene_test_means_something(cli, tmp_path: Path) -> None:
    plants = _plants()
    report = cli("scan", _image(tmp_path, plants), "-f", "json", "-q", "--show-secrets").report
    found = {f["secret"] for f in report["findings"]}
    assert set(plants.values()) <= found


def test_no_plaintext_in_errors_about_broken_layers(cli, tmp_path: Path) -> None:
    plants = _plants()
    layout = tmp_path / "layout"
    write_oci_layout(layout, ImageSpec([Layer([Entry("app/t.txt", f"token: {plants['file']}\n".encode())])]))
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer = next(p for p in blobs if p.read_bytes()[:2] == b"\x1f\x8b")
    data = gzip.decompress(layer.read_bytes())
    layer.write_bytes(gzip.compress(data)[:-20])  # truncated, and no longer its digest
    result = cli("scan", f"oci:{layout}", "-f", "json", "-q", "-v")
    assert result.code == 2
    _assert_clean(result.out + result.err, plants, "the error output")


def test_no_plaintext_in_caches(cli, tmp_path: Path, monkeypatch) -> None:
    plants = _plants()
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    rules = own_rule_dir(tmp_path)  # a rule set of the user's own: compiled and cached, not shipped
    assert cli("scan", _image(tmp_path, plants), "-q", "-f", "json", "--rules", rules).code == 1
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert {p.name.split("-")[0] for p in files} == {"hyperscan", "published", "scope"}, "expected the compiled caches"
    for path in files:
        data = path.read_bytes()
        for name, secret in plants.items():
            assert secret.encode() not in data, f"the {name} secret is in cache file {path.name}"


def test_passwords_are_never_taken_from_the_command_line(cli, tmp_path: Path) -> None:
    image = _image(tmp_path, _plants())
    refused = cli("scan", image, "--password", "hunter2")
    assert refused.code == 2 and "hunter2" not in refused.out
    no_stdin = cli("scan", "docker://127.0.0.1:9/x:1", "--username", "u")
    assert no_stdin.code == 2 and "--password-stdin" in no_stdin.err
