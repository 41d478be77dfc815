"""One image's package records, asked about the files secrets were seen in.

Records stay in their layers (``LayerPackages``, as each layer's scan produced and the sweep cache
stored them); a question looks through the layers, so nothing is merged for the thousands of files
that hold no secret. Time per question: the number of layers, plus the first ``MAX_ROOT_DEPTH``
components of the path (a hostile path 50,000 directories deep costs no more than that).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from secretscan.models import PackageState
from secretscan.provenance.model import DIGEST_ALGORITHMS, NO_DIGEST, FileFacts, LayerPackages, Manager, Package
from secretscan.provenance.packages import SHARED

MAX_ROOT_DEPTH = 32
"""Package directories deeper than this many components are not looked for."""
_USR_MERGED = ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib32/", "/usr/lib64/", "/usr/libx32/")
"""Merged-/usr systems ship ``/lib`` as a link to ``usr/lib``, while dpkg still lists ``/lib/…``."""
NPM_SAME_TIME = 120
"""Seconds: npm writes a package's files together (or gives them all its tarball's time), so a
file whose time is further than this from its ``package.json``'s was written by someone else."""
_MEMBERSHIP = (Manager.NPM, Manager.GO, Manager.GEM)
"""Managers that keep no per-file digest: their directories are what they record."""


@dataclass(frozen=True, slots=True)
class Origin:
    state: PackageState | None
    """None: a package lists the file, but nothing can verify it (no digest, or no bytes to hash)."""
    package: str
    """The package's label, with the detail that explains ``state``."""


def listed_content(packages: LayerPackages, sizes: dict[str, int]) -> tuple[int, int]:
    """(files, bytes) of one layer that its own package records list: how much of the layer is
    third-party content as installed (by name: only files a secret was seen in are hashed)."""
    if not packages:
        return 0, 0
    count = total = 0
    roots = packages.roots
    under_root: dict[str, bool] = {}
    """Directory -> whether a package directory holds it: the marker and the package name that
    ``_root_ends`` looks for lie in the directory part of a path (npm trees hold most files)."""
    for path, size in sizes.items():
        listed = path in packages.files or (path.startswith(_USR_MERGED) and path[4:] in packages.files)
        if not listed and roots:
            directory = path.rpartition("/")[0]
            held = under_root.get(directory)
            if held is None:
                held = under_root[directory] = any(path[:at] in roots for at in _root_ends(path))
            listed = held
        if listed:
            count += 1
            total += size
    return count, total


def _root_ends(path: str) -> list[int]:
    """Where the package directory of an npm, Go or gem path can end (cheap: markers first)."""
    ends = []
    for marker in ("/node_modules/", "/pkg/mod/", "/gems/"):
        at = path.rfind(marker)
        if at < 0:
            continue
        start = at + len(marker)
        slash = path.find("/", start)
        if slash > 0 and marker == "/node_modules/" and path[start] == "@":
            slash = path.find("/", slash + 1)
        if marker == "/pkg/mod/":  # a module path has slashes: up to the component holding @version
            version = path.find("@", start)
            slash = path.find("/", version) if version > 0 else -1
        if slash > 0:
            ends.append(slash)
    return ends


@dataclass(frozen=True, slots=True)
class Vouch:
    """What a file's bytes must be for its layer's records to vouch for it (``ProvenanceIndex.vouch``)."""

    digests: tuple[tuple[str, str], ...]
    """(algorithm, hex value) pairs, one of which the bytes must match; none: the records vouch by
    membership alone (npm, Go and gem directories, pip's compiled files), whatever the bytes."""

    def holds(self, data: bytes) -> bool:
        """Whether bytes ``data`` are what the records vouch for (each algorithm hashed once)."""
        if not self.digests:
            return True
        seen: dict[str, str] = {}
        for algorithm, value in self.digests:
            if algorithm not in seen:
                seen[algorithm] = DIGEST_ALGORITHMS[algorithm](data).hexdigest()
            if seen[algorithm] == value:
                return True
        return False


MEMBERSHIP = Vouch(())


def _vouch_of(records: list[tuple[int, Package, str]]) -> Vouch | None:
    """What ``_recorded`` decides of records that name a file, for layer 0, without the labels it
    writes for a report."""
    hashed = [digest.partition(":") for _, _, digest in records if digest != NO_DIGEST]
    if hashed:
        known = tuple((a, v) for a, _, v in hashed if a in DIGEST_ALGORITHMS)
        return Vouch(known) if known else None
    installed, package, _ = records[-1]
    return MEMBERSHIP if package.manager is Manager.PIP and installed == 0 else None


class _Odd(Enum):
    """What about a file in a package's directory speaks against its package's verdict."""

    LAYER = "added by another layer than the package"
    TIME = "written at another time than the package (npm)"
    WRITABLE = "writable, unlike what the go command extracts"


