"""A big uncompressed layer is cut at member boundaries and scanned by several workers: the report
is the one a single worker gives, whatever sits at the cuts (long names, links, whiteouts)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import tarfile
from pathlib import Path

import pytest
import secretgen
from hypothesis import given, settings
from hypothesis import strategies as st
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


def _tar_shaped_bytes() -> bytes:
    """Members of a tar with no end blocks (a chain a walk can follow on), one a pip RECORD: what a
    hostile layer puts in a file's bytes for a survey that loses its place to read."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(20):
            record = b"usr/lib/python3/site-packages/x-1.0.dist-info/RECORD" if i == 3 else f"fake{i}".encode()
            info = tarfile.TarInfo(record.decode())
            info.size = 8192
            tar.addfile(info, io.BytesIO(b"x,sha256=,1\n" * 600 + bytes(8192 - 7200)))
    return inner.getvalue()[: 20 * (512 + 8192)]


def _padding(tar: tarfile.TarFile, prefix: str) -> None:
    """Six plain files of 16 KiB around the member a test makes odd."""
    for i in range(6):
        info = tarfile.TarInfo(f"{prefix}{i}")
        info.size = 16384
        tar.addfile(info, io.BytesIO(bytes(16384)))


def _set_size(data: bytearray, header: int, size: int) -> None:
    """Give the header at ``header`` another size field, its checksum made to hold again."""
    data[header + 124 : header + 136] = b"%011o\0" % size
    data[header + 148 : header + 156] = b"        "
    data[header + 148 : header + 156] = b"%06o\0 " % sum(data[header : header + 512])


