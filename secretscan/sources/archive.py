"""``docker save`` archives: the classic layout (``manifest.json`` + ``<id>/layer.tar``) and the
Docker 25+ one (an OCI layout plus ``manifest.json``). Both are read through manifest.json."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from secretscan.errors import SourceError, UsageError
from secretscan.image.model import ImageConfig, LayerHandle, SaveEntry, parse_save_manifest
from secretscan.sources.tarblobs import TarBlobs

MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass
class ArchiveImage:
    blobs: TarBlobs
    entry: SaveEntry
    name: str

    @property
    def digest(self) -> str | None:
        hexpart = self.entry.config.rsplit("/", 1)[-1].removesuffix(".json")
        return f"sha256:{hexpart}" if len(hexpart) == 64 else None

    @property
    def annotations(self) -> dict[str, str]:
        return {}

    def config(self) -> ImageConfig:
        return self._config

    @cached_property
    def _config(self) -> ImageConfig:
        name = self.entry.config
        return ImageConfig.parse(self.blobs.read(name, MAX_MANIFEST_BYTES), f"{self.name}: {name}")

    def layers(self) -> Sequence[LayerHandle]:
        diff_ids = self._config.diff_ids
        handles = []
        for i, member in enumerate(self.entry.layers):  # a missing member fails when opened: the rest is scanned
            blob_digest = f"sha256:{member.split('/')[-1]}" if member.startswith("blobs/sha256/") else None
            handles.append(
                LayerHandle(
                    index=i,
                    diff_id=diff_ids[i] if i < len(diff_ids) else None,
                    blob_digest=blob_digest,
                    size=self.blobs.size(member) if self.blobs.has(member) else None,
                    open=lambda m=member: self.blobs.open(m),  # type: ignore[misc]
                    forkable=True,
                    open_range=lambda start, end, m=member: self.blobs.open(m, start, end),  # type: ignore[misc]
                )
            )
        return handles


class DockerArchive:
    def __init__(self, path: Path, ref: str | None) -> None:
        self.path, self.ref = path, ref
        self.blobs = TarBlobs(path)
        if not self.blobs.has("manifest.json"):
            raise SourceError(f"{path}: no manifest.json: not a docker-archive (docker save) file")
        self.entries = parse_save_manifest(
            self.blobs.read("manifest.json", MAX_MANIFEST_BYTES), f"{path}: manifest.json"
        )

    @property
    def description(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.ref}" if self.ref else "")

    def images(self) -> Iterator[ArchiveImage]:
        chosen = list(enumerate(self.entries))
        if self.ref is not None:
            chosen = [(i, e) for i, e in chosen if self._selected(i, e)]
            if not chosen:
                tags = sorted(t for e in self.entries for t in e.tags)
                raise UsageError(
                    f"{self.path}: no image {self.ref!r} in the archive (it has: {', '.join(tags) or 'untagged images'}; or use @N)"
                )
        for i, entry in chosen:
            name = entry.tags[0] if entry.tags else f"{self.path.name}@{i}"
            yield ArchiveImage(self.blobs, entry, name)

    def _selected(self, index: int, entry: SaveEntry) -> bool:
        assert self.ref is not None
        if self.ref.startswith("@"):
            return self.ref[1:].isdigit() and int(self.ref[1:]) == index
        tags = entry.tags
        return self.ref in tags or f"{self.ref}:latest" in tags or any(t.endswith("/" + self.ref) for t in tags)
