"""--vault, --verify of Vault tokens, and migrate plan/apply, against OpenBao (`bao server -dev`,
Vault's HTTP API; tests/openbao.py) through the real CLI and hvac. Kubernetes auth logs in against
the real OpenBao, which asks a small TokenReview API (tests/k8s_tokenreview.py) about the JWT.

Tokens are minted by OpenBao; other secret-shaped values come from the demo image or secretgen."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import secretgen
from conftest import REPO, fingerprint_of, scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive
from k8s_tokenreview import TokenReviewApi, tokenreview_api
from openbao import Vault
from registry_push import Pusher
from servers import RegistryInfo

DEMO = REPO / "fixtures" / "demo-image.tar"
DEMO_FINDINGS = 10


@pytest.fixture
def scanner(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> str:
    """A read-only token on the test's mount, as VAULT_TOKEN."""
    token = vault.token([vault.read_only()])
    monkeypatch.setenv("VAULT_TOKEN", token)
    return token


@pytest.fixture
def kubernetes_api(tmp_path: Path) -> Iterator[TokenReviewApi]:
    with tokenreview_api(tmp_path) as api:
        yield api


@pytest.fixture(scope="module")
def demo_secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """rule id -> value, read from the demo image at test time (nothing secret-shaped in this file)."""
    from secretscan.cli import main

    out = tmp_path_factory.mktemp("demo") / "demo.json"
    main(["scan", str(DEMO), "-q", "-f", "json", "--show-secrets", "-o", str(out)])
    return {f["rule_id"]: f["secret"] for f in json.loads(out.read_text())["findings"]}


def _by_rule(report: dict) -> dict[str, dict]:
    return {f["rule_id"]: f for f in report["findings"]}


def _image(tmp_path: Path, files: dict[str, str]) -> Path:
    image = tmp_path / "img.tar"
    spec = ImageSpec(steps=[Layer([Entry(p, d.encode()) for p, d in files.items()])], repo_tags=["team/app:1"])
    write_docker_archive(image, [spec])
    return image


# --------------------------------------------------------------------------- --vault


def test_vault_marks_exactly_the_managed_secrets(cli, vault: Vault, scanner: str, demo_secrets) -> None:
    stripe, npm = demo_secrets["stripe.secret-key"], demo_secrets["npm.access-token"]
    vault.put("payments/stripe", {"api_key": stripe, "note": "x"})
    vault.put("ci/npm", {"token": npm})
    vault.put("ci/npm", {"token": secretgen.npm_token()})  # rotated since: npm is a former value
    vault.put("teams/a/b/unrelated", {"password": secretgen.password()})
    report = scan_json(cli, DEMO, "--vault", "--vault-kv", vault.mount)
    found = _by_rule(report)
    assert found["stripe.secret-key"]["vault"] == {
        "status": "current",
        "path": f"{vault.mount}/payments/stripe#api_key",
        "version": 1,
        "current_version": 1,
    }
    assert found["stripe.secret-key"]["severity"] == "critical"
    assert (
        found["stripe.secret-key"]["title"]
        == f"live managed secret leaked — rotate {vault.mount}/payments/stripe#api_key"
    )
    assert found["npm.access-token"]["vault"] == {
        "status": "former",
        "path": f"{vault.mount}/ci/npm#token",
        "version": 1,
        "current_version": 2,
    }
    others = [f for rule, f in found.items() if rule not in ("stripe.secret-key", "npm.access-token")]
    assert others and all(f["vault"]["status"] == "unmanaged" for f in others)
    asked = vault.requests(scanner)
    assert asked and {r.operation for r in asked} <= {"read", "list"}, "matching must only read"

    # a prefix may name a secret rather than a folder
    text = cli("scan", DEMO, "--vault", "--vault-kv", f"{vault.mount}/payments/stripe", "-q").out
    assert f"vault: current {vault.mount}/payments/stripe#api_key" in text and stripe not in text


