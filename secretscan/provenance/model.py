"""What package managers recorded, as one layer holds it, and the facts of a file that a record is
checked against. Both are plain data: a layer's share is computed once, stored in the per-layer
cache, and combined per image by ``provenance.index``."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Manager(str, enum.Enum):
    PIP = "pip"
    DPKG = "dpkg"
    APK = "apk"
    RPM = "rpm"
    NPM = "npm"
    GO = "go"
    GEM = "gem"
    MAVEN = "maven"

    def __str__(self) -> str:
        return self.value


DIGEST_ALGORITHMS: dict[str, Callable[[bytes], Any]] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}
"""The algorithms package records use, by the name a record gives them: dpkg MD5, apk and Maven
SHA-1, pip and rpm SHA-256."""

NO_DIGEST = ""
"""A record that names a file without its digest (pip's compiled ``.pyc``, dpkg's ``.list``)."""


@dataclass(frozen=True, slots=True)
class Package:
    manager: Manager
    name: str
    version: str = ""

    def label(self) -> str:
        """``flask 3.0.3 (pip)``; the version is filled in from the status database for dpkg."""
        return f"{self.name} {self.version} ({self.manager})" if self.version else f"{self.name} ({self.manager})"


@dataclass
class LayerPackages:
    """The package records one layer's files hold. Paths are absolute, as in the image."""

    packages: list[Package] = field(default_factory=list)
    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    """path -> (index into ``packages``, ``algorithm:hex`` digest or ``NO_DIGEST``)."""
    roots: dict[str, int] = field(default_factory=dict)
    """A directory that holds one package's files and nothing else's (``…/site-packages/flask``,
    ``…/node_modules/@scope/x``, a Go module, a gem) -> package. A file there that no record
    names was not installed by the package."""
    root_mtimes: dict[str, int] = field(default_factory=dict)
    """npm package root -> the modification time of its ``package.json``: npm writes a package's
    files together, so one written much later (or earlier) was not written by npm."""
    versions: dict[str, str] = field(default_factory=dict)
    """dpkg and apk package name -> version, from the status database (the file lists lack it)."""
    owned_dirs: dict[str, int] = field(default_factory=dict)
    """A directory a system package lists (dpkg ``.list``): for saying whose directory an
    unrecorded file sits in. Shared directories keep the first package that listed them."""

    def package(self, manager: Manager, name: str, version: str = "") -> int:
        self.packages.append(Package(manager, name, version))
        return len(self.packages) - 1

    def __bool__(self) -> bool:
        return bool(self.files or self.roots)


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a record is compared with, kept for the files a secret was seen in."""

    digests: dict[str, str]
    """algorithm -> hex digest of the file's bytes as stored in the layer."""
    mtime: int = 0
    mode: int = 0
