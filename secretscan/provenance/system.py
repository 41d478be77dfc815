"""Databases of system package managers: dpkg (Debian, Ubuntu, distroless), apk (Alpine) and rpm
(Fedora, RHEL: ``provenance.rpm``).

Each parser reads one database file's bytes into a ``LayerPackages``, in one pass over its lines.
The files are the image's own claims, so nothing in them is trusted beyond what it says about
paths and digests; a malformed line is skipped, never an error that costs the layer its scan.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Callable

from secretscan.provenance.model import NO_DIGEST, Manager
from secretscan.provenance.packages import PackageTable, Reader
from secretscan.provenance.rpm import RPMDB_BDB, RPMDB_SQLITE, rpmdb_bdb, rpmdb_sqlite

DPKG_INFO = "/var/lib/dpkg/info/"
DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_DIR = "/var/lib/dpkg/status.d/"
"""Distroless images: one status stanza per package, and ``<name>.md5sums`` beside it."""
APK_INSTALLED = "/lib/apk/db/installed"


def _dpkg_name(filename: str, suffix: str) -> str:
    """``libc6:amd64.md5sums`` -> ``libc6``."""
    return filename[: -len(suffix)].split(":", 1)[0]


def dpkg_md5sums(table: PackageTable, name: str, text: str) -> None:
    """``<md5 hex>  <path without the leading slash>`` per line."""
    package = table.package(Manager.DPKG, name)
    for line in text.splitlines():
        digest, _, path = line.partition(" ")
        path = path.lstrip(" ")
        if len(digest) == 32 and path:
            table.file("/" + path.lstrip("/"), package, "md5:" + digest.lower())


def dpkg_list(table: PackageTable, name: str, text: str) -> None:
    """Every path the package installed (directories too), without digests."""
    package = table.package(Manager.DPKG, name)
    for line in text.splitlines():
        if line.startswith("/") and line not in ("/.", "/"):
            table.file(line, package, NO_DIGEST)
            table.owned_dir(line, package)  # directories are listed too; a file's name is never one
            table.owned_dir(posixpath.dirname(line), package)


def dpkg_status(table: PackageTable, text: str) -> None:
    """Stanzas of ``Package:``, ``Version:`` and ``Conffiles:`` (configuration files are not in
    ``.md5sums``: their digests as shipped are here, so an edited one reads as modified)."""
    name = version = ""
    conffiles: list[tuple[str, str]] = []
    in_conffiles = False

    def flush() -> None:
        if name:
            table.versions[name] = version
            package = table.package(Manager.DPKG, name)
            for path, digest in conffiles:
                table.file(path, package, "md5:" + digest)

    for line in text.splitlines():
        if not line.strip():
            flush()
            name, version, conffiles, in_conffiles = "", "", [], False
            continue
        if line[0] in " \t":
            if in_conffiles:
                parts = line.split()
                if len(parts) >= 2 and parts[0].startswith("/") and len(parts[1]) == 32:
                    conffiles.append((parts[0], parts[1].lower()))
            continue
        key, _, value = line.partition(":")
        in_conffiles = key == "Conffiles"
        if key == "Package":
            name = value.strip()
        elif key == "Version":
            version = value.strip()
    flush()


def apk_installed(table: PackageTable, text: str) -> None:
    """Alpine's ``installed``: blocks of ``P:`` name, ``V:`` version, ``F:`` directory, ``R:`` file
    and ``Z:`` its checksum (``Q1`` + base64 of the SHA-1), separated by blank lines."""
    package = -1
    directory = ""
    last_file = ""
    name = version = ""
    for line in text.splitlines():
        if not line:
            package, directory, last_file, name, version = -1, "", "", "", ""
            continue
        key, value = line[:2], line[2:]
        if key == "P:":
            name = value
        elif key == "V:":
            version = value
            if name:
                table.versions[name] = version
        elif key == "F:":
            directory = value
        elif key == "R:" and name:
            if package < 0:
                package = table.package(Manager.APK, name)
            last_file = "/" + posixpath.join(directory, value).lstrip("/")
            table.file(last_file, package, NO_DIGEST)
            table.owned_dir(posixpath.dirname(last_file), package)
        elif key == "Z:" and last_file and value.startswith("Q1"):
            try:
                digest = base64.b64decode(value[2:], validate=True).hex()
            except (binascii.Error, ValueError):
                continue
            if len(digest) == 40:
                table.file(last_file, package, "sha1:" + digest)


def reader(path: str) -> Reader | None:
    """What reads the database file at ``path`` (its bytes), or None if it is none of these."""
    if path == DPKG_STATUS:
        return _text(dpkg_status)
    if path == APK_INSTALLED:
        return _text(apk_installed)
    if path in RPMDB_SQLITE:
        return lambda table, data, mtime: rpmdb_sqlite(table, data)
    if path in RPMDB_BDB:
        return lambda table, data, mtime: rpmdb_bdb(table, data)
    for directory, suffixes in ((DPKG_INFO, (".md5sums", ".list")), (DPKG_STATUS_DIR, (".md5sums", ""))):
        if not path.startswith(directory) or "/" in path[len(directory) :]:
            continue
        base = path[len(directory) :]
        if base.endswith(".md5sums"):
            return _text(dpkg_md5sums, _dpkg_name(base, ".md5sums"))
        if base.endswith(".list") and ".list" in suffixes:
            return _text(dpkg_list, _dpkg_name(base, ".list"))
        if "" in suffixes:  # status.d/<package>: a status stanza
            return _text(dpkg_status)
    return None


def _text(parse: Callable[..., None], *names: str) -> Reader:
    return lambda table, data, mtime: parse(table, *names, data.decode("utf-8", "replace"))
