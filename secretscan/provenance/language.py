"""Records of language package managers: pip (``RECORD``, legacy ``installed-files.txt``), npm
(each package's ``package.json``), Go's module cache, RubyGems and Maven's local repository.

pip records a SHA-256 per file; Maven keeps a ``.sha1`` beside each artifact. npm, Go and gems keep
no per-file digest: for them a package's directory is what the record gives (membership), and
``provenance.index`` decides by layer (and npm's file times) whether a file there came with it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import json
import posixpath
import re
from collections.abc import Callable

from secretscan.provenance.model import NO_DIGEST, Manager
from secretscan.provenance.packages import PackageTable, Reader

MAX_PACKAGE_JSON = 1024 * 1024
"""npm manifests are a few KiB; a larger one is not read for its name and version."""

_DIST_INFO = re.compile(r"^(?P<base>.*)/(?P<dir>[^/]+)\.dist-info/RECORD$")
_EGG_INFO = re.compile(r"^(?P<base>.*)/(?P<dir>[^/]+)\.egg-info/installed-files\.txt$")
_NPM = re.compile(r"^(?P<root>.*/node_modules/(?:@[^/]+/)?(?P<dir>[^/@.][^/]*))/package\.json$")
_GO = re.compile(r"^(?P<base>.*)/pkg/mod/cache/download/(?P<module>.+)/@v/(?P<version>[^/]+)\.ziphash$")
_GEM = re.compile(r"^(?P<base>.*)/specifications/(?P<dir>[^/]+)\.gemspec$")
_MAVEN = re.compile(
    r"^(?P<base>.*/\.m2/repository/.+/(?P<artifact>[^/]+)/(?P<version>[^/]+))/(?P<file>[^/]+\.jar)\.sha1$"
)
_HEX40 = re.compile(r"\b[0-9a-fA-F]{40}\b")


def _split_name(directory: str) -> tuple[str, str]:
    """``Flask-3.0.3`` -> (``Flask``, ``3.0.3``); pip escapes dashes in names as underscores."""
    name, _, version = directory.partition("-")
    return name, version.split("-py", 1)[0] if version else ""


def _pip_record(table: PackageTable, found: re.Match[str], data: bytes, mtime: int) -> None:
    """``path,sha256=<urlsafe base64>,size`` rows, relative to the directory holding the
    ``.dist-info``; compiled ``.pyc`` files are listed without a digest."""
    base = found["base"]
    package = table.package(Manager.PIP, *_split_name(found["dir"]))
    table.root(f"{base}/{found['dir']}.dist-info", package)
    for row in csv.reader(data.decode("utf-8", "replace").splitlines()):
        if not row or not row[0]:
            continue
        digest = NO_DIGEST
        if len(row) > 1 and row[1].startswith("sha256="):
            try:
                raw = base64.urlsafe_b64decode(row[1][7:] + "=" * (-len(row[1][7:]) % 4))
            except (binascii.Error, ValueError):
                raw = b""
            digest = "sha256:" + raw.hex() if len(raw) == 32 else NO_DIGEST
        _pip_file(table, base, row[0], package, digest)


def _pip_installed_files(table: PackageTable, found: re.Match[str], data: bytes, mtime: int) -> None:
    """Legacy ``setup.py install``: paths relative to the ``.egg-info`` directory, no digests."""
    base = found["base"]
    package = table.package(Manager.PIP, *_split_name(found["dir"]))
    egg = f"{base}/{found['dir']}.egg-info"
    table.root(egg, package)
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            _pip_file(table, base, posixpath.join(found["dir"] + ".egg-info", line.strip()), package, NO_DIGEST)


def _pip_file(table: PackageTable, base: str, relative: str, package: int, digest: str) -> None:
    full = posixpath.normpath(posixpath.join(base, relative))
    table.file(full, package, digest)
    parts = relative.split("/")
    if len(parts) > 1 and parts[0] not in ("..", "__pycache__", ".", "") and not parts[0].endswith(".data"):
        table.root(f"{base}/{parts[0]}", package)


def _npm_package(table: PackageTable, found: re.Match[str], data: bytes, mtime: int) -> None:
    """A package's own ``package.json``, directly in its ``node_modules`` directory."""
    name, version = found["dir"], ""
    if len(data) <= MAX_PACKAGE_JSON:
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError):
            manifest = None
        if isinstance(manifest, dict):
            named, versioned = manifest.get("name"), manifest.get("version")
            name = named if isinstance(named, str) and named else name
            version = versioned if isinstance(versioned, str) else ""
    package = table.layer.package(Manager.NPM, name, version)  # one per directory: versions nest
    table.root(found["root"], package)
    table.layer.root_mtimes[found["root"]] = mtime


def _go_module(table: PackageTable, found: re.Match[str], data: bytes, mtime: int) -> None:
    """The module cache keeps ``<module>@<version>/`` read-only, downloaded and checked against
    go.sum; its ``.ziphash`` says the module was fetched by the go command."""
    package = table.package(Manager.GO, found["module"], found["version"])
    table.root(f"{found['base']}/pkg/mod/{found['module']}@{found['version']}", package)


def _gem_spec(table: PackageTable, found: re.Match[str], data: bytes, mtime: int) -> None:
    name, _, version = found["dir"].rpartition("-")
    package = table.package(Manager.GEM, name or found["dir"], version if name else "")
    table.root(f"{found['base']}/gems/{found['dir']}", package)


def _maven_checksum(table: PackageTable, found: re.Match[str], data: bytes, mtime: int) -> None:
    """Maven keeps ``<artifact>.jar.sha1``, the repository's checksum, beside each jar it downloads."""
    digest = _HEX40.search(data[:200].decode("ascii", "replace"))
    if digest is not None:
        package = table.package(Manager.MAVEN, found["artifact"], found["version"])
        table.file(f"{found['base']}/{found['file']}", package, "sha1:" + digest.group(0).lower())


_Handler = Callable[[PackageTable, re.Match[str], bytes, int], None]
_READERS: tuple[tuple[str, re.Pattern[str], _Handler], ...] = (
    ("/RECORD", _DIST_INFO, _pip_record),
    ("/installed-files.txt", _EGG_INFO, _pip_installed_files),
    ("/package.json", _NPM, _npm_package),
    (".ziphash", _GO, _go_module),
    (".gemspec", _GEM, _gem_spec),
    (".jar.sha1", _MAVEN, _maven_checksum),
)
_SUFFIXES = tuple(suffix for suffix, _, _ in _READERS)


def reader(path: str) -> Reader | None:
    """What reads the database file at ``path`` (its bytes, its time), or None if it is none."""
    if not path.endswith(_SUFFIXES):
        return None
    for suffix, pattern, handler in _READERS:
        found = pattern.match(path) if path.endswith(suffix) else None
        if found is not None:
            return functools.partial(_apply, handler, found)
    return None


def _apply(handler: _Handler, found: re.Match[str], table: PackageTable, data: bytes, mtime: int) -> None:
    handler(table, found, data, mtime)
