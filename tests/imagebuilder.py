"""Deterministic builder of container images for tests and demo fixtures.

Builds Docker archives (`docker save`, legacy and Docker 25+ OCI style), OCI
image layouts (directory or tar) and plain root filesystems from a small
spec, with no docker daemon and no network. Identical specs give
byte-identical output: every timestamp is 0, owners are root with empty
names, JSON keys are sorted and gzip carries no mtime or file name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

EPOCH = "1970-01-01T00:00:00Z"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
KINDS = ("file", "dir", "symlink", "hardlink", "whiteout", "opaque")


@dataclass(frozen=True)
class Entry:
    """One tar member of a layer.

    `path` is normalised (leading "/" and "./" and trailing "/" dropped) but
    ".." is kept on purpose, so tests can build path-traversal layers.
    `raw_name`, when given, replaces `path` byte for byte (for non-UTF-8 names).
    A "whiteout" of "etc/secret" becomes the member "etc/.wh.secret"; an
    "opaque" of dir "etc" becomes "etc/.wh..wh..opq". A "dir" left at the
    default mode 0o644 is written as 0o755, since a directory without x bits
    is never what a test means.
    """

    path: str
    data: bytes = b""
    kind: str = "file"
    target: str = ""
    mode: int = 0o644
    raw_name: bytes | None = None
    mtime: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown entry kind {self.kind!r}")

    @property
    def logical_path(self) -> str:
        """The path the entry is about (str; non-UTF-8 bytes as surrogates)."""
        if self.raw_name is not None:
            return self.raw_name.decode("utf-8", "surrogateescape")
        return _norm(self.path)

    @property
    def member_name(self) -> str:
        """The tar member name, after whiteout/opaque marking."""
        p = self.logical_path
        if self.kind == "whiteout":
            head, _, base = p.rpartition("/")
            return f"{head}/{WHITEOUT_PREFIX}{base}" if head else WHITEOUT_PREFIX + base
        if self.kind == "opaque":
            return f"{p}/{OPAQUE_MARKER}" if p else OPAQUE_MARKER
        return p


@dataclass(frozen=True)
class Layer:
    """A filesystem layer; `compression` only matters for OCI layouts."""

    entries: tuple[Entry, ...] | list[Entry]
    created_by: str = ""
    compression: str = "gzip"

    def __post_init__(self) -> None:
        if self.compression not in MT_OCI_LAYER:
            raise ValueError(f"unknown compression {self.compression!r}")


@dataclass(frozen=True)
class EmptyStep:
    """A history entry with empty_layer: true (ENV, ARG, LABEL, ...)."""

    created_by: str


@dataclass(frozen=True)
class ImageSpec:
    """An image: steps in build order give both the history and the layers."""

    steps: list[Layer | EmptyStep] | tuple[Layer | EmptyStep, ...]
    env: list[str] | tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    healthcheck: dict[str, Any] | None = None
    onbuild: list[str] | None = None
    user: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    repo_tags: list[str] | tuple[str, ...] = ()
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)  # e.g. WorkingDir, ExposedPorts

    @property
    def layers(self) -> list[Layer]:
        return [s for s in self.steps if isinstance(s, Layer)]


# --------------------------------------------------------------------------- basics


def _norm(path: str) -> str:
    path = path.lstrip("/")
    while path.startswith("./"):
        path = path[2:].lstrip("/")
    return "" if path == "." else path.rstrip("/")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha(data: bytes) -> str:
    return "sha256:" + sha256_hex(data)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _tarinfo(name: str, type_: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = type_, mode & 0o7777, size, linkname
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
    return ti


def _tar(members: Iterable[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    """Write members as plain ustar, falling back to PAX only when a header needs it.

    Plain ustar keeps non-UTF-8 names as raw bytes in the header, as GNU tar does.
    """
    out = io.BytesIO()
    for ti, data in members:
        try:
            out.write(ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
        except ValueError:  # name/link too long or number too big for ustar
            out.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        out.write(data)
        out.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def layer_tar(layer: Layer) -> bytes:
    """The uncompressed layer tar, members in spec order, no implied parent dirs."""
    members = []
    for e in layer.entries:
        data = e.data if e.kind == "file" else b""
        type_, mode, link = {
            "dir": (tarfile.DIRTYPE, 0o755 if e.mode == 0o644 else e.mode, ""),
            "symlink": (tarfile.SYMTYPE, 0o777, e.target),
            "hardlink": (tarfile.LNKTYPE, e.mode, _norm(e.target)),  # an archive path
        }.get(e.kind, (tarfile.REGTYPE, e.mode, ""))
        info = _tarinfo(e.member_name, type_, mode, len(data), link)
        info.mtime = e.mtime
        members.append((info, data))
    return _tar(members)


def compress(data: bytes, compression: str) -> bytes:
    """Compress deterministically: gzip without mtime/filename, single-threaded zstd."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)
    if compression == "none":
        return data
    raise ValueError(f"unknown compression {compression!r}")


