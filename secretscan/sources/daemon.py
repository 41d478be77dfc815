"""Images from the local Docker engine, through the docker SDK (``DOCKER_HOST`` respected).

``image.save()`` is streamed through :mod:`secretscan.sources.savestream`: no temp file; each layer
held in memory as it arrives, or scanned as it passes (``secretscan.streamlayers``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from secretscan.errors import SourceError, causes
from secretscan.sources.savestream import SaveStream

TIMEOUT_SECONDS = 600


class _ChunkReader(io.RawIOBase):
    """A file-like view of the SDK's chunk iterator; the SDK's failures become ``SourceError``."""

    def __init__(self, chunks: Iterable[bytes], reference: str) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""
        self._reference = reference

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        import docker.errors

        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except docker.errors.DockerException as exc:
                raise SourceError(f"{self._reference}: docker save failed ({_short(exc)})") from None
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect() -> Any:
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=TIMEOUT_SECONDS)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SourceError(f"no Docker daemon answers at {daemon_address()} ({_why_unreachable(exc)})") from None
    return client


def _why_unreachable(exc: BaseException) -> str:
    """A few words on why the daemon did not answer: the OS error under the SDK's and requests'
    wrappings (``no such file or directory``), not their text of nested reprs."""
    for cause in causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return _short(exc)


@dataclass
class DaemonSource:
    reference: str

    @property
    def description(self) -> str:
        return f"docker-daemon:{self.reference}"

    def lookup(self) -> Any:
        import docker.errors

        client = connect()
        try:
            return client.images.get(self.reference)
        except docker.errors.ImageNotFound:
            raise SourceError(f"{self.reference}: no such image in the Docker daemon at {daemon_address()}") from None
        except docker.errors.DockerException as exc:
            raise SourceError(f"{self.reference}: the Docker daemon failed to inspect it ({_short(exc)})") from None

    def open_stream(self) -> SaveStream:
        """``docker save`` of the image, to be read once (``savestream.read_save_stream``)."""
        import docker.errors

        image = self.lookup()
        wanted = self.reference if ":" in self.reference.rsplit("/", 1)[-1] else f"{self.reference}:latest"
        try:
            chunks = image.save(named=True)
        except docker.errors.DockerException as exc:
            raise SourceError(f"{self.reference}: docker save failed ({_short(exc)})") from None
        return SaveStream(
            self.reference,
            io.BufferedReader(_ChunkReader(chunks, self.reference), 1 << 20),
            wanted,
            int(image.attrs.get("Size") or 0),
            len(image.attrs.get("RootFS", {}).get("Layers") or []),
        )


def _short(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
