"""Every input kind gives the same findings for the same image (source conformance)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import secretgen
from conftest import scan_json
from imagebuilder import (
    EmptyStep,
    Entry,
    ImageSpec,
    Layer,
    layer_tar,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
    write_rootfs,
)

KEYS = ("layer_index", "path", "line", "exposure", "removed_in_layer")


def _spec(tag: str = "t/app:1", arch: str = "amd64") -> tuple[ImageSpec, dict[str, str]]:
    secrets = {"kept": secretgen.github_pat(), "deleted": secretgen.slack_bot_token(), "env": secretgen.gitlab_pat()}
    spec = ImageSpec(
        steps=[
            Layer(
                [Entry("app/", kind="dir"), Entry("app/token.txt", f"GITHUB={secrets['kept']}\n".encode())],
                created_by="COPY a /app",
            ),
            EmptyStep("ENV MODE=prod"),
            Layer(
                [Entry("app/slack.txt", f"\n\nslack {secrets['deleted']}\n".encode())],
                created_by="COPY b /app",
                compression="zstd",
            ),
            Layer([Entry("app/slack.txt", kind="whiteout")], created_by="RUN rm /app/slack.txt", compression="none"),
        ],
        env=[f"GL={secrets['env']}"],
        repo_tags=[tag],
        architecture=arch,
    )
    return spec, secrets


def _rows(report: dict) -> set[tuple]:
    return {(f["rule_id"],) + tuple(loc[k] for k in KEYS) for f in report["findings"] for loc in f["locations"]}


@pytest.fixture
def spec():
    return _spec()


def test_archive_layouts_and_oci_give_identical_findings(cli, tmp_path: Path, spec) -> None:
    image, _ = spec
    write_docker_archive(tmp_path / "legacy.tar", [image], style="legacy")
    write_docker_archive(tmp_path / "docker25.tar", [image], style="oci")
    write_oci_layout(tmp_path / "layout", [image], ref_names=["1"])
    write_oci_archive(tmp_path / "layout.tar", [image], ref_names=["1"])
    refs = [
        f"docker-archive:{tmp_path / 'legacy.tar'}",
        f"docker-archive:{tmp_path / 'docker25.tar'}",
        f"oci:{tmp_path / 'layout'}:1",
        f"oci-archive:{tmp_path / 'layout.tar'}:1",
        tmp_path / "legacy.tar",
        tmp_path / "docker25.tar",
        tmp_path / "layout",
        tmp_path / "layout.tar",
    ]
    results = [_rows(scan_json(cli, ref)) for ref in refs]
    assert len(results[0]) == 3
    assert all(r == results[0] for r in results), refs
    removed = [r for r in results[0] if r[4] == "removed"]
    assert len(removed) == 1 and removed[0][5] == 2


def test_dir_source_sees_the_final_filesystem(cli, tmp_path: Path, spec) -> None:
    image, secrets = spec
    root = tmp_path / "rootfs"
    write_rootfs(root, image.layers)
    (root / "app" / "escape").symlink_to("/etc")
    report = scan_json(cli, f"dir:{root}")
    assert {(loc["path"], loc["line"]) for loc in [loc for f in report["findings"] for loc in f["locations"]]} == {
        ("/app/token.txt", 1)
    }
    assert scan_json(cli, root)["findings"] == report["findings"]


def test_multi_image_archive_scans_all_or_the_one_named(cli, tmp_path: Path) -> None:
    a, _ = _spec("t/a:1")
    b, _ = _spec("t/b:2")
    path = tmp_path / "two.tar"
    write_docker_archive(path, [a, b])
    both = scan_json(cli, f"docker-archive:{path}")
    assert {img["name"] for img in both["images"]} == {"t/a:1", "t/b:2"}
    only_b = scan_json(cli, f"docker-archive:{path}:t/b:2")
    assert [img["name"] for img in only_b["images"]] == ["t/b:2"]
    assert {loc["image"] for loc in [loc for f in only_b["findings"] for loc in f["locations"]]} == {"t/b:2"}
    by_index = scan_json(cli, f"docker-archive:{path}:@0")
    assert [img["name"] for img in by_index["images"]] == ["t/a:1"]
    missing = cli("scan", f"docker-archive:{path}:t/c:3", "--quiet")
    assert missing.code == 2 and "t/a:1" in missing.err


def test_multi_platform_oci_index_scans_every_platform(cli, tmp_path: Path) -> None:
    amd, _ = _spec(arch="amd64")
    arm, _ = _spec(arch="arm64")
    write_oci_layout(tmp_path / "multi", [amd, arm], ref_names=["1"], index=True)
    report = scan_json(cli, f"oci:{tmp_path / 'multi'}")
    assert sorted(img["platform"] for img in report["images"]) == ["linux/amd64", "linux/arm64"]
    assert len(report["findings"]) == 6


def test_shared_secret_across_images_is_one_finding(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    specs = [ImageSpec(steps=[Layer([Entry("t.txt", f"{token}\n".encode())])], repo_tags=[f"t/{n}:1"]) for n in "ab"]
    write_docker_archive(tmp_path / "two.tar", specs)
    report = scan_json(cli, tmp_path / "two.tar")
    assert len(report["findings"]) == 1
    assert {loc["image"] for loc in report["findings"][0]["locations"]} == {"t/a:1", "t/b:1"}


def test_docker_archive_layers_behind_symbolic_and_hard_links(cli, tmp_path: Path) -> None:
    """docker save (Engine 25+) stores each layer once under blobs/ and points the classic
    ``<id>/layer.tar`` names at it with symbolic links; other tools write hard links. Both are
    followed inside the archive, and the image is read as if the layers were stored there."""
    a, b = secretgen.github_pat(), secretgen.github_pat()
    first = layer_tar(Layer([Entry("app/a.txt", f"token: {a}\n".encode())]))
    second = layer_tar(Layer([Entry("app/b.txt", f"token: {b}\n".encode())]))
    digests = [hashlib.sha256(blob).hexdigest() for blob in (first, second)]
    config = json.dumps(
        {
            "os": "linux",
            "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in digests]},
        }
    ).encode()
    config_name = f"blobs/sha256/{hashlib.sha256(config).hexdigest()}"
    manifest = [{"Config": config_name, "Layers": ["one/layer.tar", "two/layer.tar"], "RepoTags": ["t/links:1"]}]
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    for name, data in (
        ("manifest.json", json.dumps(manifest).encode()),
        (config_name, config),
        (f"blobs/sha256/{digests[0]}", first),
        (f"blobs/sha256/{digests[1]}", second),
    ):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        members.append((info, data))
    for name, kind, target in (
        ("one/layer.tar", tarfile.SYMTYPE, f"../blobs/sha256/{digests[0]}"),
        ("two/layer.tar", tarfile.LNKTYPE, f"blobs/sha256/{digests[1]}"),
    ):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        members.append((info, b""))
    path = tmp_path / "linked.tar"
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    report = scan_json(cli, f"docker-archive:{path}", "--show-secrets")
    assert report["errors"] == [] and report["skipped"] == []
    where = {f["secret"]: [(loc["layer_index"], loc["path"]) for loc in f["locations"]] for f in report["findings"]}
    assert where == {a: [(0, "/app/a.txt")], b: [(1, "/app/b.txt")]}


def test_oci_layout_listing_one_image_under_two_names(cli, tmp_path: Path, spec) -> None:
    """skopeo and buildx add a tag to index.json by listing the same manifest again: the image is
    scanned once, and either name selects it."""
    image, _ = spec
    layout = tmp_path / "layout"
    write_oci_layout(layout, [image], ref_names=["1.0"])
    index = json.loads((layout / "index.json").read_text())
    again = {**index["manifests"][0], "annotations": {"org.opencontainers.image.ref.name": "latest"}}
    index["manifests"].append(again)
    (layout / "index.json").write_text(json.dumps(index))
    both = scan_json(cli, f"oci:{layout}")
    assert [img["name"] for img in both["images"]] == ["1.0"]
    latest = scan_json(cli, f"oci:{layout}:latest")
    assert [img["name"] for img in latest["images"]] == ["latest"]
    assert _rows(latest) == _rows(both)
    missing = cli("scan", f"oci:{layout}:2.0", "--quiet")
    assert missing.code == 2 and "1.0" in missing.err and "latest" in missing.err