def build_config(spec: ImageSpec) -> bytes:
    """Docker/OCI image config JSON (the image ID is its sha256)."""
    given = {
        "Env": list(spec.env),
        "Labels": dict(spec.labels),
        "Cmd": spec.cmd,
        "Entrypoint": spec.entrypoint,
        "Healthcheck": spec.healthcheck,
        "OnBuild": spec.onbuild,
        "User": spec.user,
    }
    cfg = {**spec.extra_config, **{k: v for k, v in given.items() if v}}
    history: list[dict[str, Any]] = [{"created": EPOCH, "created_by": st.created_by} for st in spec.steps]
    for h, st in zip(history, spec.steps, strict=True):
        if isinstance(st, EmptyStep):
            h["empty_layer"] = True
    return _json(
        {
            **_platform(spec),
            "created": EPOCH,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [_sha(layer_tar(ly)) for ly in spec.layers]},
            "history": history,
        }
    )


def _archive_tar(files: dict[str, bytes]) -> bytes:
    """Tar a {path: bytes} map, sorted, with the parent directories included."""
    dirs = {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}
    names = sorted(set(files) | {d + "/" for d in dirs})
    return _tar(
        (_tarinfo(n, tarfile.DIRTYPE, 0o755), b"")
        if n.endswith("/")
        else (_tarinfo(n, tarfile.REGTYPE, 0o644, len(files[n])), files[n])
        for n in names
    )


def _as_list(specs: Sequence[ImageSpec] | ImageSpec) -> list[ImageSpec]:
    return [specs] if isinstance(specs, ImageSpec) else list(specs)


def _blob(files: dict[str, bytes], media_type: str, data: bytes) -> dict[str, Any]:
    """Store data as blobs/sha256/<hex> and return its OCI descriptor."""
    files["blobs/sha256/" + sha256_hex(data)] = data
    return {"mediaType": media_type, "digest": _sha(data), "size": len(data)}


def _platform(spec: ImageSpec) -> dict[str, str]:
    variant = {"variant": spec.variant} if spec.variant else {}
    return {"architecture": spec.architecture, "os": spec.os, **variant}


def _oci_image(files: dict[str, bytes], spec: ImageSpec, uncompressed: bool = False) -> dict[str, Any]:
    """Store the config and layer blobs of one image; return its manifest (not yet stored)."""
    man: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": _blob(files, MT_OCI_CONFIG, build_config(spec)),
        "layers": [],
    }
    for layer in spec.layers:
        c = "none" if uncompressed else layer.compression
        man["layers"].append(_blob(files, MT_OCI_LAYER[c], compress(layer_tar(layer), c)))
    if spec.annotations:
        man["annotations"] = dict(spec.annotations)
    return man


def oci_image_blobs(spec: ImageSpec, uncompressed: bool = False) -> tuple[bytes, dict[str, bytes]]:
    """One image as a registry holds it: (manifest bytes, {digest: blob bytes}) for config and layers."""
    files: dict[str, bytes] = {}
    manifest = _json(_oci_image(files, spec, uncompressed))
    return manifest, {"sha256:" + name.rsplit("/", 1)[1]: data for name, data in files.items()}


