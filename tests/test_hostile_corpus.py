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
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import secretgen
import zstandard
from conftest import fingerprint_of
from imagebuilder import (
    Entry,
    ImageSpec,
    Layer,
    read_files_tar,
    write_files_tar,
    write_oci_layout,
    xz_declaring_dictionary,
    zip_bytes,
)
from test_gitobjects import copy, delta, git_id, insert, pack, pack_name

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
    check: Callable[[dict[str, Any]], None] | None = None
    """More the report must show than paths (exposure, build step, line), on the JSON report."""


@dataclass
class Case:
    image: Path | str
    outcome: Outcome
    stdin: bytes | None = None
    """What is piped in, for ``image`` ``-`` (``docker save IMAGE | secretscan scan -``)."""


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


def pax_times_that_are_not_numbers(tmp: Path) -> Case:
    """``mtime=nan``, ``inf`` and ``1e400`` in pax headers: the files are scanned (their time read
    as 0), and so is the file after them."""
    secrets = [_token(i) for i in range(4)]
    members = []
    for i, mtime in enumerate(("nan", "inf", "1e400", "-inf")):
        info, data = _secret_file(f"app/t{i}.txt", secrets[i])
        info.pax_headers = {"mtime": mtime}
        members.append((info, data))
    found = {secret: f"/app/t{i}.txt" for i, secret in enumerate(secrets)}
    return Case(_archive(tmp, [_tar(members, tarfile.PAX_FORMAT)]), Outcome("clean", found=found))


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


def oci_layer_longer_than_its_descriptor(tmp: Path) -> Case:
    """A descriptor that gives a smaller size than its (authentic) blob: the blob, a file of known
    size, is read whole and its secret found, and the lie is an error."""
    a = _token(1)

    def shrink(docs: dict[str, Any], layout: Path) -> None:
        docs["manifest"]["layers"][0]["size"] -= 10

    return Case(f"oci:{_oci(tmp, shrink, a)}", Outcome("partial", "longer than", {a: "/app/token.txt"}))


def oci_config_longer_than_its_descriptor(tmp: Path) -> Case:
    a = _token(1)

    def pad(docs: dict[str, Any], layout: Path) -> None:
        blob = layout / "blobs" / "sha256" / docs["manifest"]["config"]["digest"].split(":")[1]
        with blob.open("ab") as f:
            f.write(b" " * 4096)

    return Case(f"oci:{_oci(tmp, pad, a)}", Outcome("fatal", "over the"))


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


