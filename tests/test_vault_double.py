"""The Vault HTTP API double (vault_double.py) answers the real `hvac` client as Vault does.

Every secret-like value here (tokens aside, which the double mints) is made at
run time with `secrets.token_urlsafe`.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
from vault_double import ACL_DENIED, INVALID_TOKEN, VaultDouble


@pytest.fixture
def vault() -> Iterator[VaultDouble]:
    with VaultDouble() as v:
        yield v


def client(vault: VaultDouble, token: str | None = None, namespace: str | None = None) -> hvac.Client:
    return hvac.Client(url=vault.addr, token=token if token is not None else vault.root_token, namespace=namespace)


def value() -> str:
    return secrets.token_urlsafe(24)


def raw(
    vault: VaultDouble,
    method: str,
    path: str,
    token: str | None = None,
    *,
    json: Any = None,
    data: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """A plain HTTP request, to see Vault's status codes and bodies as they are on the wire."""
    sent = {"X-Vault-Token": token} if token else {}
    sent.update(headers or {})
    return requests.request(method, vault.addr + path, headers=sent, json=json, data=data, timeout=10)


# --------------------------------------------------------------------------- server, envelope, errors


def test_health_is_unauthenticated_and_mounts_show_kv_v2(vault: VaultDouble) -> None:
    health = client(vault, token="").sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False and health["standby"] is False
    assert raw(vault, "HEAD", "/v1/sys/health").status_code == 200

    mounts = client(vault).sys.list_mounted_secrets_engines()
    assert mounts["data"]["secret/"]["type"] == "kv"
    assert mounts["data"]["secret/"]["options"] == {"version": "2"}
    assert mounts["secret/"] == mounts["data"]["secret/"]  # Vault repeats sys/mounts data at the top level
    assert vault.requests[0]["accessor"] is None


def test_envelope_and_error_bodies_match_vault(vault: VaultDouble) -> None:
    r = raw(vault, "GET", "/v1/auth/token/lookup-self", vault.root_token)
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) >= {
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    }
    assert body["data"]["policies"] == ["root"] and body["data"]["path"] == "auth/token/root"
    assert body["data"]["expire_time"] is None and body["data"]["ttl"] == 0

    # No token: plain "permission denied"; an unknown token: Vault 1.17's invalid-token body.
    assert raw(vault, "GET", "/v1/secret/data/x").json() == {"errors": ["permission denied"]}
    r = raw(vault, "GET", "/v1/secret/data/x", "hvs." + value())
    assert (r.status_code, r.json()) == (403, {"errors": [INVALID_TOKEN]})

    # Unmounted path: 404 "no handler for route" for root, 403 for a token no policy lets through.
    r = raw(vault, "GET", "/v1/nowhere/x", vault.root_token)
    assert (r.status_code, r.json()) == (404, {"errors": ['no handler for route "nowhere/x". route entry not found.']})
    reader = vault.create_token(["nobody"])
    r = raw(vault, "GET", "/v1/nowhere/x", reader)
    assert (r.status_code, r.json()) == (403, {"errors": [ACL_DENIED]})

    # A KV v2 mount answers a KV v1-style path with 404 and Vault's warning in the envelope.
    r = raw(vault, "GET", "/v1/secret/app", vault.root_token)
    assert r.status_code == 404 and r.json()["data"] is None
    assert r.json()["warnings"][0].startswith("Invalid path for a versioned K/V secrets engine.")
    assert "'vault kv get'" in r.json()["warnings"][0]

    # Missing data: 404 with an empty errors list.
    r = raw(vault, "GET", "/v1/secret/data/missing", vault.root_token)
    assert (r.status_code, r.json()) == (404, {"errors": []})
    r = raw(vault, "POST", "/v1/secret/data/dir/", vault.root_token, json={"data": {}})
    assert (r.status_code, r.json()) == (400, {"errors": ["cannot write to a path ending in '/'"]})


# --------------------------------------------------------------------------- tokens


