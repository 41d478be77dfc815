"""Exit codes and bad input, as a CI gate sees them."""

from __future__ import annotations

import gzip
import io
import json
import random
import string
import tarfile
from pathlib import Path

import pytest
import secretgen
from conftest import REPO
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout

DEMO = REPO / "fixtures" / "demo-image.tar"


def _image(tmp_path: Path, *layers: Layer, name: str = "img.tar") -> Path:
    path = tmp_path / name
    write_docker_archive(path, [ImageSpec(steps=list(layers), repo_tags=["t/app:1"])])
    return path


def test_exit_0_when_clean(cli, tmp_path: Path) -> None:
    image = _image(tmp_path, Layer([Entry("app/main.py", b"print('hello')\n")]))
    result = cli("scan", image, "--quiet")
    assert result.code == 0 and "No secrets found." in result.out


def test_exit_1_on_findings_and_fail_on_threshold(cli, tmp_path: Path) -> None:
    image = _image(
        tmp_path, Layer([Entry("app/.npmrc", f"//registry.npmjs.org/:_authToken={secretgen.npm_token()}\n".encode())])
    )
    assert cli("scan", image, "--quiet").code == 1
    report = cli("scan", image, "--format", "json", "--quiet").report
    severities = {f["severity"] for f in report["findings"]}
    order = ["info", "low", "medium", "high", "critical"]
    top = max(severities, key=order.index)
    above = order[order.index(top) + 1] if top != "critical" else None
    assert cli("scan", image, "--fail-on", top, "--quiet").code == 1
    if above:
        assert cli("scan", image, "--fail-on", above, "--quiet").code == 0
    assert cli("scan", image, "--fail-on", "none", "--quiet").code == 0


def test_exit_3_only_with_fail_on_incomplete(cli, tmp_path: Path) -> None:
    deep = b"plain"
    for _ in range(3):
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            gz.write(deep)
        deep = buf.getvalue()
    image = _image(tmp_path, Layer([Entry("data.gz", deep)]))
    (tmp_path / "cfg.yaml").write_text("limits:\n  max_nested_depth: 1\n")
    assert cli("scan", image, "--config", tmp_path / "cfg.yaml", "--quiet").code == 0
    assert cli("scan", image, "--config", tmp_path / "cfg.yaml", "--fail-on-incomplete", "--quiet").code == 3


@pytest.mark.parametrize("bad", ["missing", "not-an-image", "empty-tar"])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, bad: str) -> None:
    path = tmp_path / "input"
    if bad == "not-an-image":
        path.write_bytes(b"this is not an image\n" * 10)
    elif bad == "empty-tar":
        with tarfile.open(path, "w") as tar:
            tar.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    result = cli("scan", path, "--quiet")
    assert result.code == 2
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("secretscan: error:"), result.err
    assert "Traceback" not in result.err and result.out == ""


def test_missing_blob_is_exit_2_and_keeps_the_other_layers_findings(cli, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    token = secretgen.github_pat()
    write_oci_layout(
        layout, [ImageSpec(steps=[Layer([Entry("a.txt", f"{token}\n".encode())]), Layer([Entry("b.txt", b"b")])])]
    )
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer_digest = json.loads((layout / "blobs/sha256" / manifest).read_text())["layers"][1]["digest"].split(":")[1]
    (layout / "blobs/sha256" / layer_digest).unlink()
    result = cli("scan", f"oci:{layout}", "--quiet", "--format", "json")
    assert result.code == 2 and "missing blob" in result.err and len(result.err.strip().splitlines()) == 1
    assert [f["locations"][0]["path"] for f in result.report["findings"]] == ["/a.txt"]
    assert not result.report["complete"]


def test_truncated_layer_keeps_findings_from_the_rest_and_exits_2(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    filler = secretgen.password().encode() * 20000
    image = _image(
        tmp_path,
        Layer([Entry("app/token.txt", f"token: {token}\n".encode())], compression="gzip"),
        Layer([Entry("big.bin", filler)]),
    )
    with tarfile.open(image) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members["manifest.json"])
    last = manifest[0]["Layers"][-1]
    members[last] = members[last][: len(members[last]) // 2]
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = cli("scan", broken, "--format", "json", "--quiet")
    assert result.code == 2
    report = result.report
    assert any(f["locations"][0]["path"] == "/app/token.txt" for f in report["findings"])
    assert report["errors"] and "layer 1" in report["errors"][0] and not report["complete"]
    assert "secretscan: error:" in result.err


def test_truncated_gzip_layer_in_oci_layout(cli, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    write_oci_layout(
        layout,
        [ImageSpec(steps=[Layer([Entry("big.txt", secretgen.password().encode() * 50000)], compression="gzip")])],
    )
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer = json.loads((layout / "blobs/sha256" / index).read_text())["layers"][0]["digest"].split(":")[1]
    blob = layout / "blobs/sha256" / layer
    blob.write_bytes(blob.read_bytes()[:-100])
    result = cli("scan", f"oci:{layout}", "--quiet")
    assert result.code == 2
    assert "unreadable layer" in result.err or "does not match its digest" in result.err


def test_tampered_layer_fails_digest_check(cli, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    write_oci_layout(layout, [ImageSpec(steps=[Layer([Entry("a.txt", b"original\n")], compression="none")])])
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer = json.loads((layout / "blobs/sha256" / index).read_text())["layers"][0]["digest"].split(":")[1]
    blob = layout / "blobs/sha256" / layer
    blob.write_bytes(blob.read_bytes().replace(b"original", b"tampered"))
    result = cli("scan", f"oci:{layout}", "--quiet")
    assert result.code == 2 and "does not match its digest" in result.err


def test_unknown_severity_and_unknown_transport_are_usage_errors(cli) -> None:
    assert cli("scan", DEMO, "--fail-on", "severe").code == 2
    result = cli("scan", "./nosuch.tar")
    assert result.code == 2 and "no such file" in result.err
    result = cli("scan", "Not An Image!")
    assert result.code == 2 and "neither a file nor an image name" in result.err


def test_rules_check_passes_on_the_shipped_pack(cli) -> None:
    result = cli("rules", "check")
    assert result.code == 0, result.out
    assert "0 problems" in result.out


def test_rules_check_refuses_a_catastrophically_backtracking_regex(cli, tmp_path: Path) -> None:
    """A hostile file could feed such a regex the input that stalls it for hours: the rule pack
    check catches the regex before it ships."""
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = {
        "id": "test.redos",
        "name": "A regex with nested quantifiers",
        "pattern": "token=((?:[a-z]+)+)!",
        "keywords": ["token="],
        "severity": "low",
        "examples": ["token=" + "".join(random.choices(string.ascii_lowercase, k=14)) + "!"],
        "negative_examples": ["token=b"],
    }
    (rules / "redos.yaml").write_text(json.dumps({"rules": [rule]}))  # JSON is YAML
    result = cli("rules", "check", "--rules", rules)
    assert result.code == 2
    assert "test.redos" in result.out and "backtracks catastrophically" in result.out
