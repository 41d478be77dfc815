"""--vault, --verify of Vault tokens, and migrate plan/apply, driven through the real hvac client
against the Vault HTTP API double (tests/vault_double.py) on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import secretgen
from conftest import REPO, scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive
from vault_double import VaultDouble

DEMO = REPO / "fixtures" / "demo-image.tar"
READ_ONLY = {"secret/data/*": ["read"], "secret/metadata/*": ["read", "list"]}
READ_WRITE = {"secret/data/*": ["create", "read", "update"], "secret/metadata/*": ["read", "list"]}


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch):
    with VaultDouble() as double:
        double.set_policy("scanner", READ_ONLY)
        double.set_policy("migrator", READ_WRITE)
        monkeypatch.setenv("VAULT_ADDR", double.addr)
        monkeypatch.setenv("VAULT_TOKEN", double.create_token(["scanner"]))
        for name in ("VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_ROLE_ID", "VAULT_SECRET_ID"):
            monkeypatch.delenv(name, raising=False)
        yield double


@pytest.fixture(scope="module")
def demo_secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """rule id -> value, read from the demo image at test time (nothing secret-shaped in this file)."""
    from secretscan.cli import main

    out = tmp_path_factory.mktemp("demo") / "demo.json"
    main(["scan", str(DEMO), "-q", "-f", "json", "--show-secrets", "-o", str(out)])
    return {f["rule_id"]: f["secret"] for f in json.loads(out.read_text())["findings"]}


def _by_rule(report: dict) -> dict[str, dict]:
    return {f["rule_id"]: f for f in report["findings"]}


def test_vault_marks_exactly_the_managed_secrets(cli, vault, demo_secrets) -> None:
    stripe, npm = demo_secrets["stripe.secret-key"], demo_secrets["npm.access-token"]
    vault.put_secret("secret", "payments/stripe", {"api_key": stripe, "note": "x"})
    vault.put_secret("secret", "ci/npm", {"token": npm})
    vault.put_secret("secret", "ci/npm", {"token": secretgen.npm_token()})  # rotated since: npm is a former value
    vault.put_secret("secret", "unrelated/thing", {"password": secretgen.password()})
    report = scan_json(cli, DEMO, "--vault", "--vault-kv", "secret")
    found = _by_rule(report)
    assert found["stripe.secret-key"]["vault"] == {
        "status": "current",
        "path": "secret/payments/stripe#api_key",
        "version": 1,
        "current_version": 1,
    }
    assert found["stripe.secret-key"]["severity"] == "critical"
    assert found["stripe.secret-key"]["title"] == "live managed secret leaked — rotate secret/payments/stripe#api_key"
    assert (
        found["npm.access-token"]["vault"]["status"] == "former" and found["npm.access-token"]["vault"]["version"] == 1
    )
    others = [f for rule, f in found.items() if rule not in ("stripe.secret-key", "npm.access-token")]
    assert others and all(f["vault"]["status"] == "unmanaged" for f in others)
    writes = [r for r in vault.requests if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    assert writes == [], "matching must only read"
    text = cli("scan", DEMO, "--vault", "--vault-kv", "secret/payments", "-q").out
    assert "vault: current secret/payments/stripe#api_key" in text and stripe not in text


def test_vault_unreachable_or_denied_still_reports_the_findings(cli, vault, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAULT_TOKEN", vault.create_token(["default"]))  # no read on secret/
    denied = cli("scan", DEMO, "--vault", "--vault-kv", "secret", "-q", "-f", "json")
    assert denied.code == 2 and "permission denied" in denied.err
    assert len(denied.report["findings"]) == 10
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")  # nothing listens on the discard port
    unreachable = cli("scan", DEMO, "--vault", "--vault-kv", "secret", "-q", "-f", "json")
    assert unreachable.code == 2 and "unreachable" in unreachable.err and len(unreachable.report["findings"]) == 10


def test_approle_and_kubernetes_auth(cli, vault, monkeypatch, demo_secrets, tmp_path: Path) -> None:
    vault.put_secret("secret", "payments/stripe", {"api_key": demo_secrets["stripe.secret-key"]})
    monkeypatch.delenv("VAULT_TOKEN")
    role_id, secret_id = vault.enable_approle("scanner", ["scanner"])
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    cfg = tmp_path / "approle.yaml"
    cfg.write_text("vault:\n  auth: approle\n  kv: [secret/payments]\n")
    report = scan_json(cli, DEMO, "--vault", "--config", str(cfg))
    assert _by_rule(report)["stripe.secret-key"]["vault"]["status"] == "current"
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(secretgen.jwt())
    vault.enable_kubernetes("scanner", jwt_file.read_text(), ["scanner"])
    cfg = tmp_path / "k8s.yaml"
    cfg.write_text(f"vault:\n  auth: kubernetes\n  role: scanner\n  jwt_path: {jwt_file}\n  kv: [secret/payments]\n")
    report = scan_json(cli, DEMO, "--vault", "--config", str(cfg))
    assert _by_rule(report)["stripe.secret-key"]["vault"]["status"] == "current"


def test_verify_vault_tokens_live_and_revoked(cli, vault, tmp_path: Path) -> None:
    live, dead = vault.create_token(["scanner"], display_name="ci"), vault.create_token(["scanner"])
    vault.revoke(dead)
    image = tmp_path / "img.tar"
    write_docker_archive(
        image, [ImageSpec(steps=[Layer([Entry("etc/agent.env", f"VAULT_TOKEN={live}\nOLD_TOKEN={dead}\n".encode())])])]
    )
    report = scan_json(cli, image, "--verify", "--verify-provider", "vault", "--show-secrets")
    verdicts = {f["secret"]: f["verification"] for f in report["findings"]}
    assert verdicts[live]["verdict"] == "live" and "token-ci" in verdicts[live]["evidence"]
    assert verdicts[dead]["verdict"] == "revoked"
    assert all(s not in json.dumps(v) for s, v in verdicts.items())


def test_migrate_plan_apply_then_rescan_finds_them_managed(
    cli, vault, monkeypatch, demo_secrets, tmp_path: Path
) -> None:
    stripe = demo_secrets["stripe.secret-key"]
    vault.put_secret("secret", "payments/stripe", {"api_key": stripe})
    plan = cli(
        "migrate",
        "plan",
        DEMO,
        "--vault",
        "--vault-kv",
        "secret/payments",
        "--to",
        "secret/migrated",
        "-f",
        "json",
        "-q",
    )
    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    assert len(doc["items"]) == 9 and [m["status"] for m in doc["already_managed"]] == ["current"]
    by_rule = {item["rule_id"]: item for item in doc["items"]}
    assert by_rule["npm.access-token"]["kv_path"] == "secret/migrated/secretscan/demo/npm_token#value"
    assert by_rule["npm.access-token"]["put_command"].endswith("secretscan/demo/npm_token value=-")
    assert any("RUN --mount=type=secret" in c for c in by_rule["npm.access-token"]["image_changes"])
    assert all(value not in plan.out for value in demo_secrets.values())
    markdown = cli("migrate", "plan", DEMO, "--to", "secret/migrated", "-q").out
    assert "# Migration plan" in markdown and "vault kv put -mount=secret -cas=0" in markdown

    monkeypatch.setenv("VAULT_TOKEN", vault.create_token(["migrator"]))
    record = tmp_path / "record.json"
    apply = ("migrate", "apply", DEMO, "--vault", "--vault-kv", "secret/payments", "--to", "secret/migrated")
    applied = cli(*apply, "--record", record, "-q")
    assert applied.code == 0, applied.err
    assert applied.out.count("created") == 9
    written = json.loads(record.read_text())
    assert {e["action"] for e in written} == {"created"} and all(
        v not in record.read_text() for v in demo_secrets.values()
    )

    again = cli(*apply, "--record", record, "-q")
    assert again.code == 0 and again.out.count("unchanged") == 9, "safe to re-run"

    monkeypatch.setenv("VAULT_TOKEN", vault.create_token(["scanner"]))
    rescan = scan_json(cli, DEMO, "--vault", "--vault-kv", "secret")
    assert all(f["vault"]["status"] == "current" for f in rescan["findings"])


def test_apply_never_overwrites_a_different_value_without_force(cli, vault, monkeypatch, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    image = tmp_path / "img.tar"
    write_docker_archive(
        image,
        [ImageSpec(steps=[Layer([Entry("app/.env", f"GITHUB_TOKEN={token}\n".encode())])], repo_tags=["team/app:1"])],
    )
    vault.put_secret("secret", "secretscan/team/app/github_token", {"value": "someone-elses-" + secretgen.password()})
    monkeypatch.setenv("VAULT_TOKEN", vault.create_token(["migrator"]))
    record = tmp_path / "r.json"
    refused = cli("migrate", "apply", image, "--record", record, "-q")
    assert refused.code == 2 and "already holds a different value" in refused.err and token not in refused.err
    forced = cli("migrate", "apply", image, "--record", record, "--force", "-q")
    assert forced.code == 0 and "overwritten" in forced.out
    assert [e["action"] for e in json.loads(record.read_text())] == ["conflict", "overwritten"]


def test_vault_namespace_from_the_environment(cli, monkeypatch, demo_secrets) -> None:
    with VaultDouble(namespaces=True) as double:
        double.create_namespace("team-a")
        double.set_policy("scanner", READ_ONLY, namespace="team-a")
        double.put_secret(
            "secret", "payments/stripe", {"api_key": demo_secrets["stripe.secret-key"]}, namespace="team-a"
        )
        monkeypatch.setenv("VAULT_ADDR", double.addr)
        monkeypatch.setenv("VAULT_TOKEN", double.create_token(["scanner"], namespace="team-a"))
        monkeypatch.setenv("VAULT_NAMESPACE", "team-a")
        report = scan_json(cli, DEMO, "--vault", "--vault-kv", "secret")
        assert _by_rule(report)["stripe.secret-key"]["vault"]["status"] == "current"
        assert {r["namespace"] for r in double.requests} == {"team-a/"}  # Vault normalises to a trailing slash