def test_token_create_lookup_revoke(vault: VaultDouble) -> None:
    root = client(vault)
    vault.set_policy("reader", {"secret/data/*": ["read"]})
    created = root.auth.token.create(policies=["reader"], ttl="1h", meta={"team": "ci"}, display_name="ci job")
    auth = created["auth"]
    assert auth["policies"] == ["default", "reader"] and auth["token_policies"] == ["default", "reader"]
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True and auth["orphan"] is False
    assert auth["token_type"] == "service" and auth["metadata"] == {"team": "ci"}
    assert auth["client_token"].startswith("hvs.") and auth["accessor"]
    assert created["warnings"] is None
    token = auth["client_token"]

    own = client(vault, token).auth.token.lookup_self()["data"]
    assert own["id"] == token and own["accessor"] == auth["accessor"]
    assert own["policies"] == ["default", "reader"] and own["display_name"] == "token-ci-job"
    assert own["meta"] == {"team": "ci"} and own["path"] == "auth/token/create" and own["type"] == "service"
    assert own["creation_ttl"] == 3600 and 3590 <= own["ttl"] <= 3600 and own["orphan"] is False
    assert own["expire_time"].endswith("Z") and own["issue_time"].endswith("Z") and own["num_uses"] == 0
    assert own["entity_id"] == "" and own["explicit_max_ttl"] == 0 and own["renewable"] is True

    looked = root.auth.token.lookup(token)["data"]
    assert looked["accessor"] == auth["accessor"] and looked["id"] == token

    # A policy naming no existing policy is still assigned, with Vault's warning.
    warned = root.auth.token.create(policies=["ghost"], ttl="10m")
    assert warned["warnings"] == ['Policy "ghost" does not exist']

    root.auth.token.revoke(token)
    with pytest.raises(hvac.exceptions.Forbidden) as denied:
        client(vault, token).auth.token.lookup_self()
    assert denied.value.errors == [INVALID_TOKEN]
    assert client(vault, token).is_authenticated() is False
    with pytest.raises(hvac.exceptions.Forbidden) as bad:
        root.auth.token.lookup(token)
    assert bad.value.errors == ["bad token"]
    vault.revoke(token)  # revoking twice, like auth/token/revoke, is not an error