@dataclass(frozen=True, slots=True)
class Place:
    verdict: Origin | None
    """For a file of a membership manager's package directory: the verdict when its layer, time
    and mode agree; otherwise the verdict for any file there."""
    directory: str = ""
    manager: Manager | None = None
    """Set only for a membership manager's package (npm, Go, gems), whose files are weighed one by one."""
    label: str = ""
    layers: tuple[int, ...] = ()
    """Layers that installed the package."""
    times: tuple[int | None, ...] = ()
    """The time of the package's root in each of ``layers`` (npm: its ``package.json``'s)."""
    published: bool = field(init=False, default=False)
    """Whether ``verdict`` is one of published content (asked for every file of a layer)."""

    def __post_init__(self) -> None:
        verdict = self.verdict
        object.__setattr__(self, "published", verdict is not None and verdict.state is not None and verdict.state.published)

    def odd(self, layer: int, mtime: int | None, mode: int | None) -> _Odd | None:
        """What about a file here, added by ``layer`` with ``mtime`` and ``mode`` (None: not
        known), speaks against this place's verdict (None: nothing)."""
        if self.manager is None:
            return None
        if layer not in self.layers:
            return _Odd.LAYER
        if self.manager is Manager.NPM and mtime:
            written = self.times[self.layers.index(layer)]
            if written and abs(mtime - written) > NPM_SAME_TIME:
                return _Odd.TIME
        if self.manager is Manager.GO and mode is not None and mode & 0o222:
            return _Odd.WRITABLE
        return None


