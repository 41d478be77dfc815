"""An image described by an OCI / Docker schema 2 manifest, wherever its blobs live (an OCI layout
on disk or in a tar, a registry): config and layer handles from the manifest, one way."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from secretscan.errors import SourceError
from secretscan.image.model import MAX_CONFIG_BYTES, ImageConfig, LayerHandle

DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


class ManifestImage(ABC):
    manifest: dict[str, Any]
    manifest_digest: str

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def read_blob(self, digest: str, limit: int) -> bytes:
        """A small blob (the config), checked against its digest by the store."""

    @abstractmethod
    def layer_handle(self, index: int, digest: str, descriptor: dict[str, Any], diff_id: str | None) -> LayerHandle: ...

    @property
    def digest(self) -> str | None:
        return self.manifest_digest

    @property
    def annotations(self) -> dict[str, str]:
        raw = self.manifest.get("annotations")
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    def config(self) -> ImageConfig:
        return self._config

    @cached_property
    def _config(self) -> ImageConfig:
        desc = self.manifest.get("config")
        if not isinstance(desc, dict) or not DIGEST.match(str(desc.get("digest", ""))):
            raise SourceError(f"{self.name}: manifest has no valid config descriptor")
        return ImageConfig.parse(
            self.read_blob(str(desc["digest"]), read_limit(desc, MAX_CONFIG_BYTES)), f"{self.name}: config"
        )

    def layers(self) -> Sequence[LayerHandle]:
        diff_ids = self._config.diff_ids
        return [
            self.layer_handle(i, str(desc["digest"]), desc, diff_ids[i] if i < len(diff_ids) else None)
            for i, desc in enumerate(layer_descriptors(self.manifest, self.name))
        ]


def descriptor_size(descriptor: dict[str, Any]) -> int | None:
    """A descriptor's ``size`` when it is a usable byte count, else None (no bound from it)."""
    size = descriptor.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


def read_limit(descriptor: dict[str, Any], cap: int) -> int:
    """How many bytes of a small blob (a config) to accept: its declared size, within ``cap``."""
    declared = descriptor_size(descriptor)
    return cap if declared is None else min(cap, declared)


def layer_descriptors(manifest: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The manifest's layer descriptors, each with a well-formed digest (a digest names a file in
    a layout: anything else could be a path), or a one-line SourceError."""
    layers = manifest.get("layers", [])
    if not isinstance(layers, list):
        raise SourceError(f"{name}: manifest layers are not a list")
    for i, desc in enumerate(layers):
        if not isinstance(desc, dict) or not DIGEST.match(str(desc.get("digest", ""))):
            raise SourceError(f"{name}: layer {i} has no valid digest")
    return layers


def platform_of(entry: dict[str, Any]) -> str | None:
    """``os/architecture[/variant]`` of an index entry; None when it names no platform."""
    plat = entry.get("platform")
    if not isinstance(plat, dict):
        return None
    return "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if plat.get(k))


def platform_matches(actual: str | None, wanted: str) -> bool:
    if actual is None:
        return False
    if actual == wanted:
        return True
    # "linux/arm64" matches "linux/arm64/v8": the variant is optional unless asked for
    return wanted.count("/") == 1 and actual.startswith(wanted + "/")
