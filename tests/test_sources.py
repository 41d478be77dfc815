"""Every input kind gives the same findings for the same image (source conformance)."""

from __future__ import annotations

from pathlib import Path

import pytest
import secretgen
from conftest import scan_json
from imagebuilder import (
    EmptyStep,
    Entry,
    ImageSpec,
    Layer,
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