class ProvenanceIndex:
    def __init__(self, layers: Sequence[LayerPackages]) -> None:
        self._layers = [(i, lp) for i, lp in enumerate(layers) if lp]
        self._versions: dict[str, str] = {}
        for _, lp in self._layers:
            self._versions.update(lp.versions)
        self._places: dict[str, Place] = {}
        """``_place`` by directory: a package's files share theirs, and npm trees hold most files."""
        self._recorded_dirs: set[str] | None = None
        """Directories some record names a file in (``vouch``, built at its first question)."""
        self._root_places: dict[str, Place] = {}
        """``_root_place`` by package directory: an npm package's files lie in dozens of directories."""
        self._unnamed: dict[str, Place] = {}
        """``_places`` of the directories no record names a file in (``vouch``)."""

    def __bool__(self) -> bool:
        return bool(self._layers)

    def _label(self, package: Package) -> str:
        if not package.version and package.manager in (Manager.DPKG, Manager.APK):
            version = self._versions.get(package.name)
            if version:
                return Package(package.manager, package.name, version).label()
        return package.label()

    def origin(self, layer: int, path: str, facts: FileFacts | None) -> Origin | None:
        """What the records say of the file at ``path`` added by ``layer`` (``facts``: its bytes'
        digests, time and mode; None when they are not known). None: no record speaks of it."""
        path = path.split("!/", 1)[0]
        records = self._records(path)
        if records:
            return self._recorded(layer, records, facts)
        return self._unrecorded(layer, path, facts)

    def vouch(self, path: str, mtime: int, mode: int) -> Vouch | None:
        """What the records, for an index of the layer's own records, require of the file at
        ``path`` to vouch for it as package content as installed (pristine or member): what lets
        the scan search it with fewer rules (``walk.layer.Vouching``). None: they cannot vouch
        for it, whatever its bytes. Asked before the file is read, of every file of a layer: a
        directory no record names a file in is looked up once."""
        place = self.unnamed_place(path)
        if place is None:
            records = self._records(path)
            if records:
                return _vouch_of(records)
            place = self._place_of(path)
        # what ``_unrecorded`` decides for layer 0, without its labels
        return MEMBERSHIP if place.published and place.odd(0, mtime, mode) is None else None

    def unnamed_place(self, path: str) -> Place | None:
        """The place of the file at ``path`` when no record names a file in its directory (npm
        trees): what ``vouch`` then goes by, with the file's layer, time and mode (``Place.odd``).
        None for a directory some record names a file in."""
        directory = path.rpartition("/")[0]
        place = self._unnamed.get(directory)
        if place is None:
            if self._recorded_dirs is None:
                self._recorded_dirs = {name.rpartition("/")[0] for _, lp in self._layers for name in lp.files}
            if directory in self._recorded_dirs or (
                path.startswith(_USR_MERGED) and directory[4:] in self._recorded_dirs
            ):
                return None
            place = self._unnamed[directory] = self._place_of(path)
        return place

    def leaves_compiled_unlisted(self, path: str) -> bool:
        """Whether ``path`` is recorded by a manager that does not list what is compiled from its
        Python sources (dpkg, rpm, apk: ``py3compile`` writes the ``.pyc`` after install; pip
        lists them in ``RECORD``)."""
        return any(package.manager is not Manager.PIP for _, package, _ in self._records(path))

    def _records(self, path: str) -> list[tuple[int, Package, str]]:
        names = (path, path[4:]) if path.startswith(_USR_MERGED) else (path,)
        found = []
        for i, lp in self._layers:
            for name in names:
                record = lp.files.get(name)
                if record is not None:
                    found.append((i, lp.packages[record[0]], record[1]))
        return found

    def _recorded(self, layer: int, records: list[tuple[int, Package, str]], facts: FileFacts | None) -> Origin:
        hashed = [(i, p, d) for i, p, d in records if d != NO_DIGEST]
        if hashed and facts is not None:
            for _, package, digest in hashed:
                algorithm, _, value = digest.partition(":")
                if facts.digests.get(algorithm) == value:
                    return Origin(PackageState.PRISTINE, self._label(package))
            installed, package, _ = hashed[-1]
            return Origin(PackageState.MODIFIED, f"{self._label(package)}, installed by layer {installed}")
        installed, package, _ = records[-1]
        if hashed or package.manager is not Manager.PIP:
            return Origin(None, f"{self._label(package)}, not verified: no digest to check")
        if installed != layer:  # pip lists compiled files without a digest: membership by layer
            return Origin(PackageState.UNRECORDED, f"{self._label(package)}, installed by layer {installed}")
        return Origin(PackageState.MEMBER, self._label(package))

    def _unrecorded(self, layer: int, path: str, facts: FileFacts | None) -> Origin | None:
        place, odd = self._weigh(layer, path, *((facts.mtime, facts.mode) if facts is not None else (None, None)))
        if odd is _Odd.LAYER:
            return Origin(
                PackageState.UNRECORDED,
                f"{place.label}, installed by layer {place.layers[-1]}; this file added by layer {layer}",
            )
        if odd is _Odd.TIME:
            return Origin(PackageState.UNRECORDED, f"{place.label}; this file written at another time than the package")
        if odd is _Odd.WRITABLE:
            return Origin(
                PackageState.UNRECORDED, f"{place.label}; this file is writable, unlike what the go command extracts"
            )
        return place.verdict

    def _weigh(self, layer: int, path: str, mtime: int | None, mode: int | None) -> tuple[Place, _Odd | None]:
        """The place of a file no record names, and what about the file itself (its layer, time,
        mode; None: not known) speaks against the verdict of its place (None: nothing)."""
        place = self._place_of(path)
        return place, place.odd(layer, mtime, mode)

    def _place_of(self, path: str) -> Place:
        directory = path.rpartition("/")[0]
        place = self._places.get(directory)
        if place is None:
            place = self._places[directory] = self._place(path)
        return place

    def _place(self, path: str) -> Place:
        """What the records say of the directory holding ``path``: all but the file's own layer,
        time and mode, which ``_unrecorded`` weighs per file."""
        root = self._root(path)
        if root is None:
            owner = self._owned_dir(path)
            if owner is None:
                return Place(None)
            return Place(Origin(PackageState.UNRECORDED, f"a directory of {owner}, which does not list this file"))
        directory, installs = root
        place = self._root_places.get(directory)
        if place is None:
            place = self._root_places[directory] = self._root_place(directory, installs)
        return place

    def _root_place(self, directory: str, installs: list[tuple[int, Package | None]]) -> Place:
        """The place of a package directory (``_root``): shared by every directory under it."""
        packages = [p for _, p in installs if p is not None]
        if not packages:
            return Place(Origin(PackageState.UNRECORDED, f"a directory several packages share ({directory})"))
        package = packages[-1]
        label = self._label(package)
        if package.manager not in _MEMBERSHIP:
            return Place(Origin(PackageState.UNRECORDED, f"{label}, which does not list this file"))
        layers = tuple(i for i, p in installs if p is not None)
        times = tuple(self._root_mtime(i, directory) for i in layers)
        return Place(Origin(PackageState.MEMBER, label), directory, package.manager, label, layers, times)

    def _root(self, path: str) -> tuple[str, list[tuple[int, Package | None]]] | None:
        """The package directory above ``path`` (the one its ``node_modules``, ``pkg/mod`` or
        ``gems`` component names, else the deepest; the file's directory alone decides), and
        (layer, package or None when shared) for each layer that records it. The marked one is
        looked up first: npm trees hold most files."""
        for end in sorted(_root_ends(path), reverse=True):
            if (found := self._installs(path[:end])) is not None:
                return found
        directories = path.split("/", MAX_ROOT_DEPTH + 1)[1:-1]  # the last piece: the name, or the rest
        prefixes, prefix = [], ""
        for part in directories:
            prefix += "/" + part
            prefixes.append(prefix)
        for candidate in reversed(prefixes):
            if (found := self._installs(candidate)) is not None:
                return found
        return None

    def _installs(self, candidate: str) -> tuple[str, list[tuple[int, Package | None]]] | None:
        """(``candidate``, its installs) when some layer records it as a package directory."""
        installs = [
            (i, None if lp.roots[candidate] == SHARED else lp.packages[lp.roots[candidate]])
            for i, lp in self._layers
            if candidate in lp.roots
        ]
        return (candidate, installs) if installs else None

    def _root_mtime(self, layer: int, directory: str) -> int | None:
        for i, lp in self._layers:
            if i == layer:
                return lp.root_mtimes.get(directory)
        return None

    def _owned_dir(self, path: str) -> str | None:
        directory = posixpath.dirname(path)
        names = (directory, directory[4:]) if (directory + "/").startswith(_USR_MERGED) else (directory,)
        for _, lp in reversed(self._layers):
            for name in names:
                owner = lp.owned_dirs.get(name)
                if owner is not None:
                    return self._label(lp.packages[owner])
        return None
