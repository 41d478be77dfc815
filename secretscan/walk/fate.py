"""What later layers did to each file: the whiteout and overwrite bookkeeping of an image.

Every layer is scanned in full; this index only *annotates* an occurrence with its fate, so a
secret in a file deleted by layer 5 is still reported (it ships in layer 3's blob) and labelled.
Only paths are kept (no content), so memory grows with the file count, not the image size.

A path is hidden by a later layer that whites it out or adds something at it (overwritten), or
that whites out, makes opaque or puts a non-directory at one of its ancestors (deleted). Building
every ancestor string of a path costs the square of its length (a path 50,000 directories deep
has 2.5 GB of prefixes), so ancestors are compared by digest: one incremental pass over a path
gives the digests of all its prefixes, and only the layer entries that could equal one of them
(same length, same last characters) are hashed at all. Time is linear in the queried paths plus
one look at each entry of a later layer, whatever the depth or the number of layers.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from secretscan.image.entries import EntryKind, FileEntry


@dataclass(frozen=True, slots=True)
class Fate:
    layer: int
    how: str
    """``deleted`` (whiteout, opaque directory, or a parent replaced by a non-directory) or ``overwritten``."""


@dataclass
class LayerPaths:
    """What one layer adds and removes, as paths: recorded while the layer streams past."""

    present: dict[str, EntryKind] = field(default_factory=dict)
    """path -> entry kind, for everything the layer adds (files, dirs, links)."""
    whiteouts: set[str] = field(default_factory=set)
    opaque_dirs: set[str] = field(default_factory=set)

    def record(self, entry: FileEntry) -> None:
        if entry.kind is EntryKind.WHITEOUT:
            self.whiteouts.add(entry.path)
        elif entry.kind is EntryKind.OPAQUE:
            self.opaque_dirs.add(entry.path)
        else:
            self.present[entry.path] = entry.kind


DELETED, OVERWRITTEN = "deleted", "overwritten"
_TAIL = 8
"""How many last characters of a prefix, with its length, select the layer entries worth hashing."""
_Keys = set[tuple[int, str]]


def _digest(path: str) -> bytes:
    return hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=32).digest()


_ROOT = _digest("/")


@dataclass
class _Hits:
    """Where one path (known by its digest) hides things, in layer order: at the path itself, and
    below it (under a whiteout, an opaque directory or a non-directory)."""

    exact_layers: list[int] = field(default_factory=list)
    exact_how: list[str] = field(default_factory=list)
    below_layers: list[int] = field(default_factory=list)

    def exact(self, layer: int, how: str) -> None:
        if self.exact_layers and self.exact_layers[-1] == layer:
            if how == DELETED:  # a whiteout and a new entry in one layer: the deletion is what counts
                self.exact_how[-1] = DELETED
            return
        self.exact_layers.append(layer)
        self.exact_how.append(how)

    def below(self, layer: int) -> None:
        if not self.below_layers or self.below_layers[-1] != layer:
            self.below_layers.append(layer)


@dataclass(frozen=True, slots=True)
class _Query:
    layer: int
    exact: bytes
    """Digest of the path."""
    ancestors: tuple[bytes, ...]
    """Digests of its proper ancestors, ``/`` included."""


class FateIndex:
    """The layers of one image, base first, each as the paths it adds and removes."""

    def __init__(self, layers: Sequence[LayerPaths]) -> None:
        self._layers = list(layers)

    def fate(self, layer: int, path: str) -> Fate | None:
        """One path's fate. Each call looks at every later layer: for many paths, use ``fates``."""
        return self.fates([(layer, path)])[0]

    def fates(self, queries: Sequence[tuple[int | None, str]]) -> list[Fate | None]:
        """For each (layer, path): the first later layer that hides ``path`` as seen in ``layer``,
        or None if it survives (or has no layer). A file inside a nested archive (``a.jar!/x``)
        shares the archive's fate."""
        keys: _Keys = set()
        asked = [
            None
            if layer is None or layer + 1 >= len(self._layers)  # no later layer can hide it
            else _query(layer, path.split("!/", 1)[0], keys)
            for layer, path in queries
        ]
        first = min((q.layer for q in asked if q is not None), default=len(self._layers))
        hits = self._hits(first + 1, keys)
        return [None if q is None else _first_hiding(q, hits) for q in asked]

    def _hits(self, start: int, keys: _Keys) -> dict[bytes, _Hits]:
        """What layers ``start``.. do at the paths that may be a queried path or ancestor."""
        lengths = {length for length, _ in keys}
        hits: dict[bytes, _Hits] = {}

        def candidates(paths: Iterable[str]) -> Iterator[tuple[str, _Hits]]:
            for p in paths:
                if len(p) in lengths and (len(p), p[-_TAIL:]) in keys:
                    yield p, hits.setdefault(_digest(p), _Hits())

        for index in range(start, len(self._layers)):
            layer = self._layers[index]
            for _, h in candidates(layer.whiteouts):
                h.exact(index, DELETED)
                h.below(index)
            for _, h in candidates(layer.opaque_dirs):
                h.below(index)
            present = layer.present
            for p, h in candidates(present):
                h.exact(index, OVERWRITTEN)
                if present[p] != EntryKind.DIR:  # a file, link or device where a directory was
                    h.below(index)
        return hits


def _query(layer: int, path: str, keys: _Keys) -> _Query:
    """The path's digest and its ancestors', from one incremental pass (each prefix's digest
    continues the previous one); the (length, tail) of each goes into ``keys``."""
    running = hashlib.blake2b(digest_size=32)
    ancestors = []
    if path != "/":
        ancestors.append(_ROOT)  # an opaque marker at the top of a layer hides everything below
        keys.add((1, "/"))
    start, cut = 0, path.find("/", 1)
    while cut > 0:
        running.update(path[start:cut].encode("utf-8", "surrogatepass"))
        ancestors.append(running.copy().digest())
        keys.add((cut, path[max(0, cut - _TAIL) : cut]))
        start, cut = cut, path.find("/", cut + 1)
    running.update(path[start:].encode("utf-8", "surrogatepass"))
    keys.add((len(path), path[-_TAIL:]))
    return _Query(layer, running.digest(), tuple(ancestors))


def _first_hiding(query: _Query, hits: dict[bytes, _Hits]) -> Fate | None:
    """The earliest later layer that hides the path; in one layer, deletion outranks overwriting."""
    best: tuple[int, int] | None = None  # (layer, 0 deleted / 1 overwritten)
    at = hits.get(query.exact)
    if at is not None:
        i = bisect_right(at.exact_layers, query.layer)
        if i < len(at.exact_layers):
            best = (at.exact_layers[i], 0 if at.exact_how[i] == DELETED else 1)
    for digest in query.ancestors:
        above = hits.get(digest)
        if above is None:
            continue
        i = bisect_right(above.below_layers, query.layer)
        if i < len(above.below_layers) and (best is None or (above.below_layers[i], 0) < best):
            best = (above.below_layers[i], 0)
    if best is None:
        return None
    return Fate(best[0], DELETED if best[1] == 0 else OVERWRITTEN)