def test_token_policies_must_be_a_subset_unless_sudo(vault: VaultDouble) -> None:
    vault.set_policy("minter", {"auth/token/create": ["update"]})
    vault.set_policy("reader", {"secret/data/*": ["read"]})
    vault.set_policy("writer", {"secret/data/*": ["create", "update"]})
    parent = client(vault, vault.create_token(["minter", "reader"]))

    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        parent.auth.token.create(policies=["writer"])
    assert e.value.errors == ["child policies must be subset of parent"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        parent.auth.token.create(policies=["reader"], no_parent=True)
    assert e.value.errors == ["root or sudo privileges required to create orphan token"]

    child = parent.auth.token.create(policies=["reader"], ttl="5m")["auth"]
    assert child["policies"] == ["default", "reader"] and child["lease_duration"] == 300
    inherited = parent.auth.token.create(ttl="5m")["auth"]
    assert inherited["policies"] == ["default", "minter", "reader"]

    vault.set_policy("minter", {"auth/token/create": ["update", "sudo"]})
    assert parent.auth.token.create(policies=["writer"], ttl="5m")["auth"]["policies"] == ["default", "writer"]


def test_revoking_a_parent_revokes_its_children_but_not_orphans(vault: VaultDouble) -> None:
    vault.set_policy("minter", {"auth/token/create": ["update"], "auth/token/create-orphan": ["update"]})
    parent_token = client(vault).auth.token.create(policies=["minter"], ttl="1h")["auth"]["client_token"]
    parent = client(vault, parent_token)
    child = parent.auth.token.create(ttl="10m")["auth"]["client_token"]
    orphan = parent.auth.token.create_orphan(ttl="10m")["auth"]["client_token"]
    assert client(vault, orphan).auth.token.lookup_self()["data"]["orphan"] is True

    parent.auth.token.revoke_self()
    assert client(vault, child).is_authenticated() is False
    assert client(vault, orphan).is_authenticated() is True


def test_token_ttl_renewal_and_use_limits(vault: VaultDouble) -> None:
    short = vault.create_token(["default"], ttl="60s")
    c = client(vault, short)
    renewed = c.auth.token.renew_self(increment="2m")["auth"]
    assert renewed["lease_duration"] == 120 and renewed["client_token"] == short
    assert "last_renewal_time" in c.auth.token.lookup_self()["data"]
    vault.advance_time(121)
    with pytest.raises(hvac.exceptions.Forbidden):
        c.auth.token.lookup_self()

    fixed = vault.create_token(["default"], renewable=False)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client(vault, fixed).auth.token.renew_self()
    assert e.value.errors == ["lease is not renewable"]

    limited = client(vault, vault.create_token(["default"], num_uses=2))
    assert limited.auth.token.lookup_self()["data"]["num_uses"] == 1
    limited.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.auth.token.lookup_self()


# --------------------------------------------------------------------------- KV v2


def test_kv_v2_versions_list_and_metadata(vault: VaultDouble) -> None:
    kv = client(vault).secrets.kv.v2
    first, second = value(), value()
    written = kv.create_or_update_secret("app/db", secret={"password": first})["data"]
    assert written["version"] == 1 and written["destroyed"] is False and written["deletion_time"] == ""
    kv.create_or_update_secret("app/db", secret={"password": second})
    vault.put_secret("secret", "app/api", {"key": value()})
    vault.put_secret("secret", "top", {"k": value()})

    latest = kv.read_secret_version("app/db", raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"password": second} and latest["metadata"]["version"] == 2
    older = kv.read_secret_version("app/db", version=1, raise_on_deleted_version=True)["data"]
    assert older["data"] == {"password": first} and older["metadata"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("app/db", version=7, raise_on_deleted_version=True)

    assert kv.list_secrets("")["data"]["keys"] == ["app/", "top"]
    assert kv.list_secrets("app")["data"]["keys"] == ["api", "db"]
    assert raw(vault, "GET", "/v1/secret/metadata/app?list=true", vault.root_token).json()["data"]["keys"] == [
        "api",
        "db",
    ]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets("nothing-here")

    meta = kv.read_secret_metadata("app/db")["data"]
    assert meta["current_version"] == 2 and meta["oldest_version"] == 0 and meta["max_versions"] == 0
    assert meta["cas_required"] is False and meta["delete_version_after"] == "0s"
    assert set(meta["versions"]) == {"1", "2"}
    assert meta["versions"]["1"] == {
        "created_time": meta["versions"]["1"]["created_time"],
        "deletion_time": "",
        "destroyed": False,
    }


@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter:DeprecationWarning")  # hvac's own patch()
def test_kv_v2_check_and_set(vault: VaultDouble) -> None:
    kv = client(vault).secrets.kv.v2
    assert kv.create_or_update_secret("cas/item", secret={"v": value()}, cas=0)["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        kv.create_or_update_secret("cas/item", secret={"v": value()}, cas=0)
    assert e.value.errors == ["check-and-set parameter did not match the current version"]
    assert kv.create_or_update_secret("cas/item", secret={"v": value()}, cas=1)["data"]["version"] == 2

    kv.configure(max_versions=2, cas_required=True)
    assert kv.read_configuration()["data"] == {"cas_required": True, "delete_version_after": "0s", "max_versions": 2}
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        kv.create_or_update_secret("cas/item", secret={"v": value()})
    assert e.value.errors == ["check-and-set parameter required for this call"]

    kv.create_or_update_secret("cas/item", secret={"v": value()}, cas=2)
    meta = kv.read_secret_metadata("cas/item")["data"]
    assert meta["current_version"] == 3 and meta["oldest_version"] == 2 and sorted(meta["versions"]) == ["2", "3"]

    patched = value()
    kv.patch("cas/item", secret={"extra": patched})
    latest = kv.read_secret_version("cas/item", raise_on_deleted_version=True)["data"]
    assert latest["data"]["extra"] == patched and latest["metadata"]["version"] == 4


def test_kv_v2_http_patch_needs_merge_patch_and_the_patch_capability(vault: VaultDouble) -> None:
    vault.put_secret("secret", "p/item", {"a": value(), "b": value()})
    url = "/v1/secret/data/p/item"
    r = raw(vault, "PATCH", url, vault.root_token, json={"data": {"a": None}})
    assert r.status_code == 415
    patch = {"Content-Type": "application/merge-patch+json"}
    new = value()
    r = raw(vault, "PATCH", url, vault.root_token, data=json.dumps({"data": {"a": None, "c": new}}), headers=patch)
    assert r.status_code == 200 and r.json()["data"]["version"] == 2
    data = raw(vault, "GET", url, vault.root_token).json()["data"]["data"]
    assert set(data) == {"b", "c"} and data["c"] == new

    vault.set_policy("updater", {"secret/data/p/*": ["read", "update"]})
    r = raw(vault, "PATCH", url, vault.create_token(["updater"]), data=json.dumps({"data": {"d": 1}}), headers=patch)
    assert r.status_code == 403


def test_kv_v2_delete_undelete_destroy(vault: VaultDouble) -> None:
    kv = client(vault).secrets.kv.v2
    for _ in range(3):
        kv.create_or_update_secret("life/cycle", secret={"v": value()})

    kv.delete_latest_version_of_secret("life/cycle")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("life/cycle", raise_on_deleted_version=True)
    # Vault answers 404 but still sends the metadata of a deleted version.
    deleted = kv.read_secret_version("life/cycle", raise_on_deleted_version=False)["data"]
    assert deleted["data"] is None and deleted["metadata"]["version"] == 3
    assert deleted["metadata"]["deletion_time"] != ""

    kv.delete_secret_versions("life/cycle", versions=[1])
    kv.undelete_secret_versions("life/cycle", versions=[3])
    assert kv.read_secret_version("life/cycle", raise_on_deleted_version=True)["data"]["metadata"]["version"] == 3
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("life/cycle", version=1, raise_on_deleted_version=True)

    kv.destroy_secret_versions("life/cycle", versions=[2])
    with pytest.raises(hvac.exceptions.InvalidPath) as gone:
        kv.read_secret_version("life/cycle", version=2, raise_on_deleted_version=False)
    assert gone.value.json["data"]["metadata"]["destroyed"] is True
    versions = kv.read_secret_metadata("life/cycle")["data"]["versions"]
    assert versions["1"]["deletion_time"] != "" and versions["2"]["destroyed"] is True
    assert versions["3"]["deletion_time"] == ""

    r = raw(vault, "POST", "/v1/secret/delete/life/cycle", vault.root_token, json={"versions": []})
    assert (r.status_code, r.json()) == (400, {"errors": ["No version number provided"]})

    kv.delete_metadata_and_all_versions("life/cycle")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("life/cycle")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets("life")


# --------------------------------------------------------------------------- ACL


def test_read_only_policy_is_forbidden_to_write(vault: VaultDouble) -> None:
    vault.set_policy("app-ro", {"secret/data/app/*": ["read"], "secret/metadata/*": ["list", "read"]})
    vault.put_secret("secret", "app/db", {"password": value()})
    vault.put_secret("secret", "other/db", {"password": value()})
    kv = client(vault, vault.create_token(["app-ro"])).secrets.kv.v2

    assert kv.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["metadata"]["version"] == 1
    assert kv.list_secrets("")["data"]["keys"] == ["app/", "other/"]
    assert kv.read_secret_metadata("other/db")["data"]["current_version"] == 1
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        kv.create_or_update_secret("app/db", secret={"password": value()})
    assert e.value.errors == [ACL_DENIED]
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version("other/db", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.delete_metadata_and_all_versions("app/db")


def test_create_and_update_are_separate_capabilities(vault: VaultDouble) -> None:
    vault.set_policy("create-only", {"secret/data/drop/*": ["create"]})
    kv = client(vault, vault.create_token(["create-only"])).secrets.kv.v2
    kv.create_or_update_secret("drop/box", secret={"v": value()})
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret("drop/box", secret={"v": value()})


def test_acl_deny_wins_and_segment_wildcards_match(vault: VaultDouble) -> None:
    vault.set_policy("broad", {"secret/data/*": ["read"]})
    vault.set_policy("fence", {"secret/data/app/private": ["deny"], "secret/data/+/config": ["read", "update"]})
    for path in ("app/private", "app/public", "svc/config"):
        vault.put_secret("secret", path, {"v": value()})
    kv = client(vault, vault.create_token(["broad", "fence"])).secrets.kv.v2

    kv.read_secret_version("app/public", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version("app/private", raise_on_deleted_version=True)
    # Both wildcards start at the same place, and a path ending in * ranks lower: "+/config" wins.
    kv.create_or_update_secret("svc/config", secret={"v": value()})
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret("app/public", secret={"v": value()})


# --------------------------------------------------------------------------- auth methods


def test_approle_login(vault: VaultDouble) -> None:
    vault.set_policy("ci", {"secret/data/ci/*": ["read"]})
    vault.put_secret("secret", "ci/deploy", {"key": value()})
    role_id, secret_id = vault.enable_approle("ci-runner", ["ci"], token_ttl="20m")

    c = hvac.Client(url=vault.addr)
    login = c.auth.approle.login(role_id=role_id, secret_id=secret_id)
    auth = login["auth"]
    assert auth["policies"] == ["ci", "default"] and auth["metadata"] == {"role_name": "ci-runner"}
    assert auth["lease_duration"] == 1200 and auth["renewable"] is True and auth["orphan"] is True
    assert auth["entity_id"] and auth["accessor"] and c.token == auth["client_token"]
    assert c.secrets.kv.v2.read_secret_version("ci/deploy", raise_on_deleted_version=True)["data"]["data"]
    assert c.auth.token.lookup_self()["data"]["path"] == "auth/approle/login"

    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        hvac.Client(url=vault.addr).auth.approle.login(role_id=role_id, secret_id=value())
    assert e.value.errors == ["invalid role or secret ID"]


def _service_account_jwt(namespace: str, name: str) -> str:
    def b64(obj: Mapping[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": secrets.token_hex(8)}},
    }
    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.{secrets.token_urlsafe(32)}"


def test_kubernetes_login(vault: VaultDouble) -> None:
    vault.set_policy("scanner", {"secret/data/*": ["read"]})
    jwt = _service_account_jwt("security", "secretscan")
    vault.enable_kubernetes("scanner", jwt, ["scanner"], token_ttl="1h")

    c = hvac.Client(url=vault.addr)
    auth = c.auth.kubernetes.login(role="scanner", jwt=jwt)["auth"]
    assert auth["policies"] == ["default", "scanner"] and auth["lease_duration"] == 3600
    assert auth["metadata"]["role"] == "scanner"
    assert auth["metadata"]["service_account_name"] == "secretscan"
    assert auth["metadata"]["service_account_namespace"] == "security"
    assert c.auth.token.lookup_self()["data"]["display_name"] == "kubernetes-security-secretscan"

    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.addr).auth.kubernetes.login(role="scanner", jwt=_service_account_jwt("x", "y"))
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        hvac.Client(url=vault.addr).auth.kubernetes.login(role="nope", jwt=jwt)
    assert e.value.errors == ['invalid role name "nope"']


def test_logins_need_the_auth_method_enabled_at_that_mount(vault: VaultDouble) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault.addr).auth.approle.login(role_id=value(), secret_id=value())

    role_id, secret_id = vault.enable_approle("ci", ["default"], mount="ci-approle")
    c = hvac.Client(url=vault.addr)
    c.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point="ci-approle")
    own = c.auth.token.lookup_self()["data"]
    assert own["path"] == "auth/ci-approle/login" and own["display_name"] == "ci-approle"
    with pytest.raises(hvac.exceptions.Forbidden):  # nothing is mounted at auth/approle/
        hvac.Client(url=vault.addr).auth.approle.login(role_id=role_id, secret_id=secret_id)


# --------------------------------------------------------------------------- namespaces


def test_namespaces_isolate_data_tokens_and_policies() -> None:
    with VaultDouble(namespaces=True) as vault:
        vault.create_namespace("team-a")
        vault.create_namespace("team-b")
        secret = value()
        vault.put_secret("secret", "app/db", {"password": secret}, namespace="team-a")

        in_a = client(vault, namespace="team-a").secrets.kv.v2
        assert in_a.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"] == {"password": secret}
        for elsewhere in (client(vault, namespace="team-b"), client(vault)):
            with pytest.raises(hvac.exceptions.InvalidPath):
                elsewhere.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)

        # A team-a token, with a team-a policy, works in team-a only.
        vault.set_policy("app", {"secret/data/app/*": ["read"]}, namespace="team-a")
        token = vault.create_token(["app"], namespace="team-a")
        client(vault, token, namespace="team-a").secrets.kv.v2.read_secret_version(
            "app/db", raise_on_deleted_version=True
        )
        for ns in ("team-b", None):
            with pytest.raises(hvac.exceptions.Forbidden):
                client(vault, token, namespace=ns).secrets.kv.v2.read_secret_version(
                    "app/db", raise_on_deleted_version=True
                )

        # The namespace can also lead the path, as Vault Enterprise allows.
        r = raw(vault, "GET", "/v1/team-a/secret/data/app/db", vault.root_token)
        assert r.status_code == 200 and r.json()["data"]["data"]["password"] == secret

        created = client(vault, namespace="team-b").auth.token.create(policies=["default"], ttl="5m")["auth"]
        own = client(vault, created["client_token"], namespace="team-b").auth.token.lookup_self()["data"]
        assert own["namespace_path"] == "team-b/"

        with pytest.raises(hvac.exceptions.InvalidPath):
            client(vault, namespace="no-such-team").secrets.kv.v2.read_secret_version(
                "app/db", raise_on_deleted_version=True
            )
        assert {e["namespace"] for e in vault.requests} >= {"team-a/", "team-b/", None}


# --------------------------------------------------------------------------- no leaks


def test_request_log_and_repr_never_hold_tokens_or_secret_values(vault: VaultDouble) -> None:
    secret = value()
    kv = client(vault).secrets.kv.v2
    kv.create_or_update_secret("leak/check", secret={"password": secret})
    kv.read_secret_version("leak/check", raise_on_deleted_version=True)
    child = client(vault).auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    client(vault, child).auth.token.lookup_self()

    dumped = json.dumps(vault.requests) + repr(vault)
    for sensitive in (secret, vault.root_token, child):
        assert sensitive not in dumped
    assert {e["accessor"] for e in vault.requests} >= {
        vault.token_accessor(vault.root_token),
        vault.token_accessor(child),
    }
    assert set(vault.requests[0]) == {"method", "path", "accessor", "namespace", "status"}
    assert vault.internal_errors == []
