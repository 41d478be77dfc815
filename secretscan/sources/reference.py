"""Image references as Docker names them: ``[REGISTRY/]REPOSITORY[:TAG][@DIGEST]``.

Docker Hub's defaults are applied here, once: no registry means ``docker.io``, a one-part name
means ``library/NAME``, no tag and no digest means ``latest``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass

from secretscan.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_TRANSPORT_LIKE = re.compile(r"[a-z][a-z-]{0,39}")


STDIN_REFERENCES = ("-", "docker-archive:-", "oci-archive:-")
"""References that read the archive from standard input: ``docker save IMAGE | secretscan scan -``."""
STDIN_HINT = "pipe an archive: docker save IMAGE | secretscan scan -"
STDIN_IS_A_TERMINAL = f"standard input is a terminal; {STDIN_HINT}"


def reads_stdin(reference: str) -> bool:
    """Whether ``reference`` names standard input. A file called ``-`` is ``./-``, as for tar and cat."""
    return reference in STDIN_REFERENCES


def unknown_transport(reference: str, transports: Collection[str]) -> str | None:
    """A one-line complaint when ``reference`` starts with what reads as a mistyped transport
    (``docker-archve:app.tar``, ``dokcer://ghcr.io/x``, ``https://ghcr.io/x``), else None.

    Without it such a reference would pass as a Docker Hub name (``docker-archve`` tagged
    ``app.tar``) and end as a registry lookup. A prefix counts when ``://`` follows it, or when it
    is within a typo or two of a transport's name; an image actually named so is written
    ``docker://NAME:TAG``."""
    prefix, sep, rest = reference.partition(":")
    if not sep or prefix in transports or not _TRANSPORT_LIKE.fullmatch(prefix):
        return None
    close = difflib.get_close_matches(prefix, sorted(transports), n=1, cutoff=0.8)
    if close:
        return f"unknown transport {prefix!r} (did you mean {close[0]}?)"
    if rest.startswith("//"):
        known = ", ".join(f"{t}:" for t in sorted(transports))
        return f"unknown transport {prefix!r} (known: {known}; a registry image is docker://HOST/REPO:TAG)"
    return None


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    """As the user names it: ``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``."""
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise UsageError(f"{text}: the digest must be sha256:<64 hex digits>")
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.match(tag):
                raise UsageError(f"{text}: invalid tag {tag!r}")
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            registry, repository = first, remainder
        else:
            registry, repository = DOCKER_HUB, rest
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not _REPO.match(repository):
            raise UsageError(f"{text}: invalid repository name {repository!r}")
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, repository, tag, digest)

    @property
    def api_host(self) -> str:
        """Where the registry API answers (Docker Hub's API host differs from its name)."""
        return DOCKER_HUB_API if self.registry in (DOCKER_HUB, "index.docker.io") else self.registry

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
