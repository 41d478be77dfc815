"""What later layers did to each file: the whiteout and overwrite bookkeeping of an image.

Every layer is scanned in full; this index only *annotates* an occurrence with its fate, so a
secret in a file deleted by layer 5 is still reported (it ships in layer 3's blob) and labelled.
Only paths are kept (no content), so memory grows with the file count, not the image size.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from secretscan.walk.entries import FileEntry


@dataclass(frozen=True, slots=True)
class Fate:
    layer: int
    how: str
    """``deleted`` (whiteout, opaque directory, or a parent replaced by a non-directory) or ``overwritten``."""


@dataclass
class LayerPaths:
    """What one layer adds and removes, as paths: recorded while the layer streams past."""

    present: dict[str, str] = field(default_factory=dict)
    """path -> entry kind, for everything the layer adds (files, dirs, links)."""
    whiteouts: set[str] = field(default_factory=set)
    opaque_dirs: set[str] = field(default_factory=set)

    def record(self, entry: FileEntry) -> None:
        if entry.kind == "whiteout":
            self.whiteouts.add(entry.path)
        elif entry.kind == "opaque":
            self.opaque_dirs.add(entry.path)
        else:
            self.present[entry.path] = entry.kind


class FateIndex:
    """The layers of one image, base first, each as the paths it adds and removes."""

    def __init__(self, layers: Sequence[LayerPaths]) -> None:
        self._layers = list(layers)

    def fate(self, layer: int, path: str) -> Fate | None:
        """The first later layer that hides ``path`` as seen in ``layer``, or None if it survives."""
        outer = path.split("!/", 1)[0]  # a file inside a nested archive shares the archive's fate
        ancestors = _ancestors(outer)
        for later in range(layer + 1, len(self._layers)):
            paths = self._layers[later]
            if outer in paths.whiteouts or any(a in paths.whiteouts for a in ancestors):
                return Fate(later, "deleted")
            if any(a in paths.opaque_dirs for a in ancestors):
                return Fate(later, "deleted")
            if any(paths.present.get(a) not in (None, "dir") for a in ancestors):
                return Fate(later, "deleted")
            if outer in paths.present:
                return Fate(later, "overwritten")
        return None


def _ancestors(path: str) -> list[str]:
    out: list[str] = []
    parent = posixpath.dirname(path)
    while parent and parent != "/" and (not out or len(parent) < len(out[-1])):  # always shrinks: ends
        out.append(parent)
        parent = posixpath.dirname(parent)
    if path != "/":
        out.append("/")  # an opaque marker at the top of a layer hides everything below
    return out
