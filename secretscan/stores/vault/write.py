"""Vault KV v2 as a migration destination: paths under ``--to MOUNT/PREFIX``, the ``vault kv put``
command, Vault Agent / operator injection, and writes with check-and-set."""

from __future__ import annotations

import hmac
import json
from typing import Any

from secretscan.models import SecretStore
from secretscan.stores.model import WriteAction, Written
from secretscan.stores.vault.connect import KvLocation, VaultError, VaultSettings, connect

VALUE_KEY = "value"


class VaultDestination:
    kind = SecretStore.VAULT

    def __init__(self, location: KvLocation, settings: VaultSettings) -> None:
        self.location = location
        self.settings = settings

    @property
    def root(self) -> str:
        return str(self.location)

    def describe(self) -> str:
        return f"Vault KV v2 under `{self.location}`"

    def place(self, repository: str, name: str) -> str:
        return "/".join(p for p in (self.location.prefix, repository, name) if p)

    def ref(self, place: str) -> str:
        return f"{self.location.mount}/{place}#{VALUE_KEY}"

    def store_command(self, place: str) -> str:
        """Reads the value from stdin (``value=-``): it never appears on a command line."""
        return f"vault kv put -mount={self.location.mount} -cas=0 {place} {VALUE_KEY}=-"

    def runtime(self, place: str, variable: str) -> str:
        mount = self.location.mount
        return (
            f"Inject at run time from {mount}/{place}: Vault Agent template "
            f'(`{{{{ with secret "{mount}/data/{place}" }}}}{{{{ .Data.data.{VALUE_KEY} }}}}{{{{ end }}}}`) '
            f"or, on Kubernetes, the Vault Secrets Operator / External Secrets into env var {variable} or a file."
        )

    def plan_fields(self, place: str) -> dict[str, Any]:
        return {
            "mount": self.location.mount,
            "path": place,
            "kv_path": self.ref(place),
            "put_command": self.store_command(place),
        }

    def writer(self) -> VaultWriter:
        return VaultWriter(connect(self.settings), self.location.mount)


class VaultWriter:
    """Writes with check-and-set: create only if there is no current value; an existing equal value
    is left alone; a different one is a conflict unless forced. Every write names the version it
    follows (``cas``): 0 for a new path, else the path's latest version, which may be a deleted or
    destroyed one (that counts as no value: the new version goes on top)."""

    def __init__(self, client: Any, mount: str) -> None:
        self.client = client
        self.mount = mount

    def write(self, place: str, value: str, fingerprint: str, *, force: bool) -> Written:
        import hvac.exceptions
        import requests

        kv_path = f"{self.mount}/{place}#{VALUE_KEY}"
        try:
            current, version = self._read(place)
            if current is not None and _same(current, value):
                return Written(WriteAction.UNCHANGED, version)
            if current is not None and not force:
                return Written(
                    WriteAction.CONFLICT,
                    version,
                    f"{kv_path} already holds a different value (version {version}): left as is (--force overwrites it)",
                )
            answer = self.client.secrets.kv.v2.create_or_update_secret(
                path=place, mount_point=self.mount, secret={VALUE_KEY: value}, cas=version
            )
            action = WriteAction.OVERWRITTEN if current is not None else WriteAction.CREATED
            return Written(action, answer["data"]["version"])
        except hvac.exceptions.InvalidRequest:
            return Written(
                WriteAction.CONFLICT,
                problem=f"{kv_path}: another version was written since it was read (check-and-set failed): "
                "re-run to compare again",
            )
        except hvac.exceptions.Forbidden:
            return Written(
                WriteAction.DENIED,
                problem=f"{kv_path}: permission denied (the token needs create/update on {self.mount}/data/{place})",
            )
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            raise VaultError(f"Vault: writing {kv_path} failed ({type(exc).__name__})") from None

    def _read(self, place: str) -> tuple[str | None, int]:
        """(the current value, or None; the path's latest version, 0 when it was never written).

        A latest version that is deleted or destroyed has no value, but KV v2 still counts it: its
        404 answer carries its metadata, and the next write must name that version for check-and-set."""
        import hvac.exceptions

        try:
            answer = self.client.secrets.kv.v2.read_secret_version(
                path=place, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath as exc:
            return None, _version_of(exc.json)
        data = answer["data"]["data"] or {}
        value = data.get(VALUE_KEY)
        return (value if isinstance(value, str) else json.dumps(value)), int(answer["data"]["metadata"]["version"])


def _same(a: str, b: str) -> bool:
    """Equal, compared in constant time (both values are in memory already)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _version_of(answer: Any) -> int:
    """``data.metadata.version`` of a KV v2 answer, 0 when it has none (a path never written)."""
    data = answer.get("data") if isinstance(answer, dict) else None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return version if isinstance(version, int) and version > 0 else 0
