"""The builder every database parser writes into: one ``LayerPackages``, one entry per package
however many of its database files mention it (dpkg's ``.list``, ``.md5sums`` and status)."""

from __future__ import annotations

from collections.abc import Callable

from secretscan.provenance.model import NO_DIGEST, LayerPackages, Manager

SHARED = -1
"""A root claimed by more than one package (a namespace directory such as ``google/``)."""


class PackageTable:
    def __init__(self) -> None:
        self.layer = LayerPackages()
        self._index: dict[tuple[Manager, str], int] = {}

    @property
    def versions(self) -> dict[str, str]:
        return self.layer.versions

    def package(self, manager: Manager, name: str, version: str = "") -> int:
        key = (manager, name)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = self.layer.package(manager, name, version)
        return index

    def file(self, path: str, package: int, digest: str) -> None:
        """A record with a digest is never replaced by one without (``.list`` after ``.md5sums``)."""
        files = self.layer.files
        if digest == NO_DIGEST and path in files:
            return
        files[path] = (package, digest)

    def root(self, path: str, package: int) -> None:
        roots = self.layer.roots
        if roots.get(path, package) != package:
            roots[path] = SHARED
        else:
            roots[path] = package

    def owned_dir(self, path: str, package: int) -> None:
        self.layer.owned_dirs.setdefault(path, package)


Reader = Callable[[PackageTable, bytes, int], None]
"""Reads one database file (its bytes, its modification time) into a table."""
