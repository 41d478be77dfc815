"""OCI image layouts, as a directory (``oci:DIR``) or a tar of one (``oci-archive:PATH``).

Blob names are built only from validated digests, so nothing the image says becomes a host path.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from secretscan.errors import BlobOverrun, SourceError, SourceLimitReached, UsageError
from secretscan.image.compression import read_some
from secretscan.image.manifest import ManifestImage, descriptor_size
from secretscan.image.model import Image, LayerHandle, UnreadableImage, parse_json
from secretscan.sources.tarblobs import TarBlobs

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_INDEX_DEPTH = 4
MAX_MANIFESTS = 4096
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
"""What ``docker save`` (Engine 25+) writes in its index.json: the full image name."""


class BlobStore(Protocol):
    def has(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def read(self, name: str, limit: int) -> bytes: ...
    def open(self, name: str) -> Any: ...


class DirBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        return self.root.joinpath(*name.split("/"))

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def read(self, name: str, limit: int) -> bytes:
        if not self.has(name):
            raise SourceError(f"{self.root}: missing blob {name}")
        if self.size(name) > limit:
            raise SourceError(f"{self.root}: {name} is over the {limit}-byte limit")
        return self._path(name).read_bytes()

    @contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        if not self.has(name):
            raise SourceError(f"{self.root}: missing blob {name}")
        with open(self._path(name), "rb") as f:
            yield f


def blob_name(digest: str, where: str) -> str:
    if not _DIGEST.match(digest):
        raise SourceError(f"{where}: invalid digest {digest[:80]!r}")
    algorithm, hexpart = digest.split(":", 1)
    return f"blobs/{algorithm}/{hexpart}"


def _read_json(blobs: BlobStore, name: str, where: str) -> dict[str, Any]:
    doc = parse_json(blobs.read(name, MAX_JSON_BYTES), f"{where}: {name}")
    if not isinstance(doc, dict):
        raise SourceError(f"{where}: {name} is not a JSON object")
    return doc


@dataclass
class OciImage(ManifestImage):
    blobs: BlobStore
    manifest: dict[str, Any]
    manifest_digest: str
    ref_name: str
    platform: str | None
    """Set when the image was picked out of a multi-platform index."""

    @property
    def name(self) -> str:
        return f"{self.ref_name} [{self.platform}]" if self.platform else self.ref_name

    def read_blob(self, digest: str, limit: int) -> bytes:
        return self.blobs.read(blob_name(digest, self.name), limit)

    def layer_handle(self, index: int, digest: str, descriptor: dict[str, Any], diff_id: str | None) -> LayerHandle:
        name = blob_name(digest, self.name)  # a missing blob fails when opened: the rest still gets scanned
        declared = descriptor_size(descriptor)
        return LayerHandle(
            index=index,
            diff_id=diff_id,
            blob_digest=digest,
            size=self.blobs.size(name) if self.blobs.has(name) else None,
            open=lambda: _held_to_size(self.blobs.open(name), declared),
            forkable=True,
        )


@contextmanager
def _held_to_size(opened: AbstractContextManager[BinaryIO], size: int | None) -> Iterator[BinaryIO]:
    with opened as blob:
        yield blob if size is None else io.BufferedReader(_LongerThanDeclared(blob, size), 1 << 20)  # type: ignore[arg-type]


class _LongerThanDeclared(io.RawIOBase):
    """A layout's blob is a file of known, bounded size, so it is read whole even when it is longer
    than its descriptor says (a tampered blob's secrets are still reported); at its end that is an
    error (``BlobOverrun``), after which the digest check says whether the bytes were tampered
    with. (A registry's blob has no such bound: the registry client stops at the declared size.)"""

    def __init__(self, inner: BinaryIO, size: int) -> None:
        self._inner, self._size, self._read = inner, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = read_some(self._inner, len(buffer))
        self._read += len(data)
        if not data and self._read > self._size:
            raise BlobOverrun(f"blob is {self._read} bytes, longer than the {self._size} its descriptor gives")
        buffer[: len(data)] = data
        return len(data)


class OciLayout:
    def __init__(self, blobs: BlobStore, label: str, ref: str | None) -> None:
        self.blobs, self.label, self.ref = blobs, label, ref
        if not blobs.has("oci-layout") or not blobs.has("index.json"):
            raise SourceError(f"{label}: not an OCI image layout (no oci-layout or index.json)")
        self.index = _read_json(blobs, "index.json", label)

    @classmethod
    def from_dir(cls, path: Path, ref: str | None) -> OciLayout:
        return cls(DirBlobs(path), f"oci:{path}", ref)

    @classmethod
    def from_tar(cls, path: Path, ref: str | None) -> OciLayout:
        return cls(TarBlobs(path), f"oci-archive:{path}", ref)

    @property
    def description(self) -> str:
        return self.label + (f":{self.ref}" if self.ref else "")

    def images(self) -> Iterator[Image]:
        """Every image the layout's indexes reach, each manifest once; in place of a branch that
        cannot be read (a missing or broken blob, indexes nested past the limit), an
        ``UnreadableImage`` that says why, so the run reports it and scans the rest."""
        graph = _Graph(self.blobs, self.label)
        top = [(_Reached.top(listing, self.label), 1) for listing in _listings(self.index, f"{self.label}: index.json")]
        found, met = graph.walk(top)
        if self.ref is not None:  # by any name a listing goes by, at its depth: the images below it
            chosen = {
                (r.listing.digest, r.name, r.platform): (r, depth) for r, depth in met if _named(r.name, self.ref)
            }
            if not chosen:
                names = sorted({r.name for r, _ in met})
                raise UsageError(f"{self.label}: no image named {self.ref!r} (it has: {', '.join(names)})")
            found, _ = graph.walk(list(chosen.values()))
        yield from found


def _named(name: str, ref: str) -> bool:
    return ref in (name.rsplit(":", 1)[-1], name)


@dataclass(frozen=True, slots=True)
class _Listing:
    """One entry of an index, as the index gives it."""

    digest: str
    name: str | None
    """Its own ref-name annotation, if any."""
    platform: str | None
    """Its own platform (None: not given, so the enclosing index's applies)."""
    media_type: str


@dataclass(frozen=True, slots=True)
class _Reached:
    """A listing met while walking, with the name and platform it inherits from the way there."""

    listing: _Listing
    name: str
    platform: str | None

    @classmethod
    def top(cls, listing: _Listing, label: str) -> _Reached:
        return cls(listing, listing.name or f"{label}@{listing.digest[:19]}", listing.platform)

    def child(self, listing: _Listing) -> _Reached:
        platform = listing.platform if listing.platform is not None else self.platform
        return _Reached(listing, listing.name or self.name, platform)


def _listings(index: dict[str, Any], where: str) -> list[_Listing]:
    manifests = index.get("manifests") or []
    if not isinstance(manifests, list) or len(manifests) > MAX_MANIFESTS:
        raise SourceError(f"{where}: index lists no manifests or too many")
    out = []
    for desc in manifests:
        if not isinstance(desc, dict):
            continue
        annotations = desc["annotations"] if isinstance(desc.get("annotations"), dict) else {}
        name = annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME)
        plat = desc.get("platform")
        platform = (
            "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if plat.get(k))
            if isinstance(plat, dict)
            else None
        )
        out.append(
            _Listing(
                str(desc.get("digest", "")), str(name) if name else None, platform, str(desc.get("mediaType") or "")
            )
        )
    return out


class _Kind(Enum):
    INDEX = "index"
    MANIFEST = "manifest"
    ARTIFACT = "artifact"
    """Signatures, attestations: no filesystem, nothing to scan."""
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class _Node:
    """A blob that indexes list, read once however often (and however deep) it is listed."""

    kind: _Kind
    manifest: dict[str, Any] = field(default_factory=dict)
    children: tuple[_Listing, ...] = ()
    problem: SourceError | None = None


class _Graph:
    """The indexes and manifests of a layout as a graph: an index may list another many times
    (64 listings per level, five levels deep, are a billion paths in a few KB), list itself, or
    nest past the limit. Each blob is read once and each index walked once per walk."""

    def __init__(self, blobs: BlobStore, label: str) -> None:
        self.blobs, self.label = blobs, label
        self._nodes: dict[str, _Node] = {}

    def walk(self, roots: list[tuple[_Reached, int]]) -> tuple[list[Image], list[tuple[_Reached, int]]]:
        """The images under ``roots`` (each at its depth) in listing order, each manifest once; and
        every listing met on the way, with the name it goes by there (what ``--ref`` picks from)."""
        found: list[Image] = []
        met: list[tuple[_Reached, int]] = []
        done: set[str] = set()
        too_deep: dict[str, UnreadableImage] = {}

        def visit(reached: _Reached, depth: int) -> None:
            met.append((reached, depth))
            digest = reached.listing.digest
            if digest in done:  # listed again, or a cycle: already walked
                return
            node = self._node(reached.listing)
            if node.kind is _Kind.INDEX and depth > MAX_INDEX_DEPTH:
                if digest not in too_deep:  # not marked done: a shorter way there may still come
                    reason = f"image index {digest[:19]}… is nested deeper than {MAX_INDEX_DEPTH} indexes: not read"
                    too_deep[digest] = UnreadableImage(reached.name, digest, SourceLimitReached(reason))
                    found.append(too_deep[digest])
                return
            done.add(digest)
            if node.kind is _Kind.INDEX:
                for listing in node.children:
                    visit(reached.child(listing), depth + 1)
            elif node.kind is _Kind.MANIFEST:
                found.append(OciImage(self.blobs, node.manifest, digest, reached.name, reached.platform))
            elif node.kind is _Kind.UNREADABLE and node.problem is not None:
                found.append(UnreadableImage(reached.name, None, node.problem))

        for root, depth in roots:
            visit(root, depth)
        walked_after_all = {id(too_deep[d]) for d in too_deep if d in done}
        return [img for img in found if id(img) not in walked_after_all], met

    def _node(self, listing: _Listing) -> _Node:
        node = self._nodes.get(listing.digest)
        if node is None:
            node = self._nodes[listing.digest] = self._read(listing)
        return node

    def _read(self, listing: _Listing) -> _Node:
        try:
            name = blob_name(listing.digest, self.label)
            doc = _read_json(self.blobs, name, self.label)
            media_type = listing.media_type or str(doc.get("mediaType") or "")
            if media_type in INDEX_TYPES or "manifests" in doc:
                return _Node(_Kind.INDEX, children=tuple(_listings(doc, f"{self.label}: {name}")))
        except SourceError as exc:
            return _Node(_Kind.UNREADABLE, problem=exc)
        if "layers" in doc or "config" in doc:
            return _Node(_Kind.MANIFEST, manifest=doc)
        return _Node(_Kind.ARTIFACT)
