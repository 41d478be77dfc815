"""Fixtures for the real servers in servers.py (loaded by conftest.py through pytest_plugins).

The registries and dockerd are session-scoped (started once, on first use,
and shared): give every test its own repository with `unique_repo`. The moto
server is session-scoped too, but `moto_endpoint` resets its state and sets
fake AWS credentials for each test. `moto_auth_endpoint` is a second moto, in
its own process, that enforces AWS request signing (for `--verify` tests).
OpenBao (`bao server -dev`, Vault's HTTP API) is session-scoped as well: `vault`
gives each test a KV v2 mount of its own on it, and VAULT_ADDR pointing there.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import openbao
import provider_fakes
import pytest
import servers
from openbao import OpenBaoServer, Vault
from servers import DockerInfo, RegistryInfo


def _registry(tmp_path_factory: pytest.TempPathFactory, auth: str) -> Iterator[RegistryInfo]:
    with servers.registry(tmp_path_factory.mktemp(f"registry-{auth}"), auth=auth) as info:
        yield info


@pytest.fixture(scope="session")
def registry_none(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryInfo]:
    """A registry with no auth."""
    yield from _registry(tmp_path_factory, "none")


@pytest.fixture(scope="session")
def registry_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryInfo]:
    """A registry with basic auth (bcrypt htpasswd): info.username / info.password."""
    yield from _registry(tmp_path_factory, "htpasswd")


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryInfo]:
    """A registry with token auth: info.realm is the issuer, info.issuer.requests its log."""
    yield from _registry(tmp_path_factory, "token")


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses, e.g. "t/test-push-works-1a2b3c"."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    return f"t/{name}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerInfo]:
    """A private dockerd (vfs, no network) on a unix socket: info.host for `docker -H`."""
    with servers.dockerd(tmp_path_factory.mktemp("dockerd")) as info:
        yield info


@pytest.fixture(scope="session")
def moto_session() -> Iterator[str]:
    """moto's server, shared by the session, without env changes (use `moto_endpoint`)."""
    with servers.moto_server(set_env=False) as endpoint:
        yield endpoint


@pytest.fixture
def moto_endpoint(moto_session: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto endpoint URL, reset for this test, with fake AWS credentials (and
    AWS_ENDPOINT_URL) in the environment for this test only."""
    servers.moto_reset(moto_session)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in servers.fake_aws_env(moto_session).items():
        monkeypatch.setenv(key, value)
    return moto_session


@pytest.fixture(scope="session")
def moto_auth_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server in its own process that checks every request's SigV4 signature
    (INITIAL_NO_AUTH_ACTION_COUNT=0), shared by the session (use `moto_auth_endpoint`)."""
    with provider_fakes.moto_auth_server(tmp_path_factory.mktemp("moto-auth")) as endpoint:
        yield endpoint


@pytest.fixture
def moto_auth_endpoint(moto_auth_session: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The auth-enforcing moto's endpoint URL, reset and enforcing for this test, with fake AWS
    credentials (which it rejects) and AWS_ENDPOINT_URL in the environment for this test only.

    Make keys it accepts with `provider_fakes.aws_keys(endpoint)`. Not the same moto as
    `moto_endpoint`: that one is in this process and never checks signatures.
    """
    servers.moto_reset(moto_auth_session)
    provider_fakes.moto_set_auth(moto_auth_session, enforce=True)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in servers.fake_aws_env(moto_auth_session).items():
        monkeypatch.setenv(key, value)
    return moto_auth_session


@pytest.fixture(scope="session")
def openbao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """OpenBao in dev mode, shared by the session (use `vault` for a test's own part of it)."""
    with openbao.openbao(tmp_path_factory.mktemp("openbao")) as server:
        yield server


@pytest.fixture
def vault(openbao_server: OpenBaoServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Vault:
    """A fresh KV v2 mount (`vault.mount`) on the session's OpenBao, with VAULT_ADDR pointing at it
    and every other VAULT_* / BAO_* variable removed for this test (set VAULT_TOKEN as needed)."""
    for name in list(os.environ):
        if name.startswith(("VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_ADDR", openbao_server.addr)
    return Vault(openbao_server, openbao.unique_tag(request.node.name))
