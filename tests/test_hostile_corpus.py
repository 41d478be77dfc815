"""The hostile-input corpus: images an attacker could build, each with the outcome a user must get.

Every case is built by the test (nothing hostile is committed) and ends in one of three ways:

* ``fatal``: exit 2 and exactly one line on stderr naming the problem (nothing could be scanned);
* ``partial``: a report that says what was not scanned or could not be read (``errors`` or
  ``skipped``), *and still holds every secret planted in the healthy parts* — nothing found is lost;
* ``clean``: a complete report with the planted secrets at the expected paths.

No case may print a traceback, hang (each runs under the suite's timeout), or write a file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import secretgen
import zstandard
from conftest import fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, read_files_tar, write_files_tar, write_oci_layout, zip_bytes

MiB = 1024 * 1024


@dataclass
class Outcome:
    kind: str
    """fatal, partial or clean."""
    text: str = ""
    """In the one-line error (fatal) or in an error or skipped reason (partial)."""
    found: dict[str, str] = field(default_factory=dict)
    """secret -> the path it must be reported at."""
    extra: tuple[str, ...] = ()
    """Extra command-line arguments (limits)."""


@dataclass
class Case:
    image: Path | str
    outcome: Outcome


# ----------------------------------------------------------------------------- building blocks


def _token(n: int = 0) -> str:
    return secretgen.github_pat(int.from_bytes(os.urandom(4), "big") + n)


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _secret_file(path: str, secret: str) -> tuple[tarfile.TarInfo, bytes]:
    return _file(path, f"token: {secret}\n".encode())


def _noise(n: int) -> bytes:
    return os.urandom(n)


def _archive(tmp: Path, layers: list[bytes], config: bytes | None = None) -> Path:
    """A docker-archive (legacy layout) holding ``layers`` byte for byte, however broken."""
    diff_ids = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in layers]
    cfg = (
        config
        if config is not None
        else json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()
    )
    members = {
        "manifest.json": json.dumps(
            [{"Config": "c.json", "Layers": [f"l{i}.tar" for i in range(len(layers))]}]
        ).encode()
    }
    members["c.json"] = cfg
    members.update({f"l{i}.tar": blob for i, blob in enumerate(layers)})
    return write_files_tar(tmp / "image.tar", members)


def _healthy(secret: str) -> bytes:
    """A sound first layer: its secret must survive whatever later layers do."""
    return _tar([_secret_file("healthy/token.txt", secret)])


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    for i in range(at, min(at + 16, len(b))):
        b[i] ^= 0x5A
    return bytes(b)


def _oci(tmp: Path, edit: Callable[[dict[str, Any], Path], None], secret: str) -> Path:
    """An OCI layout with one healthy image, then ``edit(manifest_or_index, layout)`` applied."""
    layout = tmp / "layout"
    write_oci_layout(layout, ImageSpec([Layer([Entry("app/token.txt", f"token: {secret}\n".encode())])]))
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest_path = layout / "blobs" / "sha256" / digest
    manifest = json.loads(manifest_path.read_bytes())
    edit({"index": index, "manifest": manifest}, layout)
    data = json.dumps(manifest).encode()
    new_digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / new_digest).write_bytes(data)
    index["manifests"][0] = {**index["manifests"][0], "digest": f"sha256:{new_digest}", "size": len(data)}
    (layout / "index.json").write_text(json.dumps(index))
    return layout


# ----------------------------------------------------------------------------- the cases


def truncated_gzip_layer(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    blob = gzip.compress(_tar([_secret_file("app/b.txt", b), _file("app/noise.bin", _noise(256 * 1024))]))
    return Case(
        _archive(tmp, [_healthy(a), blob[: len(blob) * 2 // 3]]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", b: "/app/b.txt"}),
    )


def corrupt_gzip_layer(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    blob = gzip.compress(_tar([_secret_file("app/b.txt", b), _file("app/noise.bin", _noise(256 * 1024))]))
    return Case(
        _archive(tmp, [_healthy(a), _flip(blob, len(blob) // 2)]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", b: "/app/b.txt"}),
    )


def truncated_zstd_layer(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    blob = zstandard.ZstdCompressor().compress(
        _tar([_secret_file("app/b.txt", b), _file("app/noise.bin", _noise(512 * 1024))])
    )
    return Case(
        _archive(tmp, [_healthy(a), blob[: len(blob) * 2 // 3]]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", b: "/app/b.txt"}),
    )


def corrupt_zstd_layer(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    blob = zstandard.ZstdCompressor(write_checksum=True).compress(
        _tar([_secret_file("app/b.txt", b), _file("app/noise.bin", _noise(512 * 1024))])
    )
    return Case(
        _archive(tmp, [_healthy(a), _flip(blob, len(blob) // 2)]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt"}),
    )


def _second_header_broken(fix: Callable[[bytearray], None]) -> bytes:
    a = _token(3)
    first = _tar([_secret_file("app/first.txt", a)])[:1024]  # header + one data block
    second = bytearray(tarfile.TarInfo("app/second.txt").tobuf(tarfile.USTAR_FORMAT))
    fix(second)
    return first + bytes(second) + b"\0" * 1024


def tar_bad_checksum(tmp: Path) -> Case:
    a = _token(1)

    def corrupt(h: bytearray) -> None:
        h[148:156] = b"0000001\0"  # a checksum that cannot be right

    layer = _second_header_broken(corrupt)
    first = layer[512:1024].split(b"\n")[0].decode().split(": ")[1]
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", first: "/app/first.txt"}),
    )


def _with_checksum(h: bytearray) -> None:
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)


def tar_negative_size(tmp: Path) -> Case:
    a = _token(1)

    def negative(h: bytearray) -> None:
        h[124:136] = b"\xff" * 12  # base-256: -1
        _with_checksum(h)

    layer = _second_header_broken(negative)
    first = layer[512:1024].split(b"\n")[0].decode().split(": ")[1]
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", first: "/app/first.txt"}),
    )


def tar_absurd_size(tmp: Path) -> Case:
    a = _token(1)

    def huge(h: bytearray) -> None:
        h[124:136] = b"\x80" + (8 << 40).to_bytes(11, "big")  # base-256: 8 TiB of "data"
        _with_checksum(h)

    layer = _second_header_broken(huge)
    first = layer[512:1024].split(b"\n")[0].decode().split(": ")[1]
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", first: "/app/first.txt"}),
    )


def tar_truncated_inside_a_file(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    layer = _tar([_secret_file("app/b.txt", b), _file("app/big.bin", _noise(64 * 1024))])
    return Case(
        _archive(tmp, [_healthy(a), layer[: 2048 + 10_000]]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", b: "/app/b.txt"}),
    )


def gnu_long_name(tmp: Path) -> Case:
    a = _token(1)
    long = "app/" + "/".join(["d" * 60] * 5) + "/token.txt"
    return Case(
        _archive(tmp, [_tar([_secret_file(long, a)], tarfile.GNU_FORMAT)]),
        Outcome("clean", found={a: "/" + long}),
    )


def pax_long_name_and_link(tmp: Path) -> Case:
    a = _token(1)
    long = "srv/" + "x" * 300 + "/t.txt"
    members = [_secret_file(long, a), _link("srv/alias", "/" + "y" * 400, tarfile.SYMTYPE)]
    return Case(_archive(tmp, [_tar(members, tarfile.PAX_FORMAT)]), Outcome("clean", found={a: "/" + long}))


def gnu_sparse_member(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    data = f"token: {b}\n".encode().ljust(512, b"\0")
    info = tarfile.TarInfo("app/sparse.txt")
    info.size = 512
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    header[386:398] = b"%011o\0" % 0  # one region at offset 0 ...
    header[398:410] = b"%011o\0" % 512  # ... of 512 bytes
    header[483:495] = b"%011o\0" % 4096  # real size: 4 KiB, the rest a hole
    _with_checksum(header)
    layer = bytes(header) + data + b"\0" * 1024
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome("clean", found={a: "/healthy/token.txt", b: "/app/sparse.txt"}),
    )


def traversal_names(tmp: Path) -> Case:
    a = _token(1)
    layer = _tar([_secret_file("../../../../etc/shadow", a), _file("./../x", b"x")])
    return Case(_archive(tmp, [layer]), Outcome("clean", found={a: "/etc/shadow"}))


def absolute_names(tmp: Path) -> Case:
    a = _token(1)
    return Case(
        _archive(tmp, [_tar([_secret_file("/root/.config/token", a)])]),
        Outcome("clean", found={a: "/root/.config/token"}),
    )


def dotdot_link_targets(tmp: Path) -> Case:
    a = _token(1)
    members = [
        _link("app/escape", "../../../../../etc/passwd", tarfile.SYMTYPE),
        _link("app/hard", "../../../../etc/shadow", tarfile.LNKTYPE),
        _secret_file("app/real.txt", a),
    ]
    return Case(_archive(tmp, [_tar(members)]), Outcome("clean", found={a: "/app/real.txt"}))


def symlink_loop(tmp: Path) -> Case:
    a = _token(1)
    members = [
        _link("a", "b", tarfile.SYMTYPE),
        _link("b", "a", tarfile.SYMTYPE),
        _link("self", "self", tarfile.SYMTYPE),
        _secret_file("app/t.txt", a),
    ]
    return Case(_archive(tmp, [_tar(members)]), Outcome("clean", found={a: "/app/t.txt"}))


def hardlink_loop(tmp: Path) -> Case:
    a = _token(1)
    members = [_link("x", "y", tarfile.LNKTYPE), _link("y", "x", tarfile.LNKTYPE), _secret_file("app/t.txt", a)]
    return Case(_archive(tmp, [_tar(members)]), Outcome("clean", found={a: "/app/t.txt"}))


def hardlink_to_missing_target(tmp: Path) -> Case:
    a = _token(1)
    members = [_link("app/link", "nowhere/at/all", tarfile.LNKTYPE), _secret_file("app/t.txt", a)]
    return Case(_archive(tmp, [_tar(members)]), Outcome("clean", found={a: "/app/t.txt"}))


def duplicate_entries(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    members = [_secret_file("app/t.txt", a), _secret_file("app/t.txt", b)]
    return Case(_archive(tmp, [_tar(members)]), Outcome("clean", found={a: "/app/t.txt", b: "/app/t.txt"}))


def device_and_fifo_entries(tmp: Path) -> Case:
    a = _token(1)
    members = []
    for name, kind in (("dev/null", tarfile.CHRTYPE), ("dev/sda", tarfile.BLKTYPE), ("run/fifo", tarfile.FIFOTYPE)):
        info = tarfile.TarInfo(name)
        info.type = kind
        members.append((info, b""))
    members.append(_secret_file("app/t.txt", a))
    return Case(_archive(tmp, [_tar(members)]), Outcome("clean", found={a: "/app/t.txt"}))


def garbage_after_end_of_archive(tmp: Path) -> Case:
    a = _token(1)
    return Case(
        _archive(tmp, [_tar([_secret_file("app/t.txt", a)]) + _noise(4096)]), Outcome("clean", found={a: "/app/t.txt"})
    )


def empty_layer_blob(tmp: Path) -> Case:
    a = _token(1)
    return Case(_archive(tmp, [_healthy(a), b""]), Outcome("partial", "unreadable layer", {a: "/healthy/token.txt"}))


def non_utf8_names(tmp: Path) -> Case:
    a = _token(1)
    info = tarfile.TarInfo("app/\udcff\udcfe.env")
    data = f"token: {a}\n".encode()
    info.size = len(data)
    out = io.BytesIO()
    with tarfile.open(
        fileobj=out, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as t:
        t.addfile(info, io.BytesIO(data))
    return Case(_archive(tmp, [out.getvalue()]), Outcome("clean", found={a: "/app/\\xff\\xfe.env"}))


def layer_gzip_bomb(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    layer = _tar([_secret_file("app/first.txt", b), _file("var/zeros", b"\0" * (96 * MiB))])
    return Case(
        _archive(tmp, [_healthy(a), gzip.compress(layer, compresslevel=9)]),
        Outcome("partial", "max_compression_ratio", {a: "/healthy/token.txt", b: "/app/first.txt"}),
    )


def layer_over_the_size_limit(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    layer = _tar([_secret_file("app/first.txt", b), _file("app/big.bin", _noise(3 * MiB))])
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome(
            "partial",
            "max_layer_bytes",
            {a: "/healthy/token.txt", b: "/app/first.txt"},
            ("--limit", "max_layer_bytes=1MiB"),
        ),
    )


def nested_zip_with_too_many_entries(tmp: Path) -> Case:
    a = _token(1)
    archive = zip_bytes({f"e{i}.txt": b"x" for i in range(200)} | {"zz/token.txt": f"token: {a}\n".encode()})
    return Case(
        _archive(tmp, [_tar([_file("app/lib.jar", archive)])]),
        Outcome("partial", "entries", {}, ("--limit", "max_nested_entries=50")),
    )


def nested_archives_too_deep(tmp: Path) -> Case:
    a = _token(1)
    data = f"token: {a}\n".encode()
    name = "token.txt"
    for depth in range(7):
        data, name = zip_bytes({name: data}), f"level{depth}.zip"
    return Case(
        _archive(tmp, [_tar([_file("app/" + name, data)])]),
        Outcome("partial", "deeper than", {}),
    )


def nested_gzip_bomb(tmp: Path) -> Case:
    a = _token(1)
    bomb = gzip.compress(b"\0" * (40 * MiB), compresslevel=9)
    return Case(
        _archive(tmp, [_tar([_file("app/data.gz", bomb), _secret_file("app/t.txt", a)])]),
        Outcome("partial", "uncompressed", {a: "/app/t.txt"}, ("--limit", "max_nested_uncompressed_bytes=8MiB")),
    )


def zip_with_overlapping_entries(tmp: Path) -> Case:
    """Two central-directory entries pointing at one local file (the "overlapping" zip bomb)."""
    a, b = _token(1), _token(2)
    data = bytearray(zip_bytes({"one.txt": f"token: {b}\n".encode()}))
    cd = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    entry = bytes(data[cd:eocd]).replace(b"one.txt", b"two.txt")
    data[eocd:eocd] = entry
    eocd += len(entry)
    struct.pack_into("<HHI", data, eocd + 8, 2, 2, (eocd - cd))  # entries on disk, total, cd size
    return Case(
        _archive(tmp, [_healthy(a), _tar([_file("app/overlap.zip", bytes(data))])]),
        Outcome("partial", "zip member unreadable", {a: "/healthy/token.txt", b: "/app/overlap.zip!/one.txt"}),
    )


def zip_member_lying_about_its_size(tmp: Path) -> Case:
    """The central directory claims ~4 GiB: the member is read as far as its data goes, no further."""
    a, b = _token(1), _token(2)
    data = bytearray(zip_bytes({"t.txt": f"token: {b}\n".encode() + b"pad" * 100}))
    cd = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 0xFFFFFFF0)  # central directory: ~4 GiB uncompressed
    return Case(
        _archive(tmp, [_healthy(a), _tar([_file("app/liar.zip", bytes(data))])]),
        Outcome("clean", found={a: "/healthy/token.txt", b: "/app/liar.zip!/t.txt"}),  # read as stored, bounded
    )


def missing_layer_in_archive(tmp: Path) -> Case:
    a = _token(1)
    path = _archive(tmp, [_healthy(a), _tar([])])
    members = read_files_tar(path)
    manifest = json.loads(members["manifest.json"])
    manifest[0]["Layers"].append("gone.tar")
    write_files_tar(path, {**members, "manifest.json": json.dumps(manifest).encode()})
    return Case(path, Outcome("partial", "gone.tar", {a: "/healthy/token.txt"}))


def gigantic_config(tmp: Path) -> Case:
    config = b'{"padding": "' + b"a" * (17 * MiB) + b'"}'
    return Case(_archive(tmp, [_tar([])], config), Outcome("fatal", "over the"))


def config_nested_deep(tmp: Path) -> Case:
    return Case(
        _archive(tmp, [_tar([])], b'{"a":' * 50_000 + b"1" + b"}" * 50_000), Outcome("fatal", "nested too deeply")
    )


def config_not_an_object(tmp: Path) -> Case:
    return Case(_archive(tmp, [_tar([])], b"[1, 2, 3]"), Outcome("fatal", "not a JSON object"))


def oci_layer_digest_mismatch(tmp: Path) -> Case:
    a = _token(1)

    def tamper(docs: dict[str, Any], layout: Path) -> None:
        layer = docs["manifest"]["layers"][0]
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":")[1]
        blob.write_bytes(gzip.compress(_tar([_secret_file("app/token.txt", a), _file("x", b"tampered")])))

    return Case(f"oci:{_oci(tmp, tamper, a)}", Outcome("partial", "does not match its digest", {a: "/app/token.txt"}))


def oci_bogus_sizes(tmp: Path) -> Case:
    a = _token(1)

    def sizes(docs: dict[str, Any], layout: Path) -> None:
        docs["manifest"]["layers"][0]["size"] = -5
        docs["manifest"]["config"]["size"] = 10**15

    return Case(f"oci:{_oci(tmp, sizes, a)}", Outcome("clean", found={a: "/app/token.txt"}))


def oci_bogus_media_types(tmp: Path) -> Case:
    a = _token(1)

    def media(docs: dict[str, Any], layout: Path) -> None:
        docs["manifest"]["layers"][0]["mediaType"] = "application/x-definitely-not-a-layer"
        docs["manifest"]["mediaType"] = "text/plain"

    return Case(f"oci:{_oci(tmp, media, a)}", Outcome("clean", found={a: "/app/token.txt"}))


def oci_bogus_config_digest(tmp: Path) -> Case:
    a = _token(1)

    def digest(docs: dict[str, Any], layout: Path) -> None:
        docs["manifest"]["config"]["digest"] = "sha256:../../../../etc/passwd"

    return Case(f"oci:{_oci(tmp, digest, a)}", Outcome("fatal", "config"))


def oci_layer_digest_path_traversal(tmp: Path) -> Case:
    a = _token(1)

    def digest(docs: dict[str, Any], layout: Path) -> None:
        docs["manifest"]["layers"][0]["digest"] = "sha256:../../../etc/passwd"

    return Case(f"oci:{_oci(tmp, digest, a)}", Outcome("fatal", "no valid digest"))


def oci_index_not_a_list(tmp: Path) -> Case:
    layout = tmp / "layout"
    write_oci_layout(layout, ImageSpec([Layer([Entry("a", b"a")])]))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": {"not": "a list"}}))
    return Case(f"oci:{layout}", Outcome("fatal", "index lists no manifests"))


def oci_index_nested_deep(tmp: Path) -> Case:
    layout = tmp / "layout"
    write_oci_layout(layout, ImageSpec([Layer([Entry("a", b"a")])]))
    (layout / "index.json").write_bytes(b"[" * 200_000)
    return Case(f"oci:{layout}", Outcome("fatal", "nested too deeply"))


CASES: dict[str, Callable[[Path], Case]] = {
    f.__name__: f
    for f in (
        truncated_gzip_layer,
        corrupt_gzip_layer,
        truncated_zstd_layer,
        corrupt_zstd_layer,
        tar_bad_checksum,
        tar_negative_size,
        tar_absurd_size,
        tar_truncated_inside_a_file,
        gnu_long_name,
        pax_long_name_and_link,
        gnu_sparse_member,
        traversal_names,
        absolute_names,
        dotdot_link_targets,
        symlink_loop,
        hardlink_loop,
        hardlink_to_missing_target,
        duplicate_entries,
        device_and_fifo_entries,
        garbage_after_end_of_archive,
        empty_layer_blob,
        non_utf8_names,
        layer_gzip_bomb,
        layer_over_the_size_limit,
        nested_zip_with_too_many_entries,
        nested_archives_too_deep,
        nested_gzip_bomb,
        zip_with_overlapping_entries,
        zip_member_lying_about_its_size,
        missing_layer_in_archive,
        gigantic_config,
        config_nested_deep,
        config_not_an_object,
        oci_layer_digest_mismatch,
        oci_bogus_sizes,
        oci_bogus_media_types,
        oci_bogus_config_digest,
        oci_layer_digest_path_traversal,
        oci_index_not_a_list,
        oci_index_nested_deep,
    )
}


def test_the_corpus_is_at_least_thirty_inputs() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(cli, tmp_path: Path, name: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    case = CASES[name](work)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = cli("scan", str(case.image), "-f", "json", "-q", *case.outcome.extra)
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    assert sorted(p for p in tmp_path.rglob("*")) == before, "the scan wrote files"
    expected = case.outcome
    if expected.kind == "fatal":
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and expected.text in lines[0], result.err
        assert result.out == ""
        return
    assert result.code in (0, 1, 2), result.err
    report = result.report
    found = {f["fingerprint"]: {loc["path"] for loc in f["locations"]} for f in report["findings"]}
    for secret, path in expected.found.items():
        assert path in found.get(fingerprint_of(secret), set()), f"{name}: {path} not reported ({found})"
    problems = list(report["errors"]) + [f"{s['what']}: {s['reason']}" for s in report["skipped"]]
    if expected.kind == "clean":
        assert report["complete"] and not problems, problems
        assert result.code == (1 if expected.found else 0)
    else:
        assert not report["complete"] and any(expected.text in p for p in problems), problems
        assert result.code == (2 if report["errors"] else 1 if report["findings"] else 0)
