"""An authenticated hvac client, configured the way Vault users expect: ``VAULT_ADDR``,
``VAULT_TOKEN``, ``VAULT_NAMESPACE``, ``VAULT_CACERT`` (and ``VAULT_SKIP_VERIFY``), or OpenBao's
``BAO_*`` names for them, with token, AppRole (``VAULT_ROLE_ID`` / ``VAULT_SECRET_ID``) or
Kubernetes (service-account JWT) auth."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretscan.errors import ConfigError
from secretscan.origin import plain_http_refusal
from secretscan.stores.model import StoreError

DEFAULT_K8S_JWT = "/var/run/secrets/kubernetes.io/serviceaccount/token"
TIMEOUT_SECONDS = 30


class VaultError(StoreError):
    """Vault unreachable, authentication refused, permission denied: one line, no secret."""


@dataclass(frozen=True)
class KvLocation:
    mount: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str) -> KvLocation:
        mount, _, prefix = text.strip("/").partition("/")
        if not mount:
            raise ConfigError(f"vault kv location {text!r}: expected MOUNT or MOUNT/PREFIX")
        return cls(mount, prefix.strip("/"))

    def __str__(self) -> str:
        return f"{self.mount}/{self.prefix}" if self.prefix else self.mount


@dataclass(frozen=True)
class VaultSettings:
    addr: str | None = None
    namespace: str | None = None
    cacert: str | None = None
    auth: str = "token"
    """``token``, ``approle`` or ``kubernetes``."""
    role: str | None = None
    auth_mount: str | None = None
    jwt_path: str = DEFAULT_K8S_JWT
    kv: tuple[KvLocation, ...] = ()
    """Where to look for managed secrets (read-only)."""
    migrate_to: KvLocation = field(default_factory=lambda: KvLocation("secret", "secretscan"))
    """Where ``migrate`` proposes and writes new secrets."""

    @classmethod
    def from_config(cls, doc: Mapping[str, Any] | None) -> VaultSettings:
        doc = doc or {}
        unknown = set(doc) - {
            "addr",
            "namespace",
            "cacert",
            "auth",
            "role",
            "auth_mount",
            "jwt_path",
            "kv",
            "migrate_to",
        }
        if unknown:
            raise ConfigError(f"vault: unknown keys {sorted(unknown)}")
        auth = str(doc.get("auth", "token"))
        if auth not in ("token", "approle", "kubernetes"):
            raise ConfigError(f"vault.auth must be token, approle or kubernetes, not {auth!r}")
        return cls(
            addr=doc.get("addr"),
            namespace=doc.get("namespace"),
            cacert=doc.get("cacert"),
            auth=auth,
            role=doc.get("role"),
            auth_mount=doc.get("auth_mount"),
            jwt_path=str(doc.get("jwt_path") or DEFAULT_K8S_JWT),
            kv=tuple(KvLocation.parse(str(k)) for k in doc.get("kv") or ()),
            migrate_to=KvLocation.parse(str(doc["migrate_to"]))
            if doc.get("migrate_to")
            else KvLocation("secret", "secretscan"),
        )


def vault_env(environ: Mapping[str, str], name: str) -> str | None:
    """``VAULT_<name>``, else ``BAO_<name>``: OpenBao, which serves Vault's API, names its client
    settings so (``BAO_ADDR``, ``BAO_TOKEN``, ...); someone pointed at OpenBao has those set."""
    return environ.get(f"VAULT_{name}") or environ.get(f"BAO_{name}") or None


def connect(settings: VaultSettings, environ: Mapping[str, str] = os.environ) -> Any:
    import hvac
    import hvac.exceptions
    import requests

    addr = settings.addr or vault_env(environ, "ADDR")
    if not addr:
        raise VaultError("no Vault address: set VAULT_ADDR or BAO_ADDR (or vault.addr in secretscan.yaml)")
    refused = plain_http_refusal(addr, "a Vault token")
    if refused:
        raise VaultError(refused)
    verify: bool | str = settings.cacert or vault_env(environ, "CACERT") or True
    if (vault_env(environ, "SKIP_VERIFY") or "").lower() in ("1", "true"):
        verify = False
    namespace = settings.namespace or vault_env(environ, "NAMESPACE")
    client = hvac.Client(url=addr, namespace=namespace, verify=verify, timeout=TIMEOUT_SECONDS)
    where = f"Vault at {addr}" + (f" (namespace {namespace})" if namespace else "")
    try:
        if settings.auth == "token":
            token = vault_env(environ, "TOKEN") or _token_file()
            if not token:
                raise VaultError(
                    f"{where}: no token (set VAULT_TOKEN or BAO_TOKEN, or use vault.auth approle/kubernetes)"
                )
            client.token = token
            client.auth.token.lookup_self()
        elif settings.auth == "approle":
            role_id, secret_id = environ.get("VAULT_ROLE_ID"), environ.get("VAULT_SECRET_ID")
            if not role_id or not secret_id:
                raise VaultError(f"{where}: AppRole auth needs VAULT_ROLE_ID and VAULT_SECRET_ID in the environment")
            client.auth.approle.login(
                role_id=role_id, secret_id=secret_id, mount_point=settings.auth_mount or "approle"
            )
        else:
            if not settings.role:
                raise VaultError(f"{where}: Kubernetes auth needs vault.role")
            try:
                jwt = Path(environ.get("VAULT_K8S_JWT_PATH") or settings.jwt_path).read_text().strip()
            except OSError as exc:
                raise VaultError(f"{where}: cannot read the service-account token ({exc.strerror})") from None
            client.auth.kubernetes.login(role=settings.role, jwt=jwt, mount_point=settings.auth_mount or "kubernetes")
    except hvac.exceptions.Forbidden:
        raise VaultError(f"{where}: authentication refused ({settings.auth} auth): permission denied") from None
    except hvac.exceptions.VaultError as exc:
        raise VaultError(f"{where}: {settings.auth} auth failed ({type(exc).__name__})") from None
    except requests.exceptions.RequestException as exc:
        raise VaultError(f"{where}: unreachable ({type(exc).__name__})") from None
    return client


def _token_file() -> str | None:
    path = Path.home() / ".vault-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