def _assert_surveyed_as_tarfile_reads(layer: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        boundaries = {m.offset for m in tar.getmembers()}
    for parts in (2, 3, 4):
        found = split.survey(io.BytesIO(layer), len(layer), parts, 1 << 20)
        assert set(found.cuts) <= boundaries, (parts, found.cuts)
        assert not [path for path, _, _ in found.databases if "dist-info" in path]


def test_a_member_sized_by_its_pax_header_is_walked_as_tarfile_reads_it() -> None:
    """A pax ``size`` record overrides the header's size (tarfile follows it; files over 8 GiB are
    written so). A hostile layer can give the header a size of 0 and the member's bytes the shape
    of a tar: the survey must neither cut inside those bytes nor read records from them."""
    hidden = _tar_shaped_bytes()
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _padding(tar, "before")
        info = tarfile.TarInfo("blob")
        info.size = len(hidden)
        info.pax_headers = {"size": str(len(hidden))}
        tar.addfile(info, io.BytesIO(hidden))
        _padding(tar, "after")
    data = bytearray(outer.getvalue())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        members = tar.getmembers()
    blob = next(m for m in members if m.name == "blob")
    header = blob.offset_data - 512  # its own header, after the pax one
    _set_size(data, header, 0)
    layer = bytes(data)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:  # tarfile still reads the layer right
        assert [m.name for m in tar.getmembers()] == [m.name for m in members]
    _assert_surveyed_as_tarfile_reads(layer)


@pytest.mark.parametrize("kind", [tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
def test_a_member_with_no_data_but_a_size_is_walked_as_tarfile_reads_it(kind: bytes) -> None:
    """tarfile skips a member's data only after a regular file's header: a directory, link or
    fifo whose header gives a size has no data, and the next header follows at once. A hostile
    layer can give one the size that lands a survey inside the next file's bytes, shaped as a tar."""
    hidden = _tar_shaped_bytes()
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _padding(tar, "before")
        odd = tarfile.TarInfo("odd")
        odd.type, odd.linkname = kind, "before0" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        tar.addfile(odd)
        carrier = tarfile.TarInfo("carrier")
        carrier.size = 1024 + len(hidden)
        tar.addfile(carrier, io.BytesIO(bytes(1024) + hidden))
        _padding(tar, "after")
    data = bytearray(outer.getvalue())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        members = tar.getmembers()
    header = next(m for m in members if m.name == "odd").offset
    _set_size(data, header, 512 + 1024)  # its header's size: to the hidden bytes
    layer = bytes(data)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:  # tarfile still reads the layer right
        assert [m.name for m in tar.getmembers()] == [m.name for m in members]
    _assert_surveyed_as_tarfile_reads(layer)


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


def _random_layer(draw_members: list[tuple[str, int, int]], seed: int) -> bytes:
    """A layer of files (some package records, some holding a tar of their own: headers inside a
    file's bytes), directories, and names long enough for pax or GNU long-name headers."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    fmt = rng.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for i, (kind, size, depth) in enumerate(draw_members):
            name = "/".join(["d" * rng.randint(1, 40) for _ in range(depth)] + [f"m{i}"])
            if kind == "dir":
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            if kind == "record":
                name = f"usr/lib/python3/site-packages/p{i}-1.0.dist-info/RECORD"
                data = f"p{i}/__init__.py,sha256=AAAA,{size}\n".encode()
            elif kind == "tar":  # a tar inside a file: its headers are "ustar" blocks at 512-byte steps
                inner = io.BytesIO()
                with tarfile.open(fileobj=inner, mode="w", format=tarfile.USTAR_FORMAT) as nested:
                    for j in range(3):
                        member = tarfile.TarInfo(f"inner{j}/RECORD")
                        member.size = size
                        nested.addfile(member, io.BytesIO(bytes(size)))
                data = inner.getvalue()
            else:
                data = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * max(1, size // 64)
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000 + i
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["file", "file", "dir", "record", "tar"]), st.integers(0, 20_000), st.integers(1, 5)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 2**32),
    st.integers(2, 5),
    st.integers(2, 8),
)
def test_walks_side_by_side_give_what_one_walk_gives(members: list, seed: int, chunks: int, parts: int) -> None:
    """A layer's headers walked in chunks from headers found near ``size * k / chunks`` (some inside
    a file's bytes: a tar held in the layer), joined, and walked on where a chunk started inside a
    file: the same cuts and package records, in the same order, as one walk from the start."""
    data = _random_layer(members, seed)
    if seed % 5 == 0:  # now and then, a damaged header somewhere after the first
        at = (seed // 5) % max(1, len(data) // 512) * 512
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :] if at else data
    size = len(data)
    stream = io.BytesIO(data)
    one = split.survey(stream, size, parts, 1 << 20)
    starts = split.chunk_starts(stream, size, chunks)
    walks = [
        split.survey(stream, size, parts, 1 << 20, start=a, stop=b)
        for a, b in zip(starts, [*starts[1:], None], strict=True)
    ]
    joined, _, resume_at, targets_from = split.join_surveys(starts, walks)
    if resume_at is not None:
        joined = split.walk_on(stream, size, parts, 1 << 20, joined, resume_at, targets_from)
    assert (joined.cuts, joined.databases) == (one.cuts, one.databases)


def test_a_layer_holding_a_tar_where_its_headers_are_walked_side_by_side(cli, tmp_path: Path, small_pieces: None) -> None:
    """The walk of a big layer's second half starts at the first header found past its middle,
    which here lies inside a tar file the layer holds, among them a pip RECORD that would vouch
    for the layer's own settings file: the joined walks notice, walk on from where the first one
    stopped, and the report is the one a single worker gives, with that file's secret a finding."""
    outer_token = secretgen.github_pat()
    settings = f'GITHUB_TOKEN = "{outer_token}"\n'.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(settings).digest()).rstrip(b"=")
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w", format=tarfile.USTAR_FORMAT) as nested:
        pads = [(f"x/pad{i}.bin", bytes(range(256)) * 16) for i in range(50)]  # a header every 4.5 KiB
        record = b"x/settings.py,sha256=" + digest + b",%d\n" % len(settings)
        for name, data in [*pads[:25], ("usr/lib/python3/site-packages/x-1.0.dist-info/RECORD", record), *pads[25:]]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            nested.addfile(info, io.BytesIO(data))
    entries = [
        Entry("app/a.bin", bytes(range(256)) * 400),
        Entry("app/bundle.tar", inner.getvalue()),
        Entry("usr/lib/python3/site-packages/x/settings.py", settings),
        Entry("app/z.bin", bytes(range(256)) * 100),
    ]
    image = tmp_path / "holding.tar"
    write_docker_archive(image, ImageSpec([Layer(entries), Layer([Entry("app/other.txt", b"x\n")])]))
    from secretscan.sources.archive import DockerArchive

    handle = next(DockerArchive(image, None).images()).layers()[0]
    assert handle.open_range is not None and handle.size
    with handle.open_range(0, handle.size) as blob:
        data = blob.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        boundaries = {m.offset for m in tar.getmembers()}
        bundle = tar.getmember("app/bundle.tar")
    starts = split.chunk_starts(io.BytesIO(data), len(data), 2)
    assert len(starts) == 2 and starts[1] not in boundaries
    assert bundle.offset_data <= starts[1] < bundle.offset_data + bundle.size  # a header of the tar inside
    one, two = _report(cli, image, 1), _report(cli, image, 2)
    assert one == two and not one["errors"]
    assert [loc["path"] for f in one["findings"] for loc in f["locations"]] == ["/usr/lib/python3/site-packages/x/settings.py"]


class _Counting(io.RawIOBase):
    """A stored blob that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        self._inner, self.read_bytes = io.BytesIO(data), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def _gzip_layer(members: list[tuple[str, bytes]]) -> bytes:
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def _record(site: str, files: dict[str, bytes], sizes_off: int = 0) -> bytes:
    lines = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data) + sizes_off}"
        for name, data in files.items()
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("case", ["logs", "records that list other sizes", "records that hold", "a dpkg base"])
def test_a_pass_over_a_stored_layer_reads_on_only_while_records_can_vouch(case: str) -> None:
    """A compressed layer's records are read in a pass of their own, which costs a decompression:
    it stops early on a layer that shows no records (logs, data) or whose pip records list sizes
    its files do not have, and reads on to the end when its records hold or a system package
    manager's database is to come (its ``etc/dpkg`` early, ``var/lib/dpkg`` last)."""
    from secretscan.limits import Limits

    rng = random.Random(7)
    noise = rng.randbytes  # incompressible: stored bytes track the walk
    site = "usr/local/lib/python3.11/site-packages"
    members: list[tuple[str, bytes]] = []
    if case == "logs":
        members = [(f"var/log/app/{i}.log", noise(1 << 20)) for i in range(40)]
    elif case.startswith("records"):
        off = 1 if case == "records that list other sizes" else 0
        for p in range(40):
            files = {f"pkg{p:02d}/m{i}.py": noise(64 * 1024) for i in range(8)}
            members += [(f"{site}/{name}", data) for name, data in files.items()]
            members.append((f"{site}/pkg{p:02d}-1.0.dist-info/RECORD", _record(site, files, off)))
    else:
        members = [("etc/dpkg/dpkg.cfg", b"# dpkg\n")]
        members += [(f"usr/lib/x86_64-linux-gnu/lib{i}.so", noise(1 << 20)) for i in range(40)]
        members.append(("var/lib/dpkg/status", b"Package: base-files\nStatus: install ok installed\nVersion: 12\n\n"))
    blob = _Counting(_gzip_layer(members))
    stored = len(blob._inner.getvalue())
    found = split.survey_stored(io.BufferedReader(blob), Limits(), 1 << 20)  # type: ignore[arg-type]
    databases = [path for path, _, _ in found.databases]
    if case in ("logs", "records that list other sizes"):
        assert blob.read_bytes < stored // 2, (blob.read_bytes, stored)
    else:
        assert blob.read_bytes == stored
        assert databases and databases[-1] in (f"/{site}/pkg39-1.0.dist-info/RECORD", "/var/lib/dpkg/status")
