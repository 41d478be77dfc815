"""What an image is, wherever it came from: config, history aligned to layers, layer handles."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from secretscan.errors import SourceError
from secretscan.image.entries import FileEntry
from secretscan.models import HistoryStep

MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""An image config is a few KiB; anything this large is hostile or broken."""


def parse_json(data: bytes, what: str) -> Any:
    """Image metadata (manifests, indexes, configs) as JSON, or a one-line SourceError: hostile
    images send invalid UTF-8, non-JSON, and nesting deep enough to exhaust Python's recursion."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{what} is not valid JSON ({str(exc)[:120]})") from None
    except RecursionError:
        raise SourceError(f"{what} is nested too deeply to be image metadata") from None


@dataclass(frozen=True, slots=True)
class SaveEntry:
    """One image of a ``docker save`` ``manifest.json``, with its fields checked for type."""

    config: str
    layers: tuple[str, ...]
    tags: tuple[str, ...]


def parse_save_manifest(data: bytes, what: str) -> list[SaveEntry]:
    """``manifest.json`` of a docker save archive or stream; a one-line SourceError unless it is a
    list of objects whose Config is a string and whose Layers and RepoTags are lists of strings."""
    doc = parse_json(data, what)
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise SourceError(f"{what} is not a list of images")
    entries = []
    for i, e in enumerate(doc):
        config, layers, tags = e.get("Config", ""), e.get("Layers") or [], e.get("RepoTags") or []
        if not isinstance(config, str) or not _all_strings(layers) or not _all_strings(tags):
            raise SourceError(f"{what}: image {i} needs a Config string and lists of strings for Layers and RepoTags")
        entries.append(SaveEntry(config, tuple(layers), tuple(tags)))
    return entries


def _all_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    index: int
    created_by: str
    empty_layer: bool
    layer_index: int | None
    """Which layer this step produced, counting only non-empty entries (None for ENV, ARG, …)."""


@dataclass(frozen=True, slots=True)
class ImageConfig:
    raw: dict[str, Any]
    history: tuple[HistoryEntry, ...]
    diff_ids: tuple[str, ...]
    platform: str | None
    digest: str | None = None
    """sha256 of the config's bytes as read: the image ID, which ``docker images`` shows."""
    _layer_steps: dict[int, str] = field(init=False, repr=False, compare=False)
    """layer index -> the step that produced it, from one pass over history (asked once per layer)."""

    def __post_init__(self) -> None:
        steps: dict[int, str] = {}
        for entry in self.history:
            if entry.layer_index is not None:
                steps.setdefault(entry.layer_index, entry.created_by)
        object.__setattr__(self, "_layer_steps", steps)

    @classmethod
    def parse(cls, data: bytes, what: str) -> ImageConfig:
        if len(data) > MAX_CONFIG_BYTES:
            raise SourceError(f"{what}: image config is {len(data)} bytes, over the {MAX_CONFIG_BYTES} limit")
        raw = parse_json(data, f"{what}: image config")
        if not isinstance(raw, dict):
            raise SourceError(f"{what}: image config is not a JSON object")
        rootfs = raw["rootfs"] if isinstance(raw.get("rootfs"), dict) else {}
        diff_ids = tuple(str(d) for d in (rootfs.get("diff_ids") or []) if isinstance(d, str))
        history = _align_history(raw.get("history"), len(diff_ids))
        platform = None
        if raw.get("os") or raw.get("architecture"):
            platform = "/".join(str(p) for p in (raw.get("os"), raw.get("architecture"), raw.get("variant")) if p)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return cls(raw=raw, history=history, diff_ids=diff_ids, platform=platform, digest=digest)

    def step_for_layer(self, layer_index: int) -> str | None:
        return self._layer_steps.get(layer_index)

    def history_step(self, entry: HistoryEntry) -> HistoryStep:
        """``history[entry.index]`` as a location names it: the layer it created (as aligned once,
        by ``_align_history``) and that layer's diff ID."""
        layer = entry.layer_index
        digest = self.diff_ids[layer] if layer is not None and layer < len(self.diff_ids) else None
        return HistoryStep(entry.index, layer, digest, entry.empty_layer)

    @property
    def container_config(self) -> dict[str, Any]:
        cfg = self.raw.get("config")
        return cfg if isinstance(cfg, dict) else {}

    def revision(self, annotations: dict[str, str]) -> str | None:
        """The source revision the image says it was built from (``docker/metadata-action``, Buildpacks
        and most CI build recipes set it), so a finding can point at the commit that shipped it."""
        labels = self.container_config.get("Labels")
        labels = labels if isinstance(labels, dict) else {}
        for value in (labels.get(OCI_REVISION), annotations.get(OCI_REVISION), labels.get(LABEL_SCHEMA_REVISION)):
            if isinstance(value, str) and _REVISION.fullmatch(value.strip()):
                return value.strip()
        return None


