"""A big uncompressed layer is cut at member boundaries and scanned by several workers: the report
is the one a single worker gives, whatever sits at the cuts (long names, links, whiteouts)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import secretgen
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

from secretscan.walk import split

PIECE = 64 * 1024


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 64 KiB, so that a test layer of a few hundred KiB is cut."""
    monkeypatch.setattr(split, "MIN_PIECE", PIECE)


def _layer(tokens: list[str]) -> list[Entry]:
    entries = []
    for i, token in enumerate(tokens):
        deep = "/".join(f"directory-with-a-long-name-{j}" for j in range(6))  # over 100 bytes: a PAX/GNU name
        entries.append(Entry(f"app/{deep}/mod{i}/settings.py", f'GITHUB_TOKEN = "{token}"\n'.encode()))
        entries.append(Entry(f"app/pad{i}.bin", bytes(range(256)) * 160))  # 40 KiB of padding per file
    entries.append(Entry("app/link-to-first", kind="hardlink", target=entries[0].path))
    return entries


def _report(cli, image: Path, jobs: int) -> dict:
    result = cli("scan", image, "-f", "json", "-q", "--fail-on", "none", "--jobs", str(jobs))
    assert result.code == 0, result.err
    report = result.report
    for key in ("started", "finished", "duration_seconds"):
        report.pop(key, None)
    return report


def test_cut_layers_give_the_report_one_worker_gives(cli, tmp_path: Path, small_pieces: None) -> None:
    tokens = [secretgen.github_pat() for _ in range(12)]
    image = tmp_path / "big.tar"
    write_docker_archive(
        image,
        ImageSpec(
            [
                Layer(_layer(tokens)),
                Layer([Entry("app/pad3.bin", kind="whiteout"), Entry("app/pad5.bin", b"replaced")]),
            ]
        ),
    )
    from secretscan.sources.archive import DockerArchive

    (handle, _) = next(DockerArchive(image, None).images()).layers()
    assert handle.open_range is not None and handle.size
    with handle.open_range(0, handle.size) as blob:
        assert len(split.cut_points(blob, handle.size, 4)) == 3  # the layer is cut, not scanned whole
    one, two = _report(cli, image, 1), _report(cli, image, 2)
    assert one == two
    assert len(one["findings"]) == len(tokens) and not one["errors"]
    first = next(f for f in one["findings"] if any(loc["path"] == "/app/link-to-first" for loc in f["locations"]))
    assert len(first["locations"]) == 2  # the hard link, cut away from its target, still ships it


def test_the_cuts_fall_on_member_boundaries_of_a_real_tar(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(40):
            info = tarfile.TarInfo(f"d/{'x' * 150}/{i}")  # PAX headers in front of every member
            data = bytes([i]) * 9000
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    cuts = split.cut_points(io.BytesIO(data), len(data), 4)
    assert len(cuts) == 3 and cuts == sorted(cuts)
    for cut in cuts:  # each cut starts a member (with its PAX header): a reader from there sees whole members
        with tarfile.open(fileobj=io.BytesIO(data[cut:]), mode="r|") as tar:
            names = [m.name for m in tar]
        assert names and all(n.startswith("d/" + "x" * 150 + "/") for n in names)


def test_a_pax_global_header_or_a_bad_header_means_no_cut(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "g"}) as tar:
        for i in range(10):
            info = tarfile.TarInfo(f"f{i}")
            info.size = 4096
            tar.addfile(info, io.BytesIO(b"a" * 4096))
    data = buffer.getvalue()
    assert split.cut_points(io.BytesIO(data), len(data), 2) == []
    damaged = bytearray(data[1024:])  # no global header, but a checksum that does not hold
    damaged[100] ^= 0xFF
    assert split.cut_points(io.BytesIO(bytes(damaged)), len(damaged), 2) == []


def test_a_tampered_cut_layer_is_still_caught_by_its_digest(cli, tmp_path: Path, small_pieces: None) -> None:
    tokens = [secretgen.github_pat() for _ in range(8)]
    image = tmp_path / "big.tar"
    write_docker_archive(image, ImageSpec([Layer(_layer(tokens))]))
    with tarfile.open(image) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        member = outer.getmember(manifest[0]["Layers"][0])
    raw = bytearray(image.read_bytes())
    at = member.offset_data + member.size - 3000  # inside the last padding file: the tar still parses
    raw[at] ^= 0x01
    image.write_bytes(bytes(raw))
    result = cli("scan", image, "-f", "json", "-q", "--fail-on", "none", "--jobs", "2")
    assert any("does not match its digest" in e for e in result.report["errors"]), result.report["errors"]
    assert len(result.report["findings"]) == len(tokens)  # what was found is kept


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_the_survey_finds_package_records_however_their_names_are_written(fmt: int) -> None:
    """A pip RECORD whose path is too long for a ustar header (a pax or GNU long name), one named by
    its own header behind a pax header of times only (as Docker writes), and one under a ustar
    prefix: the survey reads all three before the scan, and takes no long name of another file
    for the short name after it."""
    site = "usr/local/lib/python3.12/site-packages/"
    long_dir = site + "/".join(["a-package-with-a-long-name"] * 4) + "-1.0.dist-info"
    record = b"pkg/__init__.py,sha256=AAAA,0\n"
    members = [
        (f"{site}{'x' * 120}/module.py", b"print(1)\n", {}),  # a long name that is no database's
        (f"{long_dir}/RECORD", record, {}),
        (f"{site}short-1.0.dist-info/RECORD", record, {"mtime": "1700000000.5"}),
        (f"{site}{'y' * 90}/other-1.0.dist-info/RECORD", record, {}),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data, pax in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            if fmt == tarfile.PAX_FORMAT:
                info.pax_headers = pax
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    found = split.survey(io.BytesIO(data), len(data), 1, 1 << 20)
    assert sorted(path for path, _, _ in found.databases) == sorted("/" + name for name, _, _ in members[1:])
    assert all(content == record for _, _, content in found.databases)
