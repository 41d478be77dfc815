"""Where images come from. Every source yields :class:`~secretscan.image.model.Image` values.

References follow containers-transports(5), the convention skopeo and podman users know:
``docker-archive:PATH[:REF|:@N]``, ``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]``, ``dir:PATH``.
A bare path is recognised by its contents. Later sources (daemon, registry, ECR) plug into the
same table.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from secretscan.errors import UsageError
from secretscan.image.model import Image


class Source(Protocol):
    @property
    def description(self) -> str: ...
    def images(self) -> Iterator[Image]: ...


def _split_path_ref(rest: str, want_dir: bool) -> tuple[Path, str | None]:
    """``PATH[:REF]`` where PATH may itself contain colons: the longest existing prefix wins."""
    candidates = [rest] + [rest[:i] for i in range(len(rest) - 1, 0, -1) if rest[i] == ":"]
    for candidate in candidates:
        p = Path(candidate)
        if p.is_dir() if want_dir else p.is_file():
            ref = rest[len(candidate) + 1 :] if len(candidate) < len(rest) else None
            return p, (ref or None)
    kind = "directory" if want_dir else "file"
    raise UsageError(f"{rest}: no such {kind}")


def _docker_archive(rest: str) -> Source:
    from secretscan.sources.archive import DockerArchive

    path, ref = _split_path_ref(rest, want_dir=False)
    return DockerArchive(path, ref)


def _oci(rest: str) -> Source:
    from secretscan.sources.oci import OciLayout

    path, ref = _split_path_ref(rest, want_dir=True)
    return OciLayout.from_dir(path, ref)


def _oci_archive(rest: str) -> Source:
    from secretscan.sources.oci import OciLayout

    path, ref = _split_path_ref(rest, want_dir=False)
    return OciLayout.from_tar(path, ref)


def _dir(rest: str) -> Source:
    from secretscan.sources.rootfs import RootFs

    path, ref = _split_path_ref(rest, want_dir=True)
    if ref:
        raise UsageError(f"dir:{rest}: a directory takes no reference")
    return RootFs(path)


TRANSPORTS: dict[str, Callable[[str], Source]] = {
    "docker-archive": _docker_archive,
    "oci": _oci,
    "oci-archive": _oci_archive,
    "dir": _dir,
}


def open_source(reference: str) -> Source:
    transport, sep, rest = reference.partition(":")
    if sep and transport in TRANSPORTS:
        return TRANSPORTS[transport](rest)
    return TRANSPORTS[_recognise(reference)](reference)


def _recognise(reference: str) -> str:
    """Pick a transport for a bare path from what it contains."""
    path = Path(reference)
    if path.is_dir():
        return "oci" if (path / "oci-layout").is_file() and (path / "index.json").is_file() else "dir"
    if not path.is_file():
        known = ", ".join(f"{t}:" for t in TRANSPORTS)
        raise UsageError(f"{reference}: no such file or directory (or name a transport: {known})")
    try:
        with tarfile.open(path, "r:") as tar:
            names = set()
            for i, member in enumerate(tar):
                names.add(os.path.normpath(member.name))
                if "manifest.json" in names:
                    return "docker-archive"
                if i > 10_000:
                    break
    except (tarfile.TarError, OSError):
        raise UsageError(f"{reference}: not an image (neither a directory nor a tar archive)") from None
    if {"oci-layout", "index.json"} <= names:
        return "oci-archive"
    raise UsageError(f"{reference}: a tar archive without manifest.json or an OCI layout: not an image")