def _oci_finish(files: dict[str, bytes], manifests: list[dict[str, Any]]) -> None:
    files["index.json"] = _json({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": manifests})
    files["oci-layout"] = _json({"imageLayoutVersion": "1.0.0"})


def _split_ref(ref: str) -> tuple[str, str]:
    """'demo/app:1.0' -> ('demo/app', '1.0'); a missing tag means 'latest'."""
    name, sep, tag = ref.rpartition(":")
    return (ref, "latest") if not sep or "/" in tag else (name, tag)


def _docker_full_name(ref: str) -> str:
    """'demo/app:1' -> 'docker.io/demo/app:1', 'alpine' -> 'docker.io/library/alpine' (as containerd)."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    return "docker.io/" + (ref if rest else "library/" + ref)


# --------------------------------------------------------------------------- docker save


def write_docker_archive(
    path: str | os.PathLike[str], specs: Sequence[ImageSpec] | ImageSpec, style: str = "legacy"
) -> list[str]:
    """Write a `docker save` tar; return the image IDs ("sha256:" + config digest).

    style="legacy": docker < 25, one <v1-id>/ dir (layer.tar, VERSION, json) per layer.
    style="oci": docker >= 25, an OCI layout plus manifest.json pointing into blobs/.
    Layers are stored uncompressed either way (as docker does), shared ones once.
    """
    if style not in ("legacy", "oci"):
        raise ValueError(f"unknown style {style!r}")
    files: dict[str, bytes] = {}
    manifest, index, ids = [], [], []
    repositories: dict[str, dict[str, str]] = {}
    for spec in _as_list(specs):
        config = build_config(spec)
        ids.append(_sha(config))
        if style == "oci":
            man = _oci_image(files, spec, uncompressed=True)
            desc = {**_blob(files, MT_OCI_MANIFEST, _json(man)), "platform": _platform(spec)}
            index += [
                {
                    **desc,
                    "annotations": {
                        "io.containerd.image.name": _docker_full_name(t),
                        "org.opencontainers.image.ref.name": _split_ref(t)[1],
                    },
                }
                for t in spec.repo_tags
            ] or [desc]
            config_path = "blobs/sha256/" + sha256_hex(config)
            layer_paths = ["blobs/sha256/" + desc["digest"][7:] for desc in man["layers"]]
            top = layer_paths[-1][13:] if layer_paths else ""
        else:
            config_path, layer_paths, top = sha256_hex(config) + ".json", [], ""
            files[config_path] = config
            for layer in spec.layers:
                tar = layer_tar(layer)
                diff_id = _sha(tar)
                # v1 ids are chain ids here, so images sharing base layers share their dirs
                layer_id = sha256_hex((f"sha256:{top} {diff_id}" if top else diff_id).encode())
                v1 = {"id": layer_id, "created": EPOCH, "os": spec.os, **({"parent": top} if top else {})}
                files.update(
                    {f"{layer_id}/layer.tar": tar, f"{layer_id}/VERSION": b"1.0", f"{layer_id}/json": _json(v1)}
                )
                layer_paths.append(f"{layer_id}/layer.tar")
                top = layer_id
        for tag in spec.repo_tags:
            name, t = _split_ref(tag)
            repositories.setdefault(name, {})[t] = top
        tags = list(spec.repo_tags) or None  # docker writes null for an untagged image
        manifest.append({"Config": config_path, "RepoTags": tags, "Layers": layer_paths})
    files["manifest.json"] = _json(manifest)
    if repositories:  # docker writes it only when something is tagged
        files["repositories"] = _json(repositories)
    if style == "oci":
        _oci_finish(files, index)
    with open(path, "wb") as f:
        f.write(_archive_tar(files))
    return ids


# --------------------------------------------------------------------------- OCI layout


def _oci_files(
    specs: Sequence[ImageSpec] | ImageSpec, ref_names: Sequence[str | None] | None, index: bool
) -> tuple[dict[str, bytes], list[str]]:
    files: dict[str, bytes] = {}
    descs = []
    for spec in _as_list(specs):
        desc = _blob(files, MT_OCI_MANIFEST, _json(_oci_image(files, spec)))
        descs.append({**desc, "platform": _platform(spec)} if index else desc)
    digests = [d["digest"] for d in descs]
    if index:  # multi-arch: index.json -> nested image index -> per-platform manifests
        nested = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": descs}
        descs = [_blob(files, MT_OCI_INDEX, _json(nested))]
    refs = list(ref_names or [])
    if len(refs) > len(descs):
        raise ValueError(f"{len(refs)} ref names for {len(descs)} index.json entries")
    for desc, ref in zip(descs, refs, strict=False):
        if ref is not None:
            desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
    _oci_finish(files, descs)
    return files, digests


def write_oci_layout(
    directory: str | os.PathLike[str],
    specs: Sequence[ImageSpec] | ImageSpec,
    ref_names: Sequence[str | None] | None = None,
    index: bool = False,
) -> list[str]:
    """Write an OCI image layout dir; return the image manifest digests.

    Layers are compressed per Layer.compression. ref_names[i] annotates
    index.json entry i; with index=True that is the one nested index.
    """
    files, digests = _oci_files(specs, ref_names, index)
    for rel, data in files.items():
        dest = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
    return digests


def write_oci_archive(
    path: str | os.PathLike[str],
    specs: Sequence[ImageSpec] | ImageSpec,
    ref_names: Sequence[str | None] | None = None,
    index: bool = False,
) -> list[str]:
    """The write_oci_layout layout as one tar (what `oci-archive:` reads)."""
    files, digests = _oci_files(specs, ref_names, index)
    with open(path, "wb") as f:
        f.write(_archive_tar(files))
    return digests


# --------------------------------------------------------------------------- rootfs


def _safe_join(root: str, rel: str, create: bool = True) -> str:
    """Join without leaving root: no '..', and no symlinked parent directory.

    Missing parents are created (or, with create=False, the walk just stops:
    nothing below a missing directory can exist).
    """
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"unsafe path {rel!r}")
    cur = root
    for i, part in enumerate(parts[:-1]):
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if not create:
                return os.path.join(cur, *parts[i + 1 :])
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise ValueError(f"unsafe path {rel!r}: {part!r} is a symlink")
        if not stat.S_ISDIR(st.st_mode):
            if not create:
                return os.path.join(cur, *parts[i + 1 :])
            os.unlink(cur)  # a file replaced by a directory in a later layer
            os.mkdir(cur, 0o755)
    return os.path.join(cur, parts[-1])


def _remove(path: str) -> None:
    """Remove whatever is at path without following symlinks."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _clear(directory: str) -> None:
    if os.path.isdir(directory) and not os.path.islink(directory):
        for child in os.listdir(directory):
            _remove(os.path.join(directory, child))


def _place(dest: str, e: Entry, src: str | None) -> None:
    """Create one non-whiteout entry at dest (src: the resolved hardlink target)."""
    if e.kind == "dir":
        if not os.path.isdir(dest) or os.path.islink(dest):
            _remove(dest)
            os.mkdir(dest)
        os.chmod(dest, 0o755 if e.mode == 0o644 else e.mode & 0o7777)
        return
    _remove(dest)
    if e.kind == "symlink":
        os.symlink(e.target, dest)
    elif e.kind == "hardlink" and src is not None and os.path.islink(src):
        os.symlink(os.readlink(src), dest)
    elif e.kind == "hardlink" and src is not None:
        try:
            os.link(src, dest, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, dest, follow_symlinks=False)
    else:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(e.data)
        os.chmod(dest, e.mode & 0o7777)


def write_rootfs(directory: str | os.PathLike[str], layers: Iterable[Layer], on_unsafe: str = "raise") -> list[str]:
    """Apply layers in order into a plain directory tree (for `dir:` inputs).

    Whiteouts and opaque markers hide what lower layers left, as overlayfs
    does, so they are applied before the rest of their own layer. A path with
    '..' or through a symlink raises ValueError, or with on_unsafe="skip" is
    skipped and returned. Symlinks are never followed.
    """
    root = os.fspath(directory)
    os.makedirs(root, exist_ok=True)
    skipped: list[str] = []

    def safe(rel: str, create: bool = True) -> str | None:
        try:
            return _safe_join(root, rel, create)
        except ValueError:
            if on_unsafe != "skip":
                raise
            skipped.append(rel)
            return None

    for layer in layers:
        for e in layer.entries:
            if e.kind == "opaque" and not e.logical_path:
                _clear(root)
            elif e.kind in ("whiteout", "opaque") and (dest := safe(e.logical_path, False)) is not None:
                _remove(dest) if e.kind == "whiteout" else _clear(dest)
        for e in layer.entries:
            if e.kind in ("whiteout", "opaque") or (dest := safe(e.logical_path)) is None:
                continue
            src = safe(_norm(e.target), False) if e.kind == "hardlink" else None
            if e.kind != "hardlink" or src is not None:
                _place(dest, e, src)
    return skipped


def zip_bytes(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buf.getvalue()


def write_files_tar(path: str | os.PathLike[str], members: dict[str, bytes]) -> Path:
    """A tar of regular files exactly as given (names, order, bytes): for hand-made, broken or
    hostile archives the writers above would refuse to produce."""
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Path(path)


def read_files_tar(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """The regular files of a tar, in order (to edit one member and write it back)."""
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def xz_declaring_dictionary(data: bytes, props: int) -> bytes:
    """``data`` as an xz stream whose block header declares the LZMA2 dictionary ``props`` encodes
    (``(2 | props & 1) << (props // 2 + 11)`` bytes; 40: 4 GiB). The data is compressed with a small
    dictionary, so the stream is sound and costs nothing to make: only a decoder, which sizes its
    allocation by the header, is asked for the declared memory."""
    xz = bytearray(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=0))
    start = 12  # the block header follows the 12-byte stream header
    size = (xz[start] + 1) * 4
    flags, pos = xz[start + 1], start + 2
    for present in (flags & 0x40, flags & 0x80):  # optional compressed and uncompressed sizes
        if present:
            while xz[pos] & 0x80:
                pos += 1
            pos += 1
    assert xz[pos : pos + 2] == b"\x21\x01", "expected the LZMA2 filter with its one-byte properties"
    xz[pos + 2] = props
    struct.pack_into("<I", xz, start + size - 4, zlib.crc32(bytes(xz[start : start + size - 4])))
    return bytes(xz)
