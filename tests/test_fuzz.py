"""Property and fuzz tests: generated and mutated inputs for the layer reader (tar, gzip, zstd),
the nested-archive reader, and the image metadata readers (configs, manifests, indexes).

The property everywhere: whatever the bytes, the reader returns a result (what it could read, what
it could not) or raises secretscan's own one-line error — never another exception, never a hang.
A budget of examples per test keeps CI fast (``FUZZ_EXAMPLES`` raises it: ``make fuzz``); under
CI=true the examples are derandomised, so a failure reproduces.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import secretgen
import zstandard
from conftest import IN_CI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imagebuilder import (
    Entry,
    ImageSpec,
    Layer,
    read_files_tar,
    write_docker_archive,
    write_files_tar,
    write_oci_layout,
    zip_bytes,
)
from test_gitobjects import copy, delta, git_id, insert, pack, pack_name

from secretscan.config import ScanConfig
from secretscan.detection import Detection
from secretscan.errors import SecretScanError
from secretscan.image.model import ImageConfig
from secretscan.limits import Limits
from secretscan.models import Skipped
from secretscan.scan import Scanner
from secretscan.sources import open_source
from secretscan.walk import gitobjects
from secretscan.walk.config_fields import config_texts
from secretscan.walk.content import ContentScanner
from secretscan.walk.fate import FateIndex, LayerPaths
from secretscan.walk.layer import RAW_LAYER_PATH, scan_layer_blob

BUDGET = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),  # `make fuzz` runs a longer campaign
    deadline=None,
    derandomize=IN_CI,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
SECONDS_PER_INPUT = 10.0
"""Far above what any of these small inputs takes: a reader over it is hanging."""
LIMITS = Limits(max_nested_entries=200, max_nested_uncompressed_bytes=4 * 1024 * 1024)


class _Quiet(Scanner):
    """A scanner whose repr is short: Hypothesis prints every argument of a failing example."""

    def __repr__(self) -> str:
        return "<scanner>"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    config = ScanConfig(limits=LIMITS, jobs=1)
    return _Quiet(config, Detection.for_config(config))


TOKEN = secretgen.github_pat()


def _layer_tar() -> bytes:
    out = io.BytesIO()
    files = {
        "app/token.txt": f"token: {TOKEN}\n".encode(),
        "app/lib.jar": zip_bytes({"a.properties": f"password={TOKEN}\n".encode(), "b.txt": b"x" * 3000}),
        "app/data.tar.gz": gzip.compress(b"hello" * 500),
        "app/notes.md": b"# notes\n" * 200,
    }
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("app/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(link)
    return out.getvalue()


LAYER = _layer_tar()
COMPRESSED = {
    "none": LAYER,
    "gzip": gzip.compress(LAYER, mtime=0),
    "zstd": zstandard.ZstdCompressor(write_checksum=True).compress(LAYER),
}

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("zero"), st.integers(0, 10**6), st.integers(1, 2048)),
)


def _mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    b = bytearray(data)
    for kind, where, value in edits:
        if not b:
            break
        i = where % len(b)
        if kind == "flip":
            b[i] ^= value
        elif kind == "cut":
            del b[i:]
        elif kind == "insert":
            b[i:i] = bytes([value]) * 7
        else:
            b[i : i + value] = bytes(min(value, len(b) - i))
    return bytes(b)


def _timed(fn: Any, *args: Any) -> Any:
    started = time.monotonic()
    out = fn(*args)
    assert time.monotonic() - started < SECONDS_PER_INPUT, "a reader took too long on a small input"
    return out


def test_the_unmutated_layer_is_read_in_full(scanner: Scanner) -> None:
    for name, blob in COMPRESSED.items():
        result = scan_layer_blob(scanner.engine, scanner.sealer, LIMITS, io.BytesIO(blob))
        assert result.error is None and not result.skipped, name
        paths = {path for _, path, _ in result.matches}
        assert {"/app/token.txt", "/app/lib.jar!/a.properties"} <= paths, name


class _FailingSource(io.RawIOBase):
    """A layer's source whose reads fail from byte ``at`` on, every time they are tried again: a
    ``docker save`` stream cut inside a layer fails so (its tar reader raises ``ReadError``)."""

    def __init__(self, data: bytes, at: int, error: Exception) -> None:
        self.data, self.at, self.pos, self.error = data, at, 0, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.at:
            raise self.error
        n = min(len(buffer), self.at - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize(
    "error", [tarfile.ReadError("unexpected end of data"), OSError("stream cut"), ValueError("bad chunk")], ids=repr
)
def test_a_source_that_keeps_failing_costs_only_the_rest_of_its_layer(scanner: Scanner, error: Exception) -> None:
    for name, blob in COMPRESSED.items():
        source = io.BufferedReader(_FailingSource(blob, len(blob) - 1, error))
        result = scan_layer_blob(scanner.engine, scanner.sealer, LIMITS, source)  # type: ignore[arg-type]
        assert result.error is not None and "\n" not in result.error, name
        assert result.stored_digest is None, name  # the blob was not read to its end: no digest to vouch for it
        assert "/app/token.txt" in {path for _, path, _ in result.matches}, name


@BUDGET
@given(kind=st.sampled_from(sorted(COMPRESSED)), edits=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_layers_give_a_result_never_an_exception(scanner: Scanner, kind: str, edits: list) -> None:
    blob = _mutate(COMPRESSED[kind], edits)
    result = _timed(scan_layer_blob, scanner.engine, scanner.sealer, LIMITS, io.BytesIO(blob))
    assert result.error is None or "\n" not in result.error
    assert all(isinstance(s, Skipped) for s in result.skipped)
    for sighting, path, _ in result.matches:  # whatever was read is labelled, never a host path
        assert (path.startswith("/") or path == RAW_LAYER_PATH) and TOKEN not in repr(sighting)


@BUDGET
@given(data=st.binary(max_size=8192))
def test_arbitrary_bytes_as_a_layer(scanner: Scanner, data: bytes) -> None:
    result = _timed(scan_layer_blob, scanner.engine, scanner.sealer, LIMITS, io.BytesIO(data))
    assert result.error is not None or result.files >= 0


@BUDGET
@given(
    which=st.sampled_from(["zip", "tar.gz", "zstd"]),
    edits=st.lists(mutation, min_size=1, max_size=4),
)
def test_mutated_nested_archives_are_scanned_or_skipped(scanner: Scanner, which: str, edits: list) -> None:
    inner = {"cfg/app.properties": f"password={TOKEN}\n".encode(), "big.txt": b"lorem ipsum " * 800}
    if which == "zip":
        blob = zip_bytes(inner)
    else:
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as t:
            for name, data in inner.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        blob = (
            gzip.compress(tar.getvalue()) if which == "tar.gz" else zstandard.ZstdCompressor().compress(tar.getvalue())
        )
    skipped: list[Skipped] = []
    found: list[str] = []
    content = ContentScanner(scanner.engine, LIMITS, lambda m, path, line: found.append(path), skipped.append)
    _timed(content.scan, "/app/archive", io.BytesIO(_mutate(blob, edits)))
    assert all(p.startswith("/app/archive") for p in found)
    assert all(s.what.startswith("/app/archive") and s.reason for s in skipped)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
config_like = st.fixed_dictionaries(
    {},
    optional={
        "rootfs": st.one_of(json_values, st.fixed_dictionaries({"diff_ids": st.lists(json_values, max_size=4)})),
        "history": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {}, optional={"created_by": json_values, "empty_layer": json_values, "comment": json_values}
                ),
                max_size=6,
            ),
        ),
        "config": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    k: json_values for k in ("Env", "Labels", "Cmd", "Entrypoint", "Healthcheck", "OnBuild", "User")
                },
            ),
        ),
        "os": json_values,
        "architecture": json_values,
        "variant": json_values,
    },
)


@BUDGET
@given(doc=st.one_of(config_like, json_values))
def test_image_config_parser_on_generated_configs(doc: Any) -> None:
    try:
        config = ImageConfig.parse(json.dumps(doc).encode(), "fuzz")
    except SecretScanError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(d, str) for d in config.diff_ids)
    for i in range(len(config.diff_ids)):
        step = config.step_for_layer(i)
        assert step is None or isinstance(step, str)


@BUDGET
@given(data=st.binary(max_size=2048))
def test_image_config_parser_on_arbitrary_bytes(data: bytes) -> None:
    try:
        ImageConfig.parse(data, "fuzz")
    except SecretScanError as exc:
        assert "\n" not in str(exc)


def _scan_or_error(scanner: Scanner, reference: str) -> None:
    try:
        report = _timed(scanner.scan, open_source(reference))
    except SecretScanError as exc:
        assert "\n" not in str(exc)
        return
    assert all("\n" not in e for e in report.errors)


@BUDGET
@given(
    field_name=st.sampled_from(["config", "layers", "mediaType", "schemaVersion", "annotations"]),
    value=json_values,
    index_value=st.one_of(st.none(), json_values),
)
def test_oci_layout_with_generated_manifest_fields(
    scanner: Scanner, field_name: str, value: Any, index_value: Any
) -> None:
    with tempfile.TemporaryDirectory() as td:
        layout = Path(td) / "layout"
        write_oci_layout(layout, ImageSpec([Layer([Entry("app/t.txt", f"token: {TOKEN}\n".encode())])]))
        index = json.loads((layout / "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads((layout / "blobs" / "sha256" / digest).read_bytes())
        manifest[field_name] = value
        (layout / "blobs" / "sha256" / digest).write_text(json.dumps(manifest))  # now also a digest mismatch
        if index_value is not None:
            index["manifests"][0]["platform"] = index_value
            index["manifests"].append(index_value)
        (layout / "index.json").write_text(json.dumps(index))
        _scan_or_error(scanner, f"oci:{layout}")


@BUDGET
@given(
    manifest=st.one_of(
        json_values,
        st.lists(
            st.fixed_dictionaries({}, optional={"Config": json_values, "Layers": json_values, "RepoTags": json_values}),
            max_size=3,
        ),
    )
)
def test_docker_archive_with_generated_manifest_json(scanner: Scanner, manifest: Any) -> None:
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "image.tar"
        write_docker_archive(path, ImageSpec([Layer([Entry("app/t.txt", b"x")])], repo_tags=["fuzz:1"]))
        write_files_tar(path, {**read_files_tar(path), "manifest.json": json.dumps(manifest).encode()})
        _scan_or_error(scanner, f"docker-archive:{path}")


# ----------------------------------------------------------------------------- fate and attribution

_PATH = st.lists(st.sampled_from(["a", "b", "ab", "a.jar"]), max_size=4).map(lambda parts: "/" + "/".join(parts))
_ENTRY = st.tuples(_PATH, st.sampled_from(["whiteout", "opaque", "file", "dir", "symlink"]))


def _layer_paths(entries: list[tuple[str, str]]) -> LayerPaths:
    paths = LayerPaths()
    for path, kind in entries:
        if kind == "whiteout":
            paths.whiteouts.add(path)
        elif kind == "opaque":
            paths.opaque_dirs.add(path)
        else:
            paths.present[path] = kind
    return paths


def _fate_by_definition(layers: list[LayerPaths], layer: int, path: str) -> tuple[int, str] | None:
    """The rule as SECURITY.md and the walker tests state it, the slow way: every ancestor of the
    path as a string, every later layer in turn."""
    outer = path.split("!/", 1)[0]
    parts = outer.split("/")
    ancestors = {"/".join(parts[:i]) for i in range(1, len(parts))} - {""}
    if outer != "/":
        ancestors.add("/")
    for later in range(layer + 1, len(layers)):
        paths = layers[later]
        if outer in paths.whiteouts or ancestors & paths.whiteouts or ancestors & paths.opaque_dirs:
            return later, "deleted"
        if any(paths.present.get(a, "dir") != "dir" for a in ancestors):
            return later, "deleted"
        if outer in paths.present:
            return later, "overwritten"
    return None


@BUDGET
@given(
    layers=st.lists(st.lists(_ENTRY, max_size=6), min_size=1, max_size=5),
    queries=st.lists(st.tuples(st.integers(0, 4), _PATH, st.booleans()), max_size=8),
)
def test_fate_follows_whiteouts_opaque_dirs_and_replaced_parents(
    layers: list[list[tuple[str, str]]], queries: list[tuple[int, str, bool]]
) -> None:
    paths = [_layer_paths(entries) for entries in layers]
    asked = [
        (min(layer, len(paths) - 1), path + ("!/inner/x.txt" if nested else "")) for layer, path, nested in queries
    ]
    got = FateIndex(paths).fates(asked)
    assert [None if f is None else (f.layer, f.how) for f in got] == [
        _fate_by_definition(paths, layer, path) for layer, path in asked
    ]


_STEP = st.lists(
    st.sampled_from(["ENV", "ARG", "LABEL", "CMD", "/bin/sh -c #(nop) ", "A=1", "B", '"x y"', "'", "\\", "=", " "]),
    max_size=8,
).map("".join)


@BUDGET
@given(steps=st.lists(_STEP, max_size=8), env=st.lists(st.sampled_from(["A=1", "B=2", "B", "=", ""]), max_size=4))
def test_config_texts_name_only_real_history_steps(steps: list[str], env: list[str]) -> None:
    config = ImageConfig.parse(
        json.dumps(
            {"config": {"Env": env, "Labels": {"A": "1"}, "Cmd": ["x"]}, "history": [{"created_by": s} for s in steps]}
        ).encode(),
        "fuzz",
    )
    texts = list(config_texts(config, {}))
    assert len([t for t in texts if t.field.startswith("config.Env[")]) == len(env)
    assert all(t.created_by is None or t.created_by in steps for t in texts)


_GIT_BASE = f"token: {TOKEN}\n".encode() + b"lorem ipsum dolor sit amet\n" * 40
_GIT_NEXT = _GIT_BASE + b"one more line\n"
_GIT_COMMIT = f"tree {'0' * 40}\n\ndeploy {TOKEN}\n".encode()
GIT_PACK = pack(
    [
        ("blob", _GIT_BASE),
        ("ofs", 0, delta(len(_GIT_BASE), len(_GIT_NEXT), copy(0, len(_GIT_BASE)), insert(b"one more line\n"))),
        ("ref", git_id("blob", _GIT_NEXT), delta(len(_GIT_NEXT), 40, copy(27, 40))),
        ("commit", _GIT_COMMIT),
    ]
)
GIT_LIMITS = Limits(max_nested_uncompressed_bytes=4 * 1024 * 1024, max_git_bytes=16 * 1024 * 1024)


def test_the_unmutated_git_pack_is_read_in_full(scanner: Scanner) -> None:
    path = f"/srv/app/.git/objects/pack/{pack_name(GIT_PACK)}"
    skipped: list[Skipped] = []
    found: list[str] = []
    content = ContentScanner(scanner.engine, GIT_LIMITS, lambda m, p, line: found.append(p), skipped.append)
    content.scan(path, io.BytesIO(GIT_PACK))
    assert not skipped
    expected = [f"{path}!/blob/{git_id('blob', b)}" for b in (_GIT_BASE, _GIT_NEXT)]
    expected.append(f"{path}!/commit/{git_id('commit', _GIT_COMMIT)}")
    assert sorted(found) == sorted(expected)  # the third object, 40 bytes of lorem ipsum, holds no token


def _scan_git_file(scanner: Scanner, path: str, data: bytes) -> tuple[list[str], list[Skipped]]:
    """(the paths matches were reported under, the skip notes) of one file of a git object store."""
    skipped: list[Skipped] = []
    found: list[str] = []
    content = ContentScanner(scanner.engine, GIT_LIMITS, lambda m, p, line: found.append(p), skipped.append)
    _timed(content.scan, path, io.BytesIO(data))
    return found, skipped


@BUDGET
@given(edits=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_git_packs_are_read_or_listed(scanner: Scanner, edits: list) -> None:
    """A pack with a whole blob, an OFS_DELTA, a REF_DELTA and a commit, mutated: whatever is
    read is named inside the pack, whatever is not is listed, nothing raises or hangs."""
    path = f"/srv/app/.git/objects/pack/{pack_name(GIT_PACK)}"
    found, skipped = _scan_git_file(scanner, path, _mutate(GIT_PACK, edits))
    assert all(p == path or p.startswith(path + "!") for p in found)
    assert all(s.what == path and s.reason for s in skipped)


@BUDGET
@given(base=st.binary(max_size=300), body=st.binary(max_size=300), whole=st.booleans())
def test_arbitrary_deltas_are_applied_or_listed(base: bytes, body: bytes, whole: bool) -> None:
    """Any delta instructions on any base: a rebuilt object carries the id git would give its
    bytes; one that cannot be rebuilt is a note."""
    instructions = delta(len(base), len(body), body) if whole else body
    data = pack([("blob", base), ("ofs", 0, instructions)])
    items = _timed(
        lambda: list(
            gitobjects.read_pack("objects/pack/x.pack", data, max_objects=10, max_bytes=1 << 20, max_object=1 << 20)
        )
    )
    objects = [i for i in items if isinstance(i, gitobjects.GitObject)]
    assert objects[0].data == base
    for obj in objects:
        assert obj.oid.hex() == git_id("blob", obj.data)
    assert len(objects) == 2 or any(isinstance(i, gitobjects.Note) and i.reason for i in items)


GIT_LOOSE = zlib.compress(b"blob %d\0" % len(_GIT_BASE) + _GIT_BASE)


@BUDGET
@given(edits=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_loose_git_objects_are_read_or_scanned_as_they_are(scanner: Scanner, edits: list) -> None:
    oid = git_id("blob", _GIT_BASE)
    path = f"/srv/app/.git/objects/{oid[:2]}/{oid[2:]}"
    found, skipped = _scan_git_file(scanner, path, _mutate(GIT_LOOSE, edits))
    assert all(p == path or p.startswith(path + "!/blob/") for p in found)
    assert all(s.what == path and s.reason for s in skipped)
