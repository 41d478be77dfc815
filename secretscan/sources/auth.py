"""Registry credentials from where users already keep them, never from argv.

Order (the first that knows the registry wins): the ``--username`` + ``--password-stdin`` pair;
``SECRETSCAN_REGISTRY_USERNAME`` / ``SECRETSCAN_REGISTRY_PASSWORD``; ``REGISTRY_AUTH_FILE``
(podman/skopeo); ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` (``auths``,
``credHelpers``, ``credsStore`` through ``docker-credential-*`` helpers); Amazon ECR through boto3
for ECR hosts. Nothing found means anonymous access.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from secretscan.errors import ConfigError, SourceError

logger = logging.getLogger(__name__)

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
HELPER_TIMEOUT_SECONDS = 30
_HUB_KEYS = ("docker.io", "index.docker.io", "https://index.docker.io/v1/", "registry-1.docker.io")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    identity_token: bool = False
    """``password`` is an OAuth2 refresh token (``identitytoken`` in docker config)."""
    origin: str = ""
    """Where they came from, for messages (never the values)."""


class Keychain(Protocol):
    def resolve(self, registry: str) -> Credentials | None: ...


@dataclass(frozen=True)
class StaticKeychain:
    """One set of credentials for every registry of the run (``--username`` / env)."""

    credentials: Credentials

    def resolve(self, registry: str) -> Credentials | None:
        return self.credentials


@dataclass(frozen=True)
class DockerConfigKeychain:
    """A docker ``config.json``-shaped file (also podman's auth.json)."""

    path: Path

    def resolve(self, registry: str) -> Credentials | None:
        if not self.path.is_file():
            return None
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: cannot read registry credentials ({type(exc).__name__})") from None
        if not isinstance(doc, dict):
            return None
        keys = _keys_for(registry)
        helpers: dict[str, Any] = doc["credHelpers"] if isinstance(doc.get("credHelpers"), dict) else {}
        for key in keys:
            if key in helpers:
                return _from_helper(str(helpers[key]), key, self.path)
        auths: dict[str, Any] = doc["auths"] if isinstance(doc.get("auths"), dict) else {}
        for key, entry in auths.items():
            if _normal(key) in keys and isinstance(entry, dict):
                creds = _from_auth_entry(entry, f"{self.path} auths[{key}]")
                if creds:
                    return creds
        if doc.get("credsStore"):
            return _from_helper(
                str(doc["credsStore"]), keys[0] if registry not in _HUB_KEYS else _HUB_KEYS[2], self.path
            )
        return None


@dataclass(frozen=True)
class EcrKeychain:
    """Amazon ECR: a 12-hour registry password from ``ecr:GetAuthorizationToken`` (boto3, with the
    usual AWS credential chain; ``AWS_ENDPOINT_URL_ECR`` points it elsewhere)."""

    extra_hosts: tuple[str, ...] = ()
    """Registries to treat as ECR although their name does not say so (PrivateLink, proxies)."""
    region: str | None = None

    def resolve(self, registry: str) -> Credentials | None:
        match = ECR_HOST.match(registry)
        if not match and registry not in self.extra_hosts:
            return None
        import boto3
        import botocore.exceptions

        region = match.group(2) if match else self.region
        try:
            client = boto3.client("ecr", region_name=region)
            kwargs: dict[str, Any] = {"registryIds": [match.group(1)]} if match else {}
            data = client.get_authorization_token(**kwargs)["authorizationData"][0]
            user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError, ValueError) as exc:
            raise SourceError(
                f"{registry}: cannot get an ECR authorization token ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
        return Credentials(user, password, origin="Amazon ECR GetAuthorizationToken")


@dataclass(frozen=True)
class MultiKeychain:
    keychains: Sequence[Keychain]

    def resolve(self, registry: str) -> Credentials | None:
        for keychain in self.keychains:
            creds = keychain.resolve(registry)
            if creds is not None:
                return creds
        return None


def default_keychain(
    explicit: Credentials | None = None,
    environ: Mapping[str, str] = os.environ,
    ecr_hosts: Sequence[str] = (),
) -> MultiKeychain:
    chain: list[Keychain] = []
    if explicit is not None:
        chain.append(StaticKeychain(explicit))
    user, password = environ.get("SECRETSCAN_REGISTRY_USERNAME"), environ.get("SECRETSCAN_REGISTRY_PASSWORD")
    if user and password:
        chain.append(StaticKeychain(Credentials(user, password, origin="SECRETSCAN_REGISTRY_* environment")))
    if environ.get("REGISTRY_AUTH_FILE"):
        chain.append(DockerConfigKeychain(Path(environ["REGISTRY_AUTH_FILE"])))
    docker_dir = Path(environ["DOCKER_CONFIG"]) if environ.get("DOCKER_CONFIG") else Path.home() / ".docker"
    chain.append(DockerConfigKeychain(docker_dir / "config.json"))
    chain.append(EcrKeychain(tuple(ecr_hosts), environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")))
    return MultiKeychain(chain)


def _normal(key: str) -> str:
    """``https://ghcr.io/v1/`` -> ``ghcr.io``: config keys may be URLs."""
    key = re.sub(r"^https?://", "", key)
    return key.split("/", 1)[0] if key not in _HUB_KEYS else key


def _keys_for(registry: str) -> list[str]:
    return list(_HUB_KEYS) if registry in _HUB_KEYS else [registry]


def _from_auth_entry(entry: dict[str, Any], origin: str) -> Credentials | None:
    if entry.get("identitytoken"):
        user = str(entry.get("username") or "<token>")
        return Credentials(user, str(entry["identitytoken"]), identity_token=True, origin=origin)
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(str(entry["auth"])).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"{origin}: the auth field is not base64 user:password") from None
        if sep:
            return Credentials(user, password, origin=origin)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]), origin=origin)
    return None


def _from_helper(helper: str, server: str, config: Path) -> Credentials | None:
    """``docker-credential-HELPER get`` with the server on stdin, per the credential-helper protocol."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", helper):
        raise ConfigError(f"{config}: invalid credential helper name {helper!r}")
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise SourceError(
            f"{server}: credential helper docker-credential-{helper} (named in {config}) is not installed"
        )
    try:
        done = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(
            f"{server}: credential helper docker-credential-{helper} failed ({type(exc).__name__})"
        ) from None
    if done.returncode != 0:
        if b"credentials not found" in done.stdout.lower() + done.stderr.lower():
            return None
        raise SourceError(f"{server}: credential helper docker-credential-{helper} exited {done.returncode}")
    try:
        doc = json.loads(done.stdout)
        user, secret = str(doc["Username"]), str(doc["Secret"])
    except (ValueError, KeyError, TypeError):
        raise SourceError(f"{server}: credential helper docker-credential-{helper} gave an unreadable answer") from None
    if user == "<token>":
        return Credentials(user, secret, identity_token=True, origin=f"docker-credential-{helper}")
    return Credentials(user, secret, origin=f"docker-credential-{helper}")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""
