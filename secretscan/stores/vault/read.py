"""Vault KV v2 as a store to match against: every readable version of every secret under the
given mounts and prefixes, each key's value into the index (as a keyed fingerprint), and dropped.

Vault serves no value for a deleted or destroyed version, to any token: such a value cannot be
recognised (docs/vault.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from secretscan.models import SecretStore
from secretscan.stores.model import MAX_SECRETS, MAX_VERSIONS, Held, ManagedIndex
from secretscan.stores.vault.connect import VaultError, VaultSettings, connect

MAX_DEPTH = 32


class VaultStore:
    """``--vault``: the KV v2 locations of ``settings``, read with a client from ``connector``."""

    kind = SecretStore.VAULT

    def __init__(self, settings: VaultSettings, connector: Callable[[VaultSettings], Any] = connect) -> None:
        self.settings = settings
        self._connector = connector

    def read(self, index: ManagedIndex) -> None:
        import hvac.exceptions
        import requests

        if not self.settings.kv:
            raise VaultError("no KV locations to search (vault.kv in secretscan.yaml or --vault-kv)")
        client = self._connector(self.settings)
        for location in self.settings.kv:
            try:
                for path in _walk(client, location.mount, location.prefix, 0):
                    if index.secrets_read >= MAX_SECRETS:
                        index.truncated = True
                        return
                    _read_secret(client, location.mount, path, index)
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


def _read_secret(client: Any, mount: str, path: str, index: ManagedIndex) -> None:
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
    secret = f"{mount}/{path}"
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
            index.add(
                text,
                Held(secret, secret, str(key), str(version), version == current, str(current), order=float(version)),
            )
        del data