def gzip_file_that_is_partly_plain_text(tmp: Path) -> Case:
    """A ``.gz`` that stops being gzip part-way: its plain-text rest is scanned as stored bytes."""
    a, b = _token(1), _token(2)
    start = gzip.compress(b"release notes\n" * 200, mtime=0)
    notes = start[: len(start) // 2] + f"\nAPI token: {b}\n".encode()
    return Case(
        _archive(tmp, [_tar([_file("app/notes.gz", notes), _secret_file("app/t.txt", a)])]),
        Outcome("partial", "its stored bytes", {a: "/app/t.txt", b: "/app/notes.gz"}),
    )


def zip_stored_member_with_bad_crc(tmp: Path) -> Case:
    """A stored member whose checksum is wrong cannot be read through zipfile: its stored bytes can."""
    a, b = _token(1), _token(2)
    jar = bytearray(
        zip_bytes(
            {"a.txt": f"token: {a}\n".encode(), "conf/secret.properties": f"token={b}\n".encode()},
            zipfile.ZIP_STORED,
        )
    )
    entry = jar.index(b"PK\x01\x02", jar.index(b"PK\x01\x02") + 4)  # the second member's directory entry
    jar[entry + 16] ^= 0xFF  # its CRC-32
    return Case(
        _archive(tmp, [_tar([_file("app/lib.jar", bytes(jar))])]),
        Outcome(
            "partial",
            "zip member unreadable",
            {a: "/app/lib.jar!/a.txt", b: "/app/lib.jar!/conf/secret.properties"},
        ),
    )


def zip_without_central_directory(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    jar = zip_bytes({"conf/app.properties": f"token={b}\n".encode()}, zipfile.ZIP_STORED)
    cut = jar[: jar.index(b"PK\x01\x02")]
    return Case(
        _archive(tmp, [_tar([_file("app/lib.jar", cut), _secret_file("app/t.txt", a)])]),
        Outcome("partial", "zip archive unreadable", {a: "/app/t.txt", b: "/app/lib.jar"}),
    )


def _bad_header_between(first: tuple[tarfile.TarInfo, bytes], after: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A tar: ``first``, a header block of garbage, then ``after`` (whole, with its end blocks)."""
    return _tar([first])[:1024] + b"\xa5" * 512 + _tar([after])


def tar_layer_damaged_before_a_file(tmp: Path) -> Case:
    """The files after a bad header are still in the layer: found as the layer's plain bytes."""
    a, b, c = _token(1), _token(2), _token(3)
    layer = _bad_header_between(_secret_file("app/first.txt", b), _secret_file("app/after.txt", c))
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", b: "/app/first.txt", c: "(the layer)"}),
    )


def gzip_layer_with_a_bad_tar_header(tmp: Path) -> Case:
    a, b, c = _token(1), _token(2), _token(3)
    layer = gzip.compress(_bad_header_between(_secret_file("app/first.txt", b), _secret_file("app/after.txt", c)))
    return Case(
        _archive(tmp, [_healthy(a), layer]),
        Outcome("partial", "unreadable layer", {a: "/healthy/token.txt", b: "/app/first.txt", c: "(the layer)"}),
    )


def gzip_layer_cut_into_plain_text(tmp: Path) -> Case:
    """A blob that stops being gzip part-way: what follows the damage is scanned as stored bytes.
    (The filler compresses: random bytes would be stored verbatim in deflate's stored blocks, and
    text appended inside one decompresses as part of the file it cuts.)"""
    a, b, c = _token(1), _token(2), _token(3)
    filler = b"".join(b"%06d filler line of a log\n" % i for i in range(40_000))
    blob = gzip.compress(_tar([_secret_file("app/b.txt", b), _file("app/noise.bin", filler)]))
    blob = blob[: len(blob) * 2 // 3] + f"\nexport GH_TOKEN={c}\n".encode()
    return Case(
        _archive(tmp, [_healthy(a), blob]),
        Outcome(
            "partial",
            "its stored bytes from the damage on",
            {a: "/healthy/token.txt", b: "/app/b.txt", c: "(the layer)"},
        ),
    )


def xz_layer_demanding_too_much_memory(tmp: Path) -> Case:
    """An xz layer whose header asks for a 4 GiB dictionary, between two healthy layers."""
    a, b, c = _token(1), _token(2), _token(3)
    greedy = xz_declaring_dictionary(_tar([_secret_file("app/b.txt", b)]), 40)
    return Case(
        _archive(tmp, [_healthy(a), greedy, _tar([_secret_file("later/c.txt", c)])]),
        Outcome("partial", "raise max_xz_memory", {a: "/healthy/token.txt", c: "/later/c.txt"}),
    )


def nested_xz_demanding_too_much_memory(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    greedy = xz_declaring_dictionary(_tar([_secret_file("conf/b.txt", b)]), 40)
    return Case(
        _archive(tmp, [_tar([_file("app/data.tar.xz", greedy), _secret_file("app/t.txt", a)])]),
        Outcome("partial", "raise max_xz_memory", {a: "/app/t.txt"}),
    )


def corrupt_nested_xz(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    data = lzma.compress(_tar([_secret_file("conf/b.txt", b), _file("conf/noise", _noise(4096))]))
    return Case(
        _archive(tmp, [_tar([_file("app/data.tar.xz", _flip(data, len(data) // 2)), _secret_file("app/t.txt", a)])]),
        Outcome("partial", "nested archive unreadable", {a: "/app/t.txt"}),
    )


# ----------------------------------------------------------------------------- growth: linear work on every input


def _config_archive(tmp: Path, layers: list[bytes], config: dict[str, Any]) -> Path:
    """``_archive`` with config fields of the case's own (Env, history), diff IDs filled in."""
    diff_ids = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob in layers]
    doc = {"architecture": "amd64", "os": "linux", **config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    return _archive(tmp, layers, json.dumps(doc).encode())


def _locations(report: dict[str, Any], secret: str) -> list[dict[str, Any]]:
    return [loc for f in report["findings"] if f["fingerprint"] == fingerprint_of(secret) for loc in f["locations"]]


def path_50000_directories_deep(tmp: Path) -> Case:
    """Every ancestor of this path as a string is 2.5 GB; the later layer deletes the top directory."""
    a = _token(1)
    deep = "d/" * 50_000 + "token.txt"
    deleted = _tar([_file(".wh.d", b"")])

    def removed(report: dict[str, Any]) -> None:
        [loc] = _locations(report, a)
        assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "deleted")

    return Case(
        _archive(tmp, [_tar([_secret_file(deep, a)]), deleted]), Outcome("clean", found={a: "/" + deep}, check=removed)
    )


def _oci_graph(tmp: Path, secret: str, build: Callable[[Path, dict[str, Any]], list[dict[str, Any]]]) -> Path:
    """A layout with one healthy image whose index.json becomes ``build(layout, its descriptor)``."""
    layout = tmp / "layout"
    write_oci_layout(layout, ImageSpec([Layer([Entry("app/token.txt", f"token: {secret}\n".encode())])]))
    image = json.loads((layout / "index.json").read_text())["manifests"][0]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    (layout / "index.json").write_text(json.dumps({**index, "manifests": build(layout, image)}))
    return layout


def _index_blob(layout: Path, manifests: list[dict[str, Any]], digest: str | None = None) -> dict[str, Any]:
    """An image index stored as a blob (under ``digest``, whatever its content, when given)."""
    data = json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()
    digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": len(data)}


def oci_index_graph_fanning_out(tmp: Path) -> Case:
    """index.json and four nested indexes, each listing the next 64 times: 64**5 ways to one image."""
    a = _token(1)

    def fan_out(layout: Path, image: dict[str, Any]) -> list[dict[str, Any]]:
        desc = image
        for _ in range(4):
            desc = _index_blob(layout, [desc] * 64)
        return [desc] * 64

    return Case(f"oci:{_oci_graph(tmp, a, fan_out)}", Outcome("clean", found={a: "/app/token.txt"}))


def oci_index_listing_itself(tmp: Path) -> Case:
    """An index stored under a name that is not its digest, listing that name: a cycle."""
    a = _token(1)

    def cycle(layout: Path, image: dict[str, Any]) -> list[dict[str, Any]]:
        name = "sha256:" + "c" * 64
        own = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": name}
        return [image, _index_blob(layout, [own, image, own], digest=name)]

    return Case(f"oci:{_oci_graph(tmp, a, cycle)}", Outcome("clean", found={a: "/app/token.txt"}))


def oci_healthy_image_beside_a_too_deep_index_chain(tmp: Path) -> Case:
    a, b = _token(1), _token(2)
    top: dict[str, Any] = {}

    def chain(layout: Path, image: dict[str, Any]) -> list[dict[str, Any]]:
        other = tmp / "other"
        write_oci_layout(other, ImageSpec([Layer([Entry("deep/token.txt", f"token: {b}\n".encode())])]))
        for blob in (other / "blobs" / "sha256").iterdir():
            (layout / "blobs" / "sha256" / blob.name).write_bytes(blob.read_bytes())
        desc = json.loads((other / "index.json").read_text())["manifests"][0]
        for _ in range(1000):
            desc = _index_blob(layout, [desc])
        top.update(desc)
        return [image, desc]

    layout = _oci_graph(tmp, a, chain)

    def names_the_branch(report: dict[str, Any]) -> None:
        assert any(top["digest"][:19] in s["what"] for s in report["skipped"]), report["skipped"]
        assert not _locations(report, b), "an image past the nesting limit was scanned"

    return Case(
        f"oci:{layout}",
        Outcome("partial", "nested deeper than 4", {a: "/app/token.txt"}, check=names_the_branch),
    )


def oci_healthy_image_beside_a_missing_index(tmp: Path) -> Case:
    a = _token(1)

    def missing(layout: Path, image: dict[str, Any]) -> list[dict[str, Any]]:
        gone = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "e" * 64, "size": 10}
        return [gone, image]

    return Case(f"oci:{_oci_graph(tmp, a, missing)}", Outcome("partial", "missing blob", {a: "/app/token.txt"}))


def oci_healthy_image_beside_a_manifest_that_is_not_json(tmp: Path) -> Case:
    a = _token(1)

    def garbage(layout: Path, image: dict[str, Any]) -> list[dict[str, Any]]:
        data = b"\xff\xfe not a manifest {"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return [image, {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(data)}]

    return Case(f"oci:{_oci_graph(tmp, a, garbage)}", Outcome("partial", "not valid JSON", {a: "/app/token.txt"}))


def archive_image_with_a_missing_config_beside_a_healthy_one(tmp: Path) -> Case:
    a = _token(1)
    path = _archive(tmp, [_healthy(a)])
    members = read_files_tar(path)
    manifest = json.loads(members["manifest.json"])
    manifest.insert(0, {"Config": "gone.json", "Layers": manifest[0]["Layers"], "RepoTags": ["broken:1"]})
    write_files_tar(path, {**members, "manifest.json": json.dumps(manifest).encode()})
    return Case(path, Outcome("partial", "gone.json", {a: "/healthy/token.txt"}))


def env_entries_times_history_steps(tmp: Path) -> Case:
    """3,000 Env entries, each set by its own ENV step; the secret's name is set twice, and the
    later step (which sets two names at once) is the one the Env entry must name."""
    a = _token(1)
    env = [f"VAR_{i}=value{i}" for i in range(3000)]
    steps = [f"ENV {e}" for e in env]
    steps[10] = "ENV GITHUB_TOKEN=placeholder"
    steps[2000] = f"ENV REGION=eu GITHUB_TOKEN={a}"
    env.append(f"GITHUB_TOKEN={a}")
    history = [{"created_by": s, "empty_layer": True} for s in steps] + [{"created_by": "COPY . /"}]
    path = _config_archive(
        tmp, [_tar([_file("etc/os-release", b"ID=x\n")])], {"config": {"Env": env}, "history": history}
    )

    def names_the_step(report: dict[str, Any]) -> None:
        by_path = {loc["path"]: loc for loc in _locations(report, a)}
        assert set(by_path) == {"config.Env[3000]", "history[2000].created_by"}
        assert by_path["config.Env[3000]"]["created_by"].startswith("ENV REGION=eu GITHUB_TOKEN=<")
        assert a not in json.dumps(report)

    return Case(path, Outcome("clean", found={a: "config.Env[3000]"}, check=names_the_step))


def many_empty_files_then_a_secret(tmp: Path) -> Case:
    a = _token(1)
    members = [_file(f"d{i // 1000}/f{i}", b"") for i in range(20_000)]
    return Case(
        _archive(tmp, [_tar([*members, _secret_file("zz/token.txt", a)])]), Outcome("clean", found={a: "/zz/token.txt"})
    )


def five_thousand_tokens_in_one_file(tmp: Path) -> Case:
    """More keyword hits in one buffer than the prefilter keeps offsets for: all are found, each
    on its own line."""
    tokens = [_token(i) for i in range(5000)]
    text = "".join(f"token: {t}\n" for t in tokens).encode()

    def lines(report: dict[str, Any]) -> None:
        for i in (0, 4095, 4096, 4999):
            assert [loc["line"] for loc in _locations(report, tokens[i])] == [i + 1]

    return Case(
        _archive(tmp, [_tar([_file("app/tokens.txt", text)])]),
        Outcome("clean", found=dict.fromkeys(tokens, "/app/tokens.txt"), check=lines),
    )


def keyword_hits_past_the_window_limit(tmp: Path) -> Case:
    """More hits of a rule's keyword in one buffer than windows are worth (70,000 lines starting
    ``ghp_``, the GitHub token keyword): the whole buffer is searched, so the tokens among them,
    the last one included, are still found."""
    tokens = [_token(i) for i in range(3)]
    lines = [b"ghp_-\n"] * 70_000
    for at, t in zip((10, 35_000, 69_999), tokens, strict=True):
        lines[at] = f"{t}\n".encode()  # bare: only the GitHub rule, whose keyword is everywhere, can see it
    return Case(
        _archive(tmp, [_tar([_file("app/tokens.txt", b"".join(lines))])]),
        Outcome("clean", found=dict.fromkeys(tokens, "/app/tokens.txt")),
    )


def _cut_inside(members: dict[str, bytes], layer: str) -> bytes:
    """``members`` as a tar stream, in their order, cut in the middle of ``layer``'s data."""
    data = _tar([_file(name, blob) for name, blob in members.items()])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember(layer)
    return data[: member.offset_data + member.size // 2]


def save_stream_cut_inside_a_layer(tmp: Path) -> Case:
    """Piped in and cut mid-layer after its manifest (which came first): the layers are placed in
    the image, and the cut one keeps the files in front of the break."""
    a, b = _token(1), _token(2)
    layer = _tar([_secret_file("app/b.txt", b), _file("app/big.bin", _noise(256 * 1024))])
    members = read_files_tar(_archive(tmp, [_healthy(a), layer]))
    assert list(members)[0] == "manifest.json"
    return Case(
        "-",
        Outcome("partial", "the stream breaks off inside its last layer", {a: "/healthy/token.txt", b: "/app/b.txt"}),
        _cut_inside(members, "l1.tar"),
    )


def save_stream_cut_before_its_manifest(tmp: Path) -> Case:
    """Piped in as docker save writes it, manifest last, and cut mid-layer: the manifest never
    comes, and the layers read are still reported."""
    a, b = _token(1), _token(2)
    layer = _tar([_secret_file("app/b.txt", b), _file("app/big.bin", _noise(256 * 1024))])
    manifest = [{"Config": "c.json", "Layers": ["0/layer.tar", "1/layer.tar"]}]
    members = {
        "0/layer.tar": _healthy(a),
        "1/layer.tar": layer,
        "c.json": b"{}",
        "manifest.json": json.dumps(manifest).encode(),
    }
    return Case(
        "-",
        Outcome("partial", "before its manifest.json", {a: "/healthy/token.txt", b: "/app/b.txt"}),
        _cut_inside(members, "1/layer.tar"),
    )


def hard_links_to_a_file_of_tokens(tmp: Path) -> Case:
    """200 links to a file of 200 tokens would be 40,000 locations: past max_link_locations the
    rest of the links are listed as not followed."""
    tokens = [_token(i) for i in range(200)]
    text = "".join(f"token: {t}\n" for t in tokens).encode()
    links = [_link(f"app/link{i}", "app/tokens.txt", tarfile.LNKTYPE) for i in range(200)]
    return Case(
        _archive(tmp, [_tar([_file("app/tokens.txt", text), *links])]),
        Outcome(
            "partial",
            "max_link_locations",
            {tokens[0]: "/app/tokens.txt", tokens[-1]: "/app/link0"},
            ("--limit", "max_link_locations=1000"),
        ),
    )


# ----------------------------------------------------------------------------- .git in an image

_GIT = "srv/app/.git/objects"


def _git_pack(data: bytes, name: str) -> tuple[tarfile.TarInfo, bytes]:
    return _file(f"{_GIT}/pack/{name}", data)


def _in_pack(name: str, body: bytes) -> str:
    """Where a blob of a pack is reported: the pack's path and the blob's git id."""
    return f"/{_GIT}/pack/{name}!/blob/{git_id('blob', body)}"


def _skipped_mentions(text: str) -> Callable[[dict[str, Any]], None]:
    def check(report: dict[str, Any]) -> None:
        assert any(text in s["reason"] for s in report["skipped"]), report["skipped"]

    return check


def git_pack_cut_short(tmp: Path) -> Case:
    """Cut inside its second object: the first is read, the healthy file beside it too."""
    a, b, c = _token(1), _token(2), _token(3)
    first, second = f"token: {a}\n".encode(), f"token: {b}\n".encode()
    data = pack([("blob", first), ("blob", second)])
    name = pack_name(data)
    return Case(
        _archive(tmp, [_tar([_git_pack(data[:-30], name), _secret_file("app/t.txt", c)])]),
        Outcome("partial", "git pack unreadable", {a: _in_pack(name, first), c: "/app/t.txt"}),
    )


def git_pack_claiming_two_billion_objects(tmp: Path) -> Case:
    a, c = _token(1), _token(3)
    first = f"token: {a}\n".encode()
    data = pack([("blob", first)], count=2**31)
    name = pack_name(data)
    return Case(
        _archive(tmp, [_tar([_git_pack(data, name), _secret_file("app/t.txt", c)])]),
        Outcome("partial", "over max_git_objects", {a: _in_pack(name, first), c: "/app/t.txt"}),
    )


def git_deltas_in_a_loop_and_on_themselves(tmp: Path) -> Case:
    """Two REF_DELTAs, each on the object the other would rebuild, and an OFS_DELTA on itself:
    none has a base to start from; the whole blob beside them is read."""
    a, c = _token(1), _token(3)
    first, x, y = f"token: {a}\n".encode(), f"x side {_token(4)}\n".encode(), f"y side {_token(5)}\n".encode()
    data = pack(
        [
            ("blob", first),
            ("ref", git_id("blob", y), delta(len(y), len(x), insert(x))),
            ("ref", git_id("blob", x), delta(len(x), len(y), insert(y))),
            ("ofs", 3, delta(len(first), len(first), copy(0, len(first)))),
        ]
    )
    name = pack_name(data)
    return Case(
        _archive(tmp, [_tar([_git_pack(data, name), _secret_file("app/t.txt", c)])]),
        Outcome(
            "partial",
            "whose base is not in this pack",  # the loop
            {a: _in_pack(name, first), c: "/app/t.txt"},
            check=_skipped_mentions("1 git delta unreadable"),  # the delta on itself
        ),
    )


def git_delta_copying_past_its_base(tmp: Path) -> Case:
    a, c = _token(1), _token(3)
    first = f"token: {a}\n".encode()
    data = pack([("blob", first), ("ofs", 0, delta(len(first), len(first) + 100, copy(0, len(first) + 100)))])
    name = pack_name(data)
    return Case(
        _archive(tmp, [_tar([_git_pack(data, name), _secret_file("app/t.txt", c)])]),
        Outcome("partial", "not applicable to their base", {a: _in_pack(name, first), c: "/app/t.txt"}),
    )


def git_loose_object_bomb(tmp: Path) -> Case:
    """A loose blob inflating to 40 MiB: read to the limit (its token, at the start, is found), then
    listed as cut."""
    a, c = _token(1), _token(3)
    oid = hashlib.sha1(os.urandom(8)).hexdigest()
    bomb = zlib.compress(f"blob {40 * MiB}\0token: {a}\n".encode() + bytes(40 * MiB), 9)
    return Case(
        _archive(tmp, [_tar([_file(f"{_GIT}/{oid[:2]}/{oid[2:]}", bomb), _secret_file("app/t.txt", c)])]),
        Outcome(
            "partial",
            "inflates to more than",
            {a: f"/{_GIT}/{oid[:2]}/{oid[2:]}!/blob/{oid}", c: "/app/t.txt"},
            ("--limit", "max_nested_uncompressed_bytes=8MiB"),
        ),
    )


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
        save_stream_cut_inside_a_layer,
        save_stream_cut_before_its_manifest,
        gnu_long_name,
        pax_long_name_and_link,
        pax_times_that_are_not_numbers,
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
        oci_layer_longer_than_its_descriptor,
        oci_config_longer_than_its_descriptor,
        oci_bogus_media_types,
        oci_bogus_config_digest,
        oci_layer_digest_path_traversal,
        oci_index_not_a_list,
        oci_index_nested_deep,
        gzip_file_that_is_partly_plain_text,
        zip_stored_member_with_bad_crc,
        zip_without_central_directory,
        tar_layer_damaged_before_a_file,
        gzip_layer_with_a_bad_tar_header,
        gzip_layer_cut_into_plain_text,
        xz_layer_demanding_too_much_memory,
        nested_xz_demanding_too_much_memory,
        corrupt_nested_xz,
        path_50000_directories_deep,
        oci_index_graph_fanning_out,
        oci_index_listing_itself,
        oci_healthy_image_beside_a_too_deep_index_chain,
        oci_healthy_image_beside_a_missing_index,
        oci_healthy_image_beside_a_manifest_that_is_not_json,
        archive_image_with_a_missing_config_beside_a_healthy_one,
        env_entries_times_history_steps,
        many_empty_files_then_a_secret,
        five_thousand_tokens_in_one_file,
        keyword_hits_past_the_window_limit,
        hard_links_to_a_file_of_tokens,
        git_pack_cut_short,
        git_pack_claiming_two_billion_objects,
        git_deltas_in_a_loop_and_on_themselves,
        git_delta_copying_past_its_base,
        git_loose_object_bomb,
    )
}


def test_the_corpus_is_at_least_thirty_inputs() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(cli, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    case = CASES[name](work)
    if case.stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(case.stdin)))
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
    if expected.check is not None:
        expected.check(report)
    problems = list(report["errors"]) + [f"{s['what']}: {s['reason']}" for s in report["skipped"]]
    if expected.kind == "clean":
        assert report["complete"] and not problems, problems
        assert result.code == (1 if expected.found else 0)
    else:
        assert not report["complete"] and any(expected.text in p for p in problems), problems
        assert result.code == (2 if report["errors"] else 1 if report["findings"] else 0)
