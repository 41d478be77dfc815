"""Checks of the test image builder itself, with the stdlib (and zstandard) only."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
import secretgen
import zstandard
from imagebuilder import (
    EmptyStep,
    Entry,
    ImageSpec,
    Layer,
    build_config,
    compress,
    layer_tar,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
    write_rootfs,
)

RAW = b"caf\xe9/secr\xffet.txt"  # Latin-1 bytes: not valid UTF-8


def _spec(tag: str = "demo/app:1.0", arch: str = "amd64", compression: str = "gzip") -> ImageSpec:
    return ImageSpec(
        steps=[
            Layer(
                [
                    Entry("/etc", kind="dir"),
                    Entry("etc/secret", b"password=hunter2\n", mode=0o600),
                    Entry("app/.env", b"AWS_SECRET_ACCESS_KEY=x\n"),
                    Entry("app/link", kind="symlink", target="/etc/secret"),
                    Entry("app/hard", kind="hardlink", target="/etc/secret"),
                    Entry("x", raw_name=RAW, data=b"raw"),
                    Entry("deep/" + "d" * 120 + "/file.txt", b"long name"),
                ],
                created_by="COPY . /",
                compression=compression,
            ),
            EmptyStep("ENV TOKEN=abc"),
            EmptyStep("LABEL a=b"),
            Layer(
                [Entry("etc/secret", kind="whiteout"), Entry("app", kind="opaque"), Entry("app/ok", b"ok")],
                created_by="RUN rm /etc/secret",
                compression=compression,
            ),
        ],
        env=["PATH=/usr/bin", "TOKEN=abc"],
        labels={"a": "b"},
        cmd=["/app/run"],
        healthcheck={"Test": ["CMD", "true"]},
        onbuild=["RUN echo hi"],
        user="1000",
        annotations={"org.opencontainers.image.source": "https://example.invalid/demo"},
        repo_tags=[tag],
        architecture=arch,
    )


def _members(data: bytes) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: (tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()}


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_build_is_deterministic(tmp_path: Path) -> None:
    for i in (1, 2):
        write_docker_archive(tmp_path / f"legacy{i}.tar", _spec())
        write_docker_archive(tmp_path / f"oci{i}.tar", _spec(), style="oci")
        write_oci_archive(tmp_path / f"layout{i}.tar", [_spec(), _spec(compression="zstd")], index=True)
    for name in ("legacy", "oci", "layout"):
        assert (tmp_path / f"{name}1.tar").read_bytes() == (tmp_path / f"{name}2.tar").read_bytes()
    assert build_config(_spec()) == build_config(_spec())
    for c in ("gzip", "zstd", "none"):
        assert compress(b"abc" * 1000, c) == compress(b"abc" * 1000, c)


def test_build_is_deterministic_across_processes(tmp_path: Path) -> None:
    """Set/dict ordering must not leak into the bytes: build under two hash seeds."""
    script = (
        "import sys, hashlib, test_imagebuilder as t, imagebuilder as ib;"
        "p = sys.argv[1]; ib.write_docker_archive(p, [t._spec(), t._spec('x/y:2', 'arm64')], style='oci');"
        "print(hashlib.sha256(open(p, 'rb').read()).hexdigest())"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).parent)}
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"{seed}.tar")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outs.add(out.stdout)
    assert len(outs) == 1


def test_layer_tar_members_and_fixed_metadata() -> None:
    tar = layer_tar(_spec().layers[1])
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        names = tf.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == m.gname == "" for m in tf)
    assert names == ["etc/.wh.secret", "app/.wh..wh..opq", "app/ok"]
    first = _members(layer_tar(_spec().layers[0]))
    assert first["etc/secret"] == b"password=hunter2\n"
    assert "deep/" + "d" * 120 + "/file.txt" in first
    with tarfile.open(fileobj=io.BytesIO(layer_tar(_spec().layers[0]))) as tf:
        assert tf.getmember("etc").isdir() and tf.getmember("etc").mode == 0o755
        assert tf.getmember("etc/secret").mode == 0o600
        assert tf.getmember("app/link").issym() and tf.getmember("app/link").linkname == "/etc/secret"
        assert tf.getmember("app/hard").islnk() and tf.getmember("app/hard").linkname == "etc/secret"


def test_raw_name_survives_byte_for_byte(tmp_path: Path) -> None:
    tar = layer_tar(_spec().layers[0])
    assert RAW in tar  # stored raw in the ustar header, not re-encoded
    with tarfile.open(fileobj=io.BytesIO(tar), encoding="utf-8", errors="surrogateescape") as tf:
        raw = [m for m in tf if m.name.encode("utf-8", "surrogateescape") == RAW]
        assert len(raw) == 1 and tf.extractfile(raw[0]).read() == b"raw"
    write_rootfs(tmp_path / "root", _spec().layers)
    assert (tmp_path / "root").joinpath(os.fsdecode(RAW)).read_bytes() == b"raw"


def test_config_diff_ids_and_history() -> None:
    spec = _spec()
    cfg = json.loads(build_config(spec))
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [_sha(layer_tar(ly)) for ly in spec.layers]}
    assert len(cfg["history"]) == len(spec.steps)
    assert sum(not h.get("empty_layer") for h in cfg["history"]) == len(spec.layers) == 2
    assert [h["created_by"] for h in cfg["history"]][1] == "ENV TOKEN=abc"
    c = cfg["config"]
    assert c["Env"] == ["PATH=/usr/bin", "TOKEN=abc"] and c["Labels"] == {"a": "b"} and c["User"] == "1000"
    assert c["Healthcheck"] == {"Test": ["CMD", "true"]} and c["OnBuild"] == ["RUN echo hi"]
    assert cfg["created"] == "1970-01-01T00:00:00Z" and cfg["architecture"] == "amd64"


@pytest.mark.parametrize("style", ["legacy", "oci"])
def test_docker_archive_manifest_points_to_members(tmp_path: Path, style: str) -> None:
    base = _spec().steps[0]
    tags = ["demo/other:2", "demo/other:latest"]
    other = ImageSpec(steps=[base, Layer([Entry("other", b"2")])], repo_tags=tags)
    ids = write_docker_archive(tmp_path / "a.tar", [_spec(), other], style=style)
    members = _members((tmp_path / "a.tar").read_bytes())
    manifest = json.loads(members["manifest.json"])
    assert [m["RepoTags"] for m in manifest] == [["demo/app:1.0"], ["demo/other:2", "demo/other:latest"]]
    for entry, image_id in zip(manifest, ids, strict=True):
        config = members[entry["Config"]]
        assert _sha(config) == image_id
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        # layers are stored uncompressed whatever Layer.compression says
        assert [_sha(members[p]) for p in entry["Layers"]] == diff_ids
    shared = set(manifest[0]["Layers"]) & set(manifest[1]["Layers"])
    assert len(shared) == 1  # the common base layer is stored once
    assert json.loads(members["repositories"])["demo/other"].keys() == {"2", "latest"}
    if style == "legacy":
        assert all(p.endswith("/layer.tar") for p in manifest[0]["Layers"])
        layer_dir = manifest[0]["Layers"][0].rsplit("/", 1)[0]
        assert members[layer_dir + "/VERSION"] == b"1.0" and layer_dir + "/json" in members
    else:
        assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads(members["index.json"])
        names = [d["annotations"]["io.containerd.image.name"] for d in index["manifests"]]
        assert names == ["docker.io/demo/app:1.0", "docker.io/demo/other:2", "docker.io/demo/other:latest"]
        for d in index["manifests"]:
            man = json.loads(members["blobs/sha256/" + d["digest"][7:]])
            assert {ly["mediaType"] for ly in man["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
            assert all("blobs/sha256/" + ly["digest"][7:] in members for ly in man["layers"])
            assert d["platform"] == {"architecture": "amd64", "os": "linux"}


def _check_layout_blobs(root: Path) -> None:
    for blob in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_oci_layout_blobs_and_media_types(tmp_path: Path, compression: str) -> None:
    spec = _spec(compression=compression)
    digests = write_oci_layout(tmp_path, [spec], ref_names=["1.0"])
    _check_layout_blobs(tmp_path)
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "index.json").read_text())
    (desc,) = index["manifests"]
    assert desc["digest"] == digests[0]
    assert desc["annotations"] == {"org.opencontainers.image.ref.name": "1.0"}
    blob = lambda d: (tmp_path / "blobs" / "sha256" / d["digest"][7:]).read_bytes()  # noqa: E731
    man = json.loads(blob(desc))
    assert desc["size"] == len(blob(desc)) and man["annotations"] == spec.annotations
    suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[compression]
    decompress = {
        "gzip": gzip.decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
        "none": lambda b: b,
    }[compression]
    diff_ids = json.loads(blob(man["config"]))["rootfs"]["diff_ids"]
    for layer, diff_id in zip(man["layers"], diff_ids, strict=True):
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar" + suffix
        assert layer["size"] == len(blob(layer)) and _sha(decompress(blob(layer))) == diff_id
    if compression == "gzip":
        assert blob(man["layers"][0])[4:8] == b"\0\0\0\0"  # gzip mtime field


def test_oci_multi_arch_index(tmp_path: Path) -> None:
    specs = [_spec(arch="amd64"), ImageSpec(steps=_spec().steps, architecture="arm64", variant="v8")]
    digests = write_oci_layout(tmp_path, specs, ref_names=["multi"], index=True)
    _check_layout_blobs(tmp_path)
    (top,) = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "multi"
    nested = json.loads((tmp_path / "blobs" / "sha256" / top["digest"][7:]).read_text())
    assert [m["digest"] for m in nested["manifests"]] == digests
    assert [m["platform"] for m in nested["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    write_oci_archive(tmp_path / "x.tar", specs, ref_names=["multi"], index=True)
    members = _members((tmp_path / "x.tar").read_bytes())
    assert members["index.json"] == (tmp_path / "index.json").read_bytes()


def test_rootfs_applies_whiteouts_and_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_rootfs(root, _spec().layers)
    assert not (root / "etc" / "secret").exists()
    assert sorted(os.listdir(root / "app")) == ["ok"]  # opaque hid the lower layer's files
    write_rootfs(tmp_path / "first", _spec().layers[:1])
    assert os.readlink(tmp_path / "first" / "app" / "link") == "/etc/secret"
    assert (tmp_path / "first" / "app" / "hard").read_bytes() == b"password=hunter2\n"


def test_rootfs_never_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = [
        Layer([Entry("esc", kind="symlink", target=str(outside))]),
        Layer([Entry("esc/pwned", b"x"), Entry("../pwned", b"x"), Entry("ok", b"fine")]),
    ]
    with pytest.raises(ValueError):
        write_rootfs(root, evil)
    skipped = write_rootfs(tmp_path / "root2", evil, on_unsafe="skip")
    assert skipped == ["esc/pwned", "../pwned"]
    assert os.listdir(outside) == [] and not (tmp_path / "pwned").exists()
    assert (tmp_path / "root2" / "ok").read_bytes() == b"fine"
    # '..' stays in layer tars on purpose, for path-traversal tests
    assert "../pwned" in _members(layer_tar(evil[1]))


def test_secretgen_formats() -> None:
    def crc_ok(token: str) -> bool:  # GitHub/npm: last 6 chars are base62(crc32(random part))
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        n = 0
        for ch in token[-6:]:
            n = n * 62 + alphabet.index(ch)
        return n == zlib.crc32(token[4:-6].encode())

    shapes = {
        secretgen.aws_access_key_id: r"AKIA[A-Z2-7]{16}",
        secretgen.aws_secret_access_key: r"[A-Za-z0-9/+]{40}",
        secretgen.github_pat: r"ghp_[A-Za-z0-9]{36}",
        secretgen.github_fine_grained: r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        secretgen.gitlab_pat: r"glpat-[\w-]{20}",
        secretgen.slack_bot_token: r"xoxb-\d{10,13}-\d{10,13}-[A-Za-z0-9]{24}",
        secretgen.slack_webhook: r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{24}",
        secretgen.stripe_live_secret: r"sk_live_[A-Za-z0-9]{24,99}",
        secretgen.openai_key: r"sk-proj-[\w-]{74}T3BlbkFJ[\w-]{74}",
        secretgen.npm_token: r"npm_[A-Za-z0-9]{36}",
        secretgen.pypi_token: r"pypi-AgEIcHlwaS5vcmc[\w-]{50,}",
        secretgen.vault_token: r"hvs\.[\w-]{90,120}",
        secretgen.openbao_token: r"s\.[A-Za-z0-9]{24}",
        secretgen.jwt: r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]{43}",
        secretgen.password: r"\S{20}",
    }
    for fn, shape in shapes.items():
        a, b = fn(), fn()
        assert re.fullmatch(shape, a), (fn.__name__, a)
        assert a != b and fn(seed=7) == fn(seed=7)
        assert not re.search(r"(.)\1\1\1", a)
    assert crc_ok(secretgen.github_pat()) and crc_ok(secretgen.npm_token())
    assert secretgen.rsa_private_key_pem().startswith("-----BEGIN PRIVATE KEY-----")
    assert secretgen.ec_private_key_pem().startswith("-----BEGIN EC PRIVATE KEY-----")
    assert secretgen.openssh_private_key().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
