"""A keyed-hash index of the values stored in Vault KV v2, every version.

Values are read, hashed with HMAC under a key made for this process (never stored, never sent),
and dropped at once: the index holds only (hash -> where) pairs. A found secret is compared by
the same HMAC, so no Vault value is ever kept, logged or compared in the clear beyond the read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from secretscan.vault.connect import KvLocation, VaultError

MAX_SECRETS = 20_000
MAX_VERSIONS = 100
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class VaultRef:
    path: str
    """``mount/path#key``."""
    version: int
    current_version: int

    @property
    def current(self) -> bool:
        return self.version == self.current_version


@dataclass
class VaultIndex:
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    refs: dict[bytes, list[VaultRef]] = field(default_factory=dict)
    secrets_read: int = 0
    truncated: bool = False

    def digest(self, value: str) -> bytes:
        return hmac.new(self.key, value.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def add(self, value: str, ref: VaultRef) -> None:
        for candidate in {value, value.strip()}:
            if candidate:
                self.refs.setdefault(self.digest(candidate), []).append(ref)

    def lookup(self, value: str) -> list[VaultRef]:
        found = {r for v in {value, value.strip()} for r in self.refs.get(self.digest(v), ())}
        return sorted(found, key=lambda r: (not r.current, r.path, -r.version))


def build_index(client: Any, locations: Sequence[KvLocation]) -> VaultIndex:
    import hvac.exceptions
    import requests

    index = VaultIndex()
    for location in locations:
        try:
            for path in _walk(client, location.mount, location.prefix, 0):
                if index.secrets_read >= MAX_SECRETS:
                    index.truncated = True
                    return index
                _index_secret(client, location.mount, path, index)
                index.secrets_read += 1
        except hvac.exceptions.Forbidden:
            raise VaultError(
                f"Vault: permission denied reading {location} (the token needs read and list on "
                f"{location.mount}/data/* and {location.mount}/metadata/*)"
            ) from None
        except hvac.exceptions.VaultError as exc:
            raise VaultError(f"Vault: cannot read {location} ({type(exc).__name__})") from None
        except requests.exceptions.RequestException as exc:
            raise VaultError(f"Vault: unreachable while reading {location} ({type(exc).__name__})") from None
    return index


def _walk(client: Any, mount: str, folder: str, depth: int) -> Iterator[str]:
    import hvac.exceptions

    if depth > MAX_DEPTH:
        return
    try:
        keys = client.secrets.kv.v2.list_secrets(path=folder, mount_point=mount)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        if folder and depth == 0:  # the prefix may name a secret rather than a folder
            yield folder
        return
    for key in keys:
        child = f"{folder}/{key}".strip("/") if folder else str(key).strip("/")
        if str(key).endswith("/"):
            yield from _walk(client, mount, child, depth + 1)
        else:
            yield child


def _index_secret(client: Any, mount: str, path: str, index: VaultIndex) -> None:
    import hvac.exceptions

    try:
        meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)["data"]
    except hvac.exceptions.InvalidPath:
        return
    current = int(meta.get("current_version") or 0)
    versions = meta.get("versions") or {}
    live = sorted(
        (int(v) for v, info in versions.items() if not info.get("destroyed") and not info.get("deletion_time")),
        reverse=True,
    )[:MAX_VERSIONS]
    for version in live:
        try:
            data = (
                client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=mount, version=version, raise_on_deleted_version=True
                )["data"]["data"]
                or {}
            )
        except hvac.exceptions.InvalidPath:
            continue
        for key, value in data.items():
            text = value if isinstance(value, str) else json.dumps(value)
            index.add(text, VaultRef(f"{mount}/{path}#{key}", version, current))
        del data
