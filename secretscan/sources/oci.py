"""OCI image layouts, as a directory (``oci:DIR``) or a tar of one (``oci-archive:PATH``).

Blob names are built only from validated digests, so nothing the image says becomes a host path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from secretscan.errors import SourceError, UsageError
from secretscan.image.manifest import ManifestImage
from secretscan.image.model import LayerHandle, parse_json
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
        return LayerHandle(
            index=index,
            diff_id=diff_id,
            blob_digest=digest,
            size=self.blobs.size(name) if self.blobs.has(name) else None,
            open=lambda: self.blobs.open(name),
            forkable=True,
        )


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

    def images(self) -> Iterator[OciImage]:
        found = list(self._walk(self.index, depth=0, ref_name=None, platform=None))
        if self.ref is not None:
            chosen = [img for img in found if self.ref in (img.ref_name.rsplit(":", 1)[-1], img.ref_name)]
            if not chosen:
                names = sorted({img.ref_name for img in found})
                raise UsageError(f"{self.label}: no image named {self.ref!r} (it has: {', '.join(names)})")
            found = chosen
        yield from found

    def _walk(
        self, index: dict[str, Any], depth: int, ref_name: str | None, platform: str | None
    ) -> Iterator[OciImage]:
        if depth > MAX_INDEX_DEPTH:
            raise SourceError(f"{self.label}: image indexes nested deeper than {MAX_INDEX_DEPTH}")
        manifests = index.get("manifests") or []
        if not isinstance(manifests, list) or len(manifests) > MAX_MANIFESTS:
            raise SourceError(f"{self.label}: index lists no manifests or too many")
        for desc in manifests:
            if not isinstance(desc, dict):
                continue
            digest = str(desc.get("digest", ""))
            doc = _read_json(self.blobs, blob_name(digest, self.label), self.label)
            annotations = desc["annotations"] if isinstance(desc.get("annotations"), dict) else {}
            name = str(
                annotations.get(CONTAINERD_NAME)
                or annotations.get(REF_NAME)
                or ref_name
                or f"{self.label}@{digest[:19]}"
            )
            plat = desc.get("platform")
            if isinstance(plat, dict):
                plat_text: str | None = "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if plat.get(k))
            else:
                plat_text = platform
            media_type = str(desc.get("mediaType") or doc.get("mediaType") or "")
            if media_type in INDEX_TYPES or "manifests" in doc:
                yield from self._walk(doc, depth + 1, name, plat_text)
            elif "layers" in doc or "config" in doc:
                yield OciImage(self.blobs, doc, digest, name, plat_text)
            # other artifacts (signatures, attestations) carry no filesystem: nothing to scan
