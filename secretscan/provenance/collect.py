"""Gathering one layer's package records while the layer streams past."""

from __future__ import annotations

import csv
import re

from secretscan.provenance import language, system
from secretscan.provenance.model import LayerPackages
from secretscan.provenance.packages import PackageTable, Reader

_ENDINGS = (
    "RECORD", "installed-files.txt", "package.json", ".ziphash", ".gemspec", ".jar.sha1", ".md5sums", ".list",
    "status", "installed", "rpmdb.sqlite", "rpm/Packages",
)  # fmt: skip


def might_want(name: str) -> bool:
    """A quick first look at a raw archive name (before it is normalised): False means ``wants``
    would say no. A layer has tens of thousands of names; few end like a database."""
    return name.endswith(_ENDINGS) or "status.d/" in name


_LAST_PARTS = tuple({ending.rpartition("/")[2].encode() for ending in _ENDINGS})
NAME_ENDINGS: tuple[bytes, ...] = _LAST_PARTS
NAME_PART = b"status.d"
"""A tar header whose ``name`` field ends with none of ``NAME_ENDINGS`` and whose ``name`` and
``prefix`` fields hold no ``NAME_PART`` names no database (``might_want_header``)."""
SYSTEM_MARKERS = ("etc/dpkg/", "etc/apk/", "etc/rpm/", "etc/yum.repos.d/", "etc/dnf/")
"""Files of a system package manager's own that come early in a layer's tar order (``etc/``, where
names sort before ``lib/``, ``usr/`` and ``var/``), while its database comes late
(``var/lib/dpkg``, ``var/lib/rpm``): a layer that holds them likely ends with records."""


_IN_EXTENDED = re.compile(b"|".join(re.escape(part) + b"\n" for part in _LAST_PARTS) + b"|status\\.d/")
"""A database's name as the end of a pax record's value (``path=…\n``), or its dpkg directory."""


def might_name(extended: bytes) -> bool:
    """``might_want`` of the name a pax or GNU long-name header's data gives, before it is parsed
    out: False means the name is no database's."""
    return _IN_EXTENDED.search(extended) is not None or extended.rstrip(b"\0").endswith(_LAST_PARTS)


def might_want_header(header: bytes) -> bool:
    """``might_want`` before a tar header's name is even decoded, from its ``name`` and ``prefix``
    fields (the path is ``prefix/name``): False means ``might_want`` would say no."""
    end = header.find(b"\0", 0, 100)
    name = header[: end if end >= 0 else 100]
    return name.endswith(NAME_ENDINGS) or NAME_PART in name or (header[345] != 0 and NAME_PART in header[345:500])


def wants(path: str) -> bool:
    """Whether ``path`` is a package database file this module reads (cheap: called per file)."""
    return might_want(path) and _reader(path) is not None


def _reader(path: str) -> Reader | None:
    return system.reader(path) or language.reader(path)


_SYSTEM_ROOTS = ("/usr/", "/etc/", "/lib", "/bin/", "/sbin/", "/opt/", "/var/lib/")
"""Where dpkg, apk and rpm install files."""


def digests_for(path: str) -> tuple[str, ...]:
    """The digests a record of a file at ``path`` could carry, for files longer than one scan window,
    hashed while they stream whether or not a secret turns up (a file of one window is hashed with
    every algorithm, and only when a secret was seen in it): none in ``node_modules`` (npm records
    no digest), pip's SHA-256 in ``site-packages`` and ``dist-packages``, dpkg's MD5, apk's SHA-1 and
    rpm's SHA-256 where system packages install, Maven's SHA-1 for a jar. Logs and data files cost
    nothing."""
    if "/node_modules/" in path:
        return ()
    if "/site-packages/" in path:
        return ("sha256",)
    found = ["sha256"] if "/dist-packages/" in path else []
    if path.startswith(_SYSTEM_ROOTS):
        found = ["md5", "sha1", "sha256"]
    elif path.endswith(".jar"):
        found.append("sha1")
    return tuple(found)


class Collector:
    """Feeds each database file of one layer to its parser; malformed content is a note, never
    an exception that costs the layer its scan."""

    def __init__(self) -> None:
        self._table = PackageTable()
        self.problems: list[tuple[str, str]] = []
        """(path, why a database file could not be read)."""

    def feed(self, path: str, data: bytes, mtime: int) -> None:
        read = _reader(path)
        if read is None:
            return
        try:
            read(self._table, data, mtime)
        except (ValueError, csv.Error, RecursionError) as exc:
            self.problems.append((path, f"package database not read ({type(exc).__name__}: {str(exc)[:120]})"))

    @property
    def packages(self) -> LayerPackages:
        return self._table.layer