def test_vault_unreachable_or_denied_still_reports_the_findings(cli, vault: Vault, monkeypatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", vault.token(["default"]))  # no read on the mount
    denied = cli("scan", DEMO, "--vault", "--vault-kv", vault.mount, "-q", "-f", "json")
    assert denied.code == 2 and "permission denied" in denied.err
    assert len(denied.report["findings"]) == DEMO_FINDINGS
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")  # nothing listens on the discard port
    unreachable = cli("scan", DEMO, "--vault", "--vault-kv", vault.mount, "-q", "-f", "json")
    assert unreachable.code == 2 and "unreachable" in unreachable.err
    assert len(unreachable.report["findings"]) == DEMO_FINDINGS
    monkeypatch.setenv("VAULT_ADDR", "http://vault.example.com:8200")  # the token would cross a network in clear
    plain = cli("scan", DEMO, "--vault", "--vault-kv", vault.mount, "-q", "-f", "json")
    assert plain.code == 2 and len(plain.report["findings"]) == DEMO_FINDINGS
    assert (
        "refusing to send a Vault token to http://vault.example.com:8200: only https, or plain http to this "
        "machine (loopback)" in plain.err
    )


def test_values_only_in_deleted_or_destroyed_versions_are_unmanaged(
    cli, vault: Vault, scanner: str, demo_secrets
) -> None:
    """Vault serves no deleted or destroyed version's value, to any token: such a value cannot be
    recognised, and is reported (and planned) as unmanaged, as docs/vault.md says."""
    stripe, npm = demo_secrets["stripe.secret-key"], demo_secrets["npm.access-token"]
    vault.put("payments/stripe", {"api_key": stripe})
    vault.put("payments/stripe", {"api_key": secretgen.stripe_live_secret()})
    vault.delete("payments/stripe", versions=[1])
    vault.put("ci/npm", {"token": npm})
    vault.put("ci/npm", {"token": secretgen.npm_token()})
    vault.destroy("ci/npm", versions=[1])
    report = scan_json(cli, DEMO, "--vault", "--vault-kv", vault.mount)
    found = _by_rule(report)
    assert (
        found["stripe.secret-key"]["vault"]["status"] == "unmanaged"
        and found["stripe.secret-key"]["vault"]["path"] is None
    )
    assert found["npm.access-token"]["vault"]["status"] == "unmanaged"

    plan = cli(
        "migrate", "plan", DEMO, "--vault", "--vault-kv", vault.mount, "--to", f"{vault.mount}/new", "-f", "json"
    )
    planned = {item["rule_id"]: item["vault_status"] for item in json.loads(plan.out)["items"]}
    assert planned["stripe.secret-key"] == "unmanaged" and planned["npm.access-token"] == "unmanaged"

    vault.undelete("payments/stripe", versions=[1])  # served again: recognised again
    found = _by_rule(scan_json(cli, DEMO, "--vault", "--vault-kv", vault.mount))
    assert found["stripe.secret-key"]["vault"]["status"] == "former"


def test_vault_namespace_and_openbao_variable_names(cli, vault: Vault, monkeypatch, demo_secrets) -> None:
    team_a, team_b = vault.in_namespace("team-a"), vault.in_namespace("team-b")
    team_a.put("payments/stripe", {"api_key": demo_secrets["stripe.secret-key"]})
    team_b.put("ci/npm", {"token": demo_secrets["npm.access-token"]})
    token = team_a.token([team_a.read_only()])
    assert token.startswith("s.") and token.count(".") == 2, "a namespaced OpenBao token: s.<24>.<namespace id>"
    monkeypatch.delenv("VAULT_ADDR")
    monkeypatch.setenv("BAO_ADDR", vault.addr)
    monkeypatch.setenv("BAO_TOKEN", token)
    monkeypatch.setenv("BAO_NAMESPACE", str(team_a.namespace))
    found = _by_rule(scan_json(cli, DEMO, "--vault", "--vault-kv", "secret"))
    assert found["stripe.secret-key"]["vault"]["status"] == "current"
    assert found["npm.access-token"]["vault"]["status"] == "unmanaged", "team-b's secrets are not team-a's"
    asked = team_a.requests(token)
    assert asked and {r.namespace for r in asked} == {f"{team_a.namespace}/"}


def test_sweep_vault_compares_the_databases_fingerprints_and_report_db_shows_the_verdicts(
    cli, vault: Vault, scanner: str, registry_none: RegistryInfo, unique_repo: str, tmp_path: Path
) -> None:
    """A sweep's cached layer results hold fingerprints, not values: the values Vault holds are
    fingerprinted under the same key and compared with them, and the verdicts are recorded."""
    stripe, npm = secretgen.stripe_live_secret(), secretgen.npm_token()
    Pusher(registry_none.host).image(
        unique_repo, "v1", ImageSpec([Layer([Entry("app/.env", f"STRIPE_KEY={stripe}\nNPM_TOKEN={npm}\n".encode())])])
    )
    vault.put("payments/stripe", {"api_key": stripe})
    db = tmp_path / "s.db"
    sweep = ("sweep", registry_none.host, "--repo", unique_repo, "--db", db, "--vault", "--vault-kv", vault.mount)
    swept = cli(*sweep, "-f", "json", "-q")
    assert swept.code == 1, swept.err
    verdicts = {f["fingerprint"]: f["vault"] for f in swept.report["findings"]}
    assert verdicts[fingerprint_of(stripe)] == {
        "status": "current",
        "path": f"{vault.mount}/payments/stripe#api_key",
        "version": 1,
        "current_version": 1,
    }
    assert verdicts[fingerprint_of(npm)]["status"] == "unmanaged"
    critical = [f for f in swept.report["findings"] if f["severity"] == "critical"]
    assert [f["fingerprint"] for f in critical] == [fingerprint_of(stripe)]

    vault.put("payments/stripe", {"api_key": secretgen.stripe_live_secret()})  # rotated
    stored = cli("report", "--db", db, "-q").out  # the recorded sweep, as it was
    assert f"vault: current {vault.mount}/payments/stripe#api_key version 1 (current 1)" in stored
    warm = cli(*sweep, "-f", "json", "-q")  # every layer from the cache, compared again
    assert {f["fingerprint"]: f["vault"]["status"] for f in warm.report["findings"]} == {
        fingerprint_of(stripe): "former",
        fingerprint_of(npm): "unmanaged",
    }
    asked = vault.requests(scanner)
    assert asked and {r.operation for r in asked} <= {"read", "list"}, "matching must only read"
    assert not any(value.encode() in db.read_bytes() for value in (stripe, npm)), "a plaintext reached the database"


# --------------------------------------------------------------------------- auth methods


def test_approle_auth(cli, vault: Vault, monkeypatch, demo_secrets, tmp_path: Path) -> None:
    vault.put("payments/stripe", {"api_key": demo_secrets["stripe.secret-key"]})
    mount, role_id, secret_id = vault.approle([vault.read_only()])
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    cfg = tmp_path / "approle.yaml"
    cfg.write_text(f"vault:\n  auth: approle\n  auth_mount: {mount}\n  kv: [{vault.mount}/payments]\n")
    report = scan_json(cli, DEMO, "--vault", "--config", str(cfg))
    assert _by_rule(report)["stripe.secret-key"]["vault"]["status"] == "current"

    monkeypatch.setenv("VAULT_SECRET_ID", str(uuid.uuid4()))
    refused = cli("scan", DEMO, "--vault", "--config", str(cfg), "-q", "-f", "json")
    assert refused.code == 2 and "approle auth" in refused.err and role_id not in refused.err
    assert len(refused.report["findings"]) == DEMO_FINDINGS


def test_kubernetes_auth(cli, vault: Vault, kubernetes_api: TokenReviewApi, demo_secrets, tmp_path: Path) -> None:
    vault.put("payments/stripe", {"api_key": demo_secrets["stripe.secret-key"]})
    mount = vault.kubernetes(kubernetes_api.url, kubernetes_api.ca_pem, [vault.read_only()], ("security", "secretscan"))
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(kubernetes_api.issue("security", "secretscan"))
    cfg = tmp_path / "k8s.yaml"
    cfg.write_text(
        f"vault:\n  auth: kubernetes\n  role: scanner\n  auth_mount: {mount}\n  jwt_path: {jwt_file}\n"
        f"  kv: [{vault.mount}/payments]\n"
    )
    report = scan_json(cli, DEMO, "--vault", "--config", str(cfg))
    assert _by_rule(report)["stripe.secret-key"]["vault"]["status"] == "current"
    assert kubernetes_api.reviews == 1, "OpenBao asked the cluster about the JWT"

    genuine = jwt_file.read_text()
    for jwt in (
        kubernetes_api.issue("security", "other-app"),  # a real service account the role is not bound to
        genuine.rsplit(".", 1)[0] + "." + secretgen.jwt().rsplit(".", 1)[1],  # right claims, not the cluster's
    ):
        jwt_file.write_text(jwt)
        refused = cli("scan", DEMO, "--vault", "--config", str(cfg), "-q", "-f", "json")
        assert refused.code == 2 and "kubernetes auth" in refused.err and jwt not in refused.err
        assert len(refused.report["findings"]) == DEMO_FINDINGS


# --------------------------------------------------------------------------- --verify


def test_verify_openbao_tokens_live_and_revoked(cli, vault: Vault, monkeypatch, tmp_path: Path) -> None:
    """OpenBao's token shapes (s.<24>, s.<24>.<namespace id>, b.…) wherever Vault tokens are
    written, found as Vault tokens and checked with lookup-self at BAO_ADDR."""
    reader = vault.read_only()
    live = vault.token([reader], display_name="ci")
    dead = vault.token([reader])
    vault.revoke(dead)
    minter = vault.policy("minter", {"auth/token/create": ["update"], "auth/token/create-orphan": ["update"]})
    parent = vault.token([reader, minter])
    child, orphan = vault.token([reader], parent=parent), vault.token([reader], parent=parent, orphan=True)
    vault.revoke(parent)  # and with it its child, not the orphan
    used_up = vault.token([reader], num_uses=1)
    vault.client(used_up).auth.token.lookup_self()
    namespaced = vault.in_namespace("team").token(["default"])
    batch = vault.token([reader], type="batch")
    image = _image(
        tmp_path,
        {
            "etc/agent.env": f"VAULT_TOKEN={live}\nOLD_TOKEN={dead}\nBAO_TOKEN={namespaced}\n",
            "app/entrypoint.sh": f"#!/bin/sh\nbao login -no-print {child}\nvault login {used_up}\nexec /app/run\n",
            "app/job.sh": f"vault kv get -token={orphan} secret/app\n",
            "app/config.yaml": f"openbao:\n  token: {batch}\n",
        },
    )
    monkeypatch.delenv("VAULT_ADDR")
    monkeypatch.setenv("BAO_ADDR", vault.addr)
    report = scan_json(cli, image, "--verify", "--verify-provider", "vault", "--show-secrets")
    found = {f["secret"]: f for f in report["findings"]}
    tokens = {live, dead, child, orphan, used_up, namespaced, batch}
    assert set(found) == tokens and {f["rule_id"] for f in found.values()} == {"vault.legacy-token"}
    verdicts = {secret: f["verification"] for secret, f in found.items()}
    assert verdicts[live]["verdict"] == "live" and "token-ci" in verdicts[live]["evidence"]
    assert {verdicts[t]["verdict"] for t in (orphan, namespaced, batch)} == {"live"}
    assert {verdicts[t]["verdict"] for t in (dead, child, used_up)} == {"revoked"}
    assert all(t not in json.dumps(v) for t in tokens for v in verdicts.values())


# --------------------------------------------------------------------------- migrate


def test_migrate_plan_apply_then_rescan_finds_them_managed(
    cli, vault: Vault, scanner: str, monkeypatch, demo_secrets, tmp_path: Path
) -> None:
    stripe = demo_secrets["stripe.secret-key"]
    vault.put("payments/stripe", {"api_key": stripe})
    where = ("--vault", "--vault-kv", f"{vault.mount}/payments", "--to", f"{vault.mount}/migrated")
    plan = cli("migrate", "plan", DEMO, *where, "-f", "json", "-q")
    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    assert len(doc["items"]) == DEMO_FINDINGS - 1 and [m["status"] for m in doc["already_managed"]] == ["current"]
    by_rule = {item["rule_id"]: item for item in doc["items"]}
    assert by_rule["npm.access-token"]["kv_path"] == f"{vault.mount}/migrated/secretscan/demo/npm_token#value"
    assert by_rule["npm.access-token"]["put_command"].endswith("secretscan/demo/npm_token value=-")
    assert any("RUN --mount=type=secret" in c for c in by_rule["npm.access-token"]["image_changes"])
    assert all(value not in plan.out for value in demo_secrets.values())
    markdown = cli("migrate", "plan", DEMO, "--to", f"{vault.mount}/migrated", "-q").out
    assert "# Migration plan" in markdown and f"vault kv put -mount={vault.mount} -cas=0" in markdown

    monkeypatch.setenv("VAULT_TOKEN", vault.token([vault.read_write()]))
    record = tmp_path / "record.json"
    applied = cli("migrate", "apply", DEMO, *where, "--record", record, "-q")
    assert applied.code == 0, applied.err
    assert applied.out.count("created") == DEMO_FINDINGS - 1
    written = json.loads(record.read_text())
    assert {e["action"] for e in written} == {"created"}
    assert all(v not in record.read_text() for v in demo_secrets.values())

    again = cli("migrate", "apply", DEMO, *where, "--record", record, "-q")
    assert again.code == 0 and again.out.count("unchanged") == DEMO_FINDINGS - 1, "safe to re-run"

    monkeypatch.setenv("VAULT_TOKEN", scanner)
    rescan = scan_json(cli, DEMO, "--vault", "--vault-kv", vault.mount)
    assert all(f["vault"]["status"] == "current" for f in rescan["findings"])


def test_apply_never_overwrites_a_different_value_without_force(cli, vault: Vault, monkeypatch, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    image = _image(tmp_path, {"app/.env": f"GITHUB_TOKEN={token}\n"})
    vault.admin.secrets.kv.v2.configure(cas_required=True, mount_point=vault.mount)  # every write must name a version
    vault.admin.secrets.kv.v2.create_or_update_secret(
        "secretscan/team/app/github_token",
        {"value": "someone-elses-" + secretgen.password()},
        cas=0,
        mount_point=vault.mount,
    )
    record = tmp_path / "r.json"
    apply = ("migrate", "apply", image, "--to", f"{vault.mount}/secretscan", "--record", record, "-q")

    reader = vault.token([vault.read_only()])
    monkeypatch.setenv("VAULT_TOKEN", reader)
    denied = cli(*apply, "--force")  # it would write, but may not
    assert denied.code == 2 and "permission denied" in denied.err and token not in denied.err
    meta = vault.admin.secrets.kv.v2.read_secret_metadata("secretscan/team/app/github_token", mount_point=vault.mount)
    assert meta["data"]["current_version"] == 1, "nothing was written"

    monkeypatch.setenv("VAULT_TOKEN", vault.token([vault.read_write()]))
    refused = cli(*apply)
    assert refused.code == 2 and "already holds a different value" in refused.err and token not in refused.err
    forced = cli(*apply, "--force")
    assert forced.code == 0 and "overwritten" in forced.out
    assert [e["action"] for e in json.loads(record.read_text())] == ["denied", "conflict", "overwritten"]
    stored = vault.admin.secrets.kv.v2.read_secret_version(
        "secretscan/team/app/github_token", mount_point=vault.mount, raise_on_deleted_version=True
    )["data"]
    assert stored["data"] == {"value": token} and stored["metadata"]["version"] == 2


def test_apply_writes_over_a_deleted_or_destroyed_latest_version(
    cli, vault: Vault, monkeypatch, tmp_path: Path
) -> None:
    github, npm = secretgen.github_pat(), secretgen.npm_token()
    image = _image(
        tmp_path, {"app/.env": f"GITHUB_TOKEN={github}\n", "app/.npmrc": f"//registry.npmjs.org/:_authToken={npm}\n"}
    )
    vault.put("secretscan/team/app/github_token", {"value": secretgen.github_pat()})
    vault.delete("secretscan/team/app/github_token")  # the latest version, soft-deleted
    vault.put("secretscan/team/app/npmrc", {"value": secretgen.npm_token()})
    vault.put("secretscan/team/app/npmrc", {"value": secretgen.npm_token()})
    vault.destroy("secretscan/team/app/npmrc", versions=[2])
    monkeypatch.setenv("VAULT_TOKEN", vault.token([vault.read_write()]))
    record = tmp_path / "r.json"
    apply = ("migrate", "apply", image, "--to", f"{vault.mount}/secretscan", "--record", record, "-q")

    applied = cli(*apply)
    assert applied.code == 0, applied.err
    assert {(e["path"], e["action"], e["version"]) for e in json.loads(record.read_text())} == {
        (f"{vault.mount}/secretscan/team/app/github_token#value", "created", 2),
        (f"{vault.mount}/secretscan/team/app/npmrc#value", "created", 3),
    }
    again = cli(*apply)
    assert again.code == 0 and again.out.count("unchanged") == 2, again.err
    kv = vault.admin.secrets.kv.v2
    versions = kv.read_secret_metadata("secretscan/team/app/github_token", mount_point=vault.mount)["data"]["versions"]
    assert versions["1"]["deletion_time"] != "", "the deleted version stays deleted"
    versions = kv.read_secret_metadata("secretscan/team/app/npmrc", mount_point=vault.mount)["data"]["versions"]
    assert versions["2"]["destroyed"] is True