OCI_REVISION = "org.opencontainers.image.revision"
LABEL_SCHEMA_REVISION = "org.label-schema.vcs-ref"
_REVISION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]{0,199}")
"""A commit id or tag name; anything else in the label (free text, control bytes) is ignored."""


def _align_history(raw_history: Any, n_layers: int) -> tuple[HistoryEntry, ...]:
    """Tie history entries to layers by advancing the layer index on non-empty entries only.

    When the counts disagree (squashed or hand-made images), entries keep their text but no layer,
    rather than pointing at the wrong build step.
    """
    if not isinstance(raw_history, list):
        return ()
    items = [h if isinstance(h, dict) else {} for h in raw_history]
    non_empty = sum(1 for h in items if not h.get("empty_layer"))
    aligned = non_empty == n_layers
    entries, layer = [], 0
    for i, h in enumerate(items):
        empty = bool(h.get("empty_layer"))
        created_by = str(h.get("created_by") or h.get("comment") or "")
        entries.append(HistoryEntry(i, created_by, empty, None if empty or not aligned else layer))
        if not empty:
            layer += 1
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """What a report and attribution know of a layer, apart from any way to read it: a layer
    scanned from a stream, or remembered in a sweep's cache, has facts but no reader."""

    index: int
    diff_id: str | None
    blob_digest: str | None
    size: int | None = None
    is_layer: bool = True
    """False for a plain directory scanned as one (``dir:``): it has no layer index to report."""


@dataclass(frozen=True, slots=True)
class LayerHandle:
    index: int
    diff_id: str | None
    """From the config; checked against the uncompressed stream while it is scanned."""
    blob_digest: str | None
    """Digest of the stored blob (compressed or not), when the source names one."""
    size: int | None
    open: Callable[[], AbstractContextManager[BinaryIO]]
    """Opens the stored blob (possibly compressed); the walker sniffs the compression."""
    forkable: bool = False
    """``open`` works in a forked worker process (a local file, reopened per call)."""
    walk: Callable[[], Iterator[FileEntry]] | None = None
    """For sources whose layer is not a blob (a plain directory): yields entries directly."""
    open_range: Callable[[int, int], AbstractContextManager[BinaryIO]] | None = None
    """Opens the stored bytes from one offset to another, seekable (a local file): lets the
    workers share one big uncompressed layer (``walk.split``)."""
    held: bool = False
    """Its bytes are held in memory (``image.spool``): they count against ``max_held_blob_bytes``."""

    @property
    def facts(self) -> LayerFacts:
        return LayerFacts(self.index, self.diff_id, self.blob_digest, self.size, self.walk is None)


class ImageIdentity(Protocol):
    """What a report says of an image: its name, digest and manifest annotations."""

    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> str | None: ...
    @property
    def annotations(self) -> dict[str, str]: ...


class Image(ImageIdentity, Protocol):
    """One image from a source: its identity, config, and layers base first."""

    def config(self) -> ImageConfig: ...
    def layers(self) -> Sequence[LayerHandle]: ...


@dataclass(frozen=True)
class UnreadableImage:
    """A part of a source that stands where an image would be but cannot be read: an index nested
    past the limit, a manifest whose blob is missing or not JSON. A source yields it in the image's
    place, so the run reports that part (as not scanned when ``problem`` is a ``SourceLimitReached``,
    else as an error) and goes on with the other images; reading it raises ``problem``."""

    name: str
    digest: str | None
    problem: SourceError

    @property
    def annotations(self) -> dict[str, str]:
        return {}

    def config(self) -> ImageConfig:
        raise self.problem

    def layers(self) -> Sequence[LayerHandle]:
        raise self.problem
