"""Where images come from. A source yields :class:`~secretscan.image.model.Image` values
(``ImageSource``), or, when its images come as one stream to be read once (the Docker daemon's
``docker save``), opens that stream (``StreamedSource``): the scanner reads it once, holding or
scanning each layer as it passes (``streamlayers``). No source knows the scanner.

References follow containers-transports(5), the convention skopeo and podman users know:
``docker-archive:PATH[:REF|:@N]``, ``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]``, ``dir:PATH``,
``docker://[REGISTRY/]REPO[:TAG|@DIGEST]``, ``docker-daemon:REPO[:TAG]``. A bare path is recognised
by its contents; a bare ``REPO[:TAG]`` is looked up in the local daemon first, then the registry.
``-`` (or ``docker-archive:-``, ``oci-archive:-``) is an archive on standard input, read as a stream.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from secretscan.errors import SecretScanError, SourceError, UsageError
from secretscan.image.model import Image
from secretscan.sources.auth import Keychain, MultiKeychain
from secretscan.sources.reference import reads_stdin, unknown_transport
from secretscan.sources.registry_options import RegistryOptions
from secretscan.sources.savestream import SaveStream

if TYPE_CHECKING:
    from secretscan.sources.daemon import DaemonSource


class ImageSource(Protocol):
    @property
    def description(self) -> str: ...
    def images(self) -> Iterator[Image]: ...


@runtime_checkable
class StreamedSource(Protocol):
    @property
    def description(self) -> str: ...
    def open_stream(self) -> SaveStream: ...


Source = ImageSource | StreamedSource


@dataclass(frozen=True)
class SourceOptions:
    keychain: Keychain = field(default_factory=lambda: MultiKeychain(()))
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    prefer: str = "auto"
    """For a bare ``REPO:TAG``: ``auto`` (daemon, then registry), ``daemon`` or ``registry``."""


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


def _docker_archive(rest: str, options: SourceOptions) -> Source:
    from secretscan.sources.archive import DockerArchive

    path, ref = _split_path_ref(rest, want_dir=False)
    return DockerArchive(path, ref)


def _oci(rest: str, options: SourceOptions) -> Source:
    from secretscan.sources.oci import OciLayout

    path, ref = _split_path_ref(rest, want_dir=True)
    return OciLayout.from_dir(path, ref)


def _oci_archive(rest: str, options: SourceOptions) -> Source:
    from secretscan.sources.oci import OciLayout

    path, ref = _split_path_ref(rest, want_dir=False)
    return OciLayout.from_tar(path, ref)


def _dir(rest: str, options: SourceOptions) -> Source:
    from secretscan.sources.rootfs import RootFs

    path, ref = _split_path_ref(rest, want_dir=True)
    if ref:
        raise UsageError(f"dir:{rest}: a directory takes no reference")
    return RootFs(path)


def _registry(rest: str, options: SourceOptions) -> ImageSource:
    from secretscan.sources.reference import ImageRef
    from secretscan.sources.registry import RegistrySource

    return RegistrySource(ImageRef.parse(rest.removeprefix("//")), options.keychain, options.registry)


def _daemon(rest: str, options: SourceOptions) -> DaemonSource:
    from secretscan.sources.daemon import DaemonSource

    if not rest:
        raise UsageError("docker-daemon: needs an image name or ID")
    return DaemonSource(rest)


TRANSPORTS: dict[str, Callable[[str, SourceOptions], Source]] = {
    "docker-archive": _docker_archive,
    "oci": _oci,
    "oci-archive": _oci_archive,
    "dir": _dir,
    "docker": _registry,
    "docker-daemon": _daemon,
}


def open_source(reference: str, options: SourceOptions | None = None) -> Source:
    options = options or SourceOptions()
    if reads_stdin(reference):
        from secretscan.sources.archive import StdinArchive

        return StdinArchive()
    transport, sep, rest = reference.partition(":")
    if sep and transport in TRANSPORTS:
        return TRANSPORTS[transport](rest, options)
    if os.path.exists(reference):
        return TRANSPORTS[_recognise(reference)](reference, options)
    mistyped = unknown_transport(reference, TRANSPORTS)  # not a Docker Hub name "docker-archve" tagged "x.tar"
    if mistyped:
        raise UsageError(mistyped)
    if reference.startswith((".", "/", "~")) or os.sep in reference and not _looks_like_image_name(reference):
        known = ", ".join(f"{t}:" for t in TRANSPORTS)
        raise UsageError(f"{reference}: no such file or directory (or name a transport: {known})")
    return _by_name(reference, options)


def _looks_like_image_name(text: str) -> bool:
    from secretscan.sources.reference import ImageRef

    try:
        ImageRef.parse(text)
    except UsageError:
        return False
    return True


def _by_name(reference: str, options: SourceOptions) -> Source:
    """A bare image name: the local daemon first (what ``docker push`` would send), then the registry."""
    if not _looks_like_image_name(reference):
        known = ", ".join(f"{t}:" for t in TRANSPORTS)
        raise UsageError(f"{reference}: neither a file nor an image name (or name a transport: {known})")
    if options.prefer == "registry":
        return _registry(reference, options)
    daemon = _daemon(reference, options)
    if options.prefer == "daemon":
        return daemon
    try:
        daemon.lookup()
    except SecretScanError as exc:
        registry = _registry(reference, options)
        return _Fallback(registry, f"not in the local Docker daemon ({exc})")
    return daemon


@dataclass
class _Fallback:
    """The registry source, remembering why the daemon was not used (for the error if both fail)."""

    inner: ImageSource
    why_not_daemon: str

    @property
    def description(self) -> str:
        return self.inner.description

    def images(self) -> Iterator[Image]:
        try:
            yield from self.inner.images()
        except SourceError as exc:
            raise SourceError(f"{exc}; {self.why_not_daemon}") from None


def _recognise(reference: str) -> str:
    """Pick a transport for a bare path from what it contains."""
    path = Path(reference)
    if path.is_dir():
        return "oci" if (path / "oci-layout").is_file() and (path / "index.json").is_file() else "dir"
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
