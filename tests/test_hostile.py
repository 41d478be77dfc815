"""Malformed and malicious images: a one-line error or a report that says what was skipped —
never a traceback, and never a file written from an image's own paths."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import secretgen
from conftest import scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_files_tar


def _manifest(config: object = "c.json", layers: object = ("l.tar",)) -> bytes:
    return json.dumps([{"Config": config, "Layers": list(layers) if isinstance(layers, tuple) else layers}]).encode()


@pytest.mark.parametrize(
    ("case", "members", "message"),
    [
        ("manifest not a list", {"manifest.json": b'{"a": 1}'}, "not a list of images"),
        ("manifest not JSON", {"manifest.json": b"\xff\xfe not json"}, "manifest.json is not valid JSON"),
        (
            "config not JSON",
            {"manifest.json": _manifest(), "c.json": b"nope", "l.tar": b""},
            "image config is not valid JSON",
        ),
        (
            "config nested 100k deep",
            {"manifest.json": _manifest(layers=()), "c.json": b"[" * 100_000},
            "nested too deeply",
        ),
        ("config of the wrong type", {"manifest.json": _manifest(config=5, layers="x")}, "needs a Config string"),
        (
            "layer that is not a tar",
            {"manifest.json": _manifest(), "c.json": b'{"rootfs": {"diff_ids": []}}', "l.tar": b"garbage" * 100},
            "unreadable layer",
        ),
    ],
)
def test_malformed_archives_are_one_line_errors(
    cli, tmp_path: Path, case: str, members: dict[str, bytes], message: str
) -> None:
    result = cli("scan", write_files_tar(tmp_path / "bad.tar", members), "-q")
    assert result.code == 2, case
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.err, case


def test_traversal_names_links_and_loops_are_labels_not_paths(cli, tmp_path: Path, monkeypatch) -> None:
    token = secretgen.github_pat()
    spec = ImageSpec(
        steps=[
            Layer(
                [
                    Entry("../../../escape.txt", f"token {token}\n".encode()),
                    Entry("/abs/file", b"x"),
                    Entry("loop-a", kind="symlink", target="loop-b"),
                    Entry("loop-b", kind="symlink", target="loop-a"),
                    Entry("dangling", kind="hardlink", target="missing"),
                ]
            )
        ]
    )
    image = tmp_path / "hostile.tar"
    write_docker_archive(image, [spec])
    before = set(Path(tmp_path).rglob("*"))
    report = scan_json(cli, image)
    assert [loc["path"] for f in report["findings"] for loc in f["locations"]] == ["/escape.txt"]
    assert set(Path(tmp_path).rglob("*")) == before, "the scan wrote files"
    assert not (tmp_path.parent / "escape.txt").exists()


def test_thousands_of_layers(cli, tmp_path: Path) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w"):
        pass
    members = {
        "manifest.json": _manifest(layers=("l.tar",) * 3000),
        "c.json": b'{"rootfs": {"diff_ids": []}}',
        "l.tar": layer.getvalue(),
    }
    report = scan_json(cli, write_files_tar(tmp_path / "many.tar", members))
    assert report["images"][0]["layers"] == 3000 and report["findings"] == []
