"""--aws-secrets, migrate --to aws-secrets and sweep --aws-secrets against moto's Secrets Manager over
real HTTP (tests/conftest_servers.py): current, former (AWSPREVIOUS and an older version without a
label) and unmanaged values, JSON secrets field by field, binary secrets skipped with a note,
listings of more than one page, missing permissions (the moto that enforces IAM policies),
idempotent and conflicting migration, KMS keys and tags, and sweeps matched by fingerprint.

Every secret-shaped value is made at test time (secretgen)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import provider_fakes
import pytest
import secretgen
import servers
from conftest import scan_json
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_docker_archive
from registry_push import Pusher
from servers import RegistryInfo

pytestmark = pytest.mark.servers

STORE = "aws-secrets"
READ_ONLY = ["secretsmanager:ListSecrets", "secretsmanager:ListSecretVersionIds", "secretsmanager:GetSecretValue"]


def _image(tmp_path: Path, files: dict[str, str], name: str = "img.tar") -> Path:
    image = tmp_path / name
    spec = ImageSpec(steps=[Layer([Entry(p, d.encode()) for p, d in files.items()])], repo_tags=["team/app:1"])
    write_docker_archive(image, [spec])
    return image


def _client(
    service: str = "secretsmanager", endpoint: str | None = None, key: str = "testing", secret: str = "testing"
) -> Any:
    """A boto3 client of our own, to set up and inspect what secretscan reads and writes."""
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1").client(
        service, endpoint_url=endpoint
    )


def _stages(sm: Any, name: str) -> dict[str, list[str]]:
    """version id -> staging labels, as AWS lists them (deprecated versions too)."""
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    return {v["VersionId"]: v.get("VersionStages") or [] for v in versions}


def _version(sm: Any, name: str, stage: str) -> str:
    return next(v for v, stages in _stages(sm, name).items() if stage in stages)


def _aws(finding: dict[str, Any]) -> dict[str, Any] | None:
    """The finding's AWS Secrets Manager verdict (JSON report), if it has one."""
    return next((m for m in finding["managed"] if m["store"] == STORE), None)


def _by_secret(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["secret"]: f for f in report["findings"]}


# --------------------------------------------------------------------------- matching


def test_current_former_and_unmanaged_values_with_their_evidence(cli, moto_endpoint: str, tmp_path: Path) -> None:
    gh, npm, slack, gitlab, openai, stripe = (
        secretgen.github_pat(),
        secretgen.npm_token(),
        secretgen.slack_bot_token(),
        secretgen.gitlab_pat(),
        secretgen.openai_key(),
        secretgen.stripe_live_secret(),
    )
    sm = _client()
    github_arn = sm.create_secret(Name="app/github", SecretString=gh)["ARN"]
    sm.create_secret(Name="ci/npm", SecretString=npm)
    sm.put_secret_value(SecretId="ci/npm", SecretString=secretgen.npm_token())  # npm: now AWSPREVIOUS
    sm.create_secret(Name="ops/slack", SecretString=slack)
    slack_version = _version(sm, "ops/slack", "AWSCURRENT")
    sm.put_secret_value(SecretId="ops/slack", SecretString=secretgen.slack_bot_token())
    sm.put_secret_value(SecretId="ops/slack", SecretString=secretgen.slack_bot_token())  # slack: no label left
    assert _stages(sm, "ops/slack")[slack_version] == [], "an older version AWS still holds, without a label"
    sm.create_secret(
        Name="app/config",
        SecretString=json.dumps(
            {"username": "svc-app", "gitlab_token": gitlab, "openai_key": openai, "port": 5432, "tls": {"on": True}}
        ),
    )
    sm.create_secret(Name="app/keystore", SecretBinary=b"\x00\x01keystore")
    image = _image(
        tmp_path,
        {
            "app/.env": f"GITHUB_TOKEN={gh}\nNPM_TOKEN={npm}\nSTRIPE_KEY={stripe}\n",
            "app/notify.py": f'SLACK = "{slack}"\n',
            "app/gitlab.yml": f"gitlab:\n  token: {gitlab}\n",
            "app/ai.env": f"OPENAI_API_KEY={openai}\n",
        },
    )

    report = scan_json(cli, image, "--aws-secrets", "--show-secrets")
    found = _by_secret(report)
    assert set(found) == {gh, npm, slack, gitlab, openai, stripe}
    assert _aws(found[gh]) == {
        "store": STORE,
        "status": "current",
        "secret": github_arn,
        "name": "app/github",
        "field": None,
        "version": _version(sm, "app/github", "AWSCURRENT"),
        "stage": "AWSCURRENT",
        "current_version": _version(sm, "app/github", "AWSCURRENT"),
    }
    assert found[gh]["severity"] == "critical"
    assert found[gh]["title"] == "live managed secret leaked — rotate app/github in AWS Secrets Manager"
    npm_verdict = _aws(found[npm])
    assert npm_verdict is not None
    assert (npm_verdict["status"], npm_verdict["stage"]) == ("former", "AWSPREVIOUS")
    assert npm_verdict["version"] == _version(sm, "ci/npm", "AWSPREVIOUS")
    assert npm_verdict["current_version"] == _version(sm, "ci/npm", "AWSCURRENT")
    assert "Already rotated in AWS Secrets Manager" in found[npm]["remediation"]
    slack_verdict = _aws(found[slack])
    assert slack_verdict is not None
    assert (slack_verdict["status"], slack_verdict["stage"], slack_verdict["version"]) == (
        "former",
        None,
        slack_version,
    )
    gitlab_verdict = _aws(found[gitlab])
    assert gitlab_verdict is not None
    assert (gitlab_verdict["status"], gitlab_verdict["name"], gitlab_verdict["field"]) == (
        "current",
        "app/config",
        "gitlab_token",
    )
    openai_verdict = _aws(found[openai])
    assert openai_verdict is not None
    assert (openai_verdict["status"], openai_verdict["field"]) == ("current", "openai_key"), "each field on its own"
    assert (
        openai_verdict["secret"] == gitlab_verdict["secret"] and openai_verdict["version"] == gitlab_verdict["version"]
    )
    assert _aws(found[stripe]) == {
        "store": STORE,
        "status": "unmanaged",
        "secret": None,
        "name": None,
        "field": None,
        "version": None,
        "stage": None,
        "current_version": None,
    }
    assert all(f["vault"] is None for f in found.values()), "Vault was not asked"
    binary = [s for s in report["skipped"] if "app/keystore" in s["what"]]
    assert len(binary) == 1 and "binary" in binary[0]["reason"] and "not compared" in binary[0]["reason"]

    text = cli("scan", image, "--aws-secrets", "-q")
    assert text.code == 1, text.err
    assert (
        f"aws-secrets: current app/github (AWSCURRENT, version {_version(sm, 'app/github', 'AWSCURRENT')}) {github_arn}"
        in text.out
    )
    assert "aws-secrets: current app/config#gitlab_token (AWSCURRENT" in text.out
    assert (
        "aws-secrets: former ops/slack#" not in text.out
        and "aws-secrets: former ops/slack (no staging label" in text.out
    )
    assert "aws-secrets: unmanaged" in text.out
    assert not any(value in text.out + text.err for value in (gh, npm, slack, gitlab, openai, stripe, "svc-app"))


def test_the_listing_spans_pages_and_keeps_to_the_prefix_and_tags(cli, moto_endpoint: str, tmp_path: Path) -> None:
    sm = _client()
    wanted, elsewhere, untagged = secretgen.github_pat(), secretgen.npm_token(), secretgen.stripe_live_secret()
    for n in range(104):
        sm.create_secret(
            Name=f"bulk/filler-{n:03}", SecretString=secretgen.password(), Tags=[{"Key": "team", "Value": "a"}]
        )
    sm.create_secret(Name="bulk/the-one", SecretString=wanted, Tags=[{"Key": "team", "Value": "a"}])
    sm.create_secret(Name="bulk/untagged", SecretString=untagged)
    sm.create_secret(Name="other/npm", SecretString=elsewhere, Tags=[{"Key": "team", "Value": "a"}])
    first_page = sm.list_secrets(MaxResults=100, Filters=[{"Key": "name", "Values": ["bulk/"]}])
    assert "NextToken" in first_page and "bulk/the-one" not in {s["Name"] for s in first_page["SecretList"]}
    image = _image(tmp_path, {"app/keys.txt": f"{wanted}\n{elsewhere}\n{untagged}\n"})

    found = _by_secret(scan_json(cli, image, "--aws-secrets=bulk/", "--show-secrets"))
    statuses = {v: (_aws(found[v]) or {}).get("status") for v in (wanted, elsewhere, untagged)}
    assert statuses == {wanted: "current", elsewhere: "unmanaged", untagged: "current"}
    assert (_aws(found[wanted]) or {})["name"] == "bulk/the-one", "found on the second page"

    tagged = _by_secret(scan_json(cli, image, "--aws-secrets=bulk/", "--aws-secrets-tag", "team=a", "--show-secrets"))
    assert (_aws(tagged[untagged]) or {}).get("status") == "unmanaged", "not tagged team=a"
    assert (_aws(tagged[wanted]) or {}).get("status") == "current"
    other_team = _by_secret(scan_json(cli, image, "--aws-secrets", "--aws-secrets-tag", "team=b", "--show-secrets"))
    assert {(_aws(f) or {}).get("status") for f in other_team.values()} == {"unmanaged"}


def _iam_user(endpoint: str, actions: list[str]) -> tuple[str, str]:
    """An IAM user on the auth-enforcing moto allowed ``actions`` (on every resource); its key pair."""
    name = f"scanner-{secretgen.password()[:6].lower()}".replace("_", "")
    keys = provider_fakes.aws_keys(endpoint, user_name=name, enforce=False)
    provider_fakes.moto_set_auth(endpoint, enforce=False)
    try:
        if actions:
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
            _client("iam", endpoint).put_user_policy(
                UserName=name, PolicyName="secretscan", PolicyDocument=json.dumps(policy)
            )
    finally:
        provider_fakes.moto_set_auth(endpoint, enforce=True)
    return keys.live_key_id, keys.live_secret


def _as(monkeypatch: pytest.MonkeyPatch, keys: tuple[str, str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def test_read_only_permissions_suffice_and_missing_ones_keep_every_finding(
    cli, moto_auth_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gh, npm = secretgen.github_pat(), secretgen.npm_token()
    provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=False)
    try:
        _client(endpoint=moto_auth_endpoint).create_secret(Name="app/github", SecretString=gh)
    finally:
        provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=True)
    reader = _iam_user(moto_auth_endpoint, READ_ONLY)
    lister = _iam_user(moto_auth_endpoint, READ_ONLY[:2])
    nobody = _iam_user(moto_auth_endpoint, [])
    image = _image(tmp_path, {"app/.env": f"GITHUB_TOKEN={gh}\nNPM_TOKEN={npm}\n"})

    _as(monkeypatch, reader)
    found = _by_secret(scan_json(cli, image, "--aws-secrets", "--show-secrets"))
    assert {v: (_aws(f) or {}).get("status") for v, f in found.items()} == {gh: "current", npm: "unmanaged"}

    _as(monkeypatch, lister)
    denied = cli("scan", image, "--aws-secrets", "-f", "json", "-q")
    assert denied.code == 2
    errors = [line for line in denied.err.splitlines() if "secretscan: error:" in line]
    assert len(errors) == 1 and "access denied for secretsmanager:GetSecretValue on 1 secret(s)" in errors[0]
    assert len(denied.report["findings"]) == 2, "every finding kept"
    assert all(f["managed"] == [] for f in denied.report["findings"]), "nothing called unmanaged on a partial read"

    _as(monkeypatch, nobody)
    refused = cli("scan", image, "--aws-secrets", "-f", "json", "-q")
    assert refused.code == 2 and "access denied for secretsmanager:ListSecrets" in refused.err
    assert len(refused.report["findings"]) == 2
    assert gh not in refused.err + denied.err and npm not in refused.err + denied.err


def test_an_unreachable_store_keeps_every_finding_and_the_service_endpoint_wins(
    cli, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gh = secretgen.github_pat()
    _client().create_secret(Name="app/github", SecretString=gh)
    image = _image(tmp_path, {"app/.env": f"GITHUB_TOKEN={gh}\n"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    unreachable = cli("scan", image, "--aws-secrets", "-f", "json", "-q")
    assert unreachable.code == 2 and "unreachable" in unreachable.err and "ListSecrets" in unreachable.err
    assert len(unreachable.report["findings"]) == 1

    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)  # as boto3 reads it: the service's own
    report = scan_json(cli, image, "--aws-secrets")
    assert [(_aws(f) or {}).get("status") for f in report["findings"]] == ["current"]

    # secret values never travel in plain HTTP, except to this machine
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://secrets.example.com:4566")
    plain = cli("scan", image, "--aws-secrets", "-f", "json", "-q")
    assert plain.code == 2 and len(plain.report["findings"]) == 1
    assert (
        "refusing to send secret values to http://secrets.example.com:4566: only https, or plain http to this "
        "machine (loopback)" in plain.err
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)

    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    no_region = cli("scan", image, "--aws-secrets", "-f", "json", "-q")
    assert no_region.code == 2 and "no AWS region" in no_region.err and len(no_region.report["findings"]) == 1


# --------------------------------------------------------------------------- migration


def test_migrate_plan_names_a_secret_per_finding_and_says_how_to_inject_it(
    cli, moto_endpoint: str, tmp_path: Path
) -> None:
    gh, npm = secretgen.github_pat(), secretgen.npm_token()
    _client().create_secret(Name="ci/npm", SecretString=npm)
    image = _image(
        tmp_path, {"app/.env": f"GITHUB_TOKEN={gh}\n", "root/.npmrc": f"//registry.npmjs.org/:_authToken={npm}\n"}
    )

    plan = cli("migrate", "plan", image, "--to", "aws-secrets:teams/", "--aws-secrets", "-f", "json", "-q")
    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    assert doc["store"] == STORE and doc["destination"] == "teams/" and doc["notes"] == []
    assert [(m["store"], m["status"], m["name"]) for m in doc["already_managed"]] == [(STORE, "current", "ci/npm")]
    [item] = doc["items"]
    assert item["secret_name"] == item["target"] == "teams/team/app/github_token"
    assert item["status"] == "unmanaged" and item["statuses"] == {"vault": "not checked", STORE: "unmanaged"}
    assert item["store_command"] == (
        "aws secretsmanager create-secret --name teams/team/app/github_token --secret-string file:///dev/stdin"
    )
    assert '"valueFrom": "teams/team/app/github_token"' in item["runtime"]
    assert "External Secrets Operator" in item["runtime"] and "Secrets Store CSI driver" in item["runtime"]
    assert any("Stop copying /app/.env" in change for change in item["image_changes"])
    assert gh not in plan.out and npm not in plan.out

    markdown = cli("migrate", "plan", image, "--to", "aws-secrets", "-q").out
    assert "AWS Secrets Manager: `secretscan/team/app/github_token` (currently: not checked)" in markdown
    assert "> AWS Secrets Manager was not consulted (--aws-secrets)" in markdown
    in_history = cli("migrate", "plan", _image_with_arg(tmp_path, gh), "--to", "aws-secrets", "-q").out
    assert "RUN --mount=type=secret,id=" in in_history, "a value in the build history: a BuildKit secret instead"


def _image_with_arg(tmp_path: Path, token: str) -> Path:
    """An image whose build history holds the token (an ARG used in a RUN line)."""
    image = tmp_path / "arg.tar"
    spec = ImageSpec(
        steps=[EmptyStep(f"/bin/sh -c #(nop) ARG GITHUB_TOKEN={token}"), Layer([Entry("app/x", b"x\n")])],
        repo_tags=["team/app:1"],
    )
    write_docker_archive(image, [spec])
    return image


def test_apply_creates_with_the_kms_key_and_tags_and_a_rerun_changes_nothing(
    cli, moto_endpoint: str, tmp_path: Path
) -> None:
    gh, npm = secretgen.github_pat(), secretgen.npm_token()
    image = _image(
        tmp_path, {"app/.env": f"GITHUB_TOKEN={gh}\n", "root/.npmrc": f"//registry.npmjs.org/:_authToken={npm}\n"}
    )
    key_id = _client("kms").create_key(Description="secretscan migration test")["KeyMetadata"]["KeyId"]
    record = tmp_path / "record.json"
    apply = (
        "migrate", "apply", image, "--to", "aws-secrets", "--kms-key-id", key_id,
        "--aws-tag", "owner=secops", "--aws-tag", "migrated-by=secretscan", "--record", record, "-q",
    )  # fmt: skip

    first = cli(*apply)
    assert first.code == 0, first.err
    assert first.out.count("created") == 2
    sm = _client()
    names = {"secretscan/team/app/github_token": gh, "secretscan/team/app/npmrc": npm}
    for name, value in names.items():
        described = sm.describe_secret(SecretId=name)
        assert described["KmsKeyId"] == key_id
        assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"owner": "secops", "migrated-by": "secretscan"}
        assert sm.get_secret_value(SecretId=name)["SecretString"] == value
    versions = {name: _stages(sm, name) for name in names}
    written = json.loads(record.read_text())
    assert [(e["store"], e["action"]) for e in written] == [(STORE, "created")] * 2
    assert {e["path"] for e in written} == set(names)
    assert all(e["arn"].startswith("arn:aws:secretsmanager:us-east-1:") and e["version"] for e in written)
    assert not any(value in record.read_text() for value in names.values())

    again = cli(*apply)
    assert again.code == 0 and again.out.count("unchanged") == 2, again.err
    assert {name: _stages(sm, name) for name in names} == versions, "a re-run wrote no version"
    assert [e["action"] for e in json.loads(record.read_text())] == ["created", "created", "unchanged", "unchanged"]

    rescan = scan_json(cli, image, "--aws-secrets")
    assert {(_aws(f) or {}).get("status") for f in rescan["findings"]} == {"current"}


def test_apply_never_overwrites_a_different_value_without_force(cli, moto_endpoint: str, tmp_path: Path) -> None:
    token, theirs = secretgen.github_pat(), secretgen.github_pat()
    sm = _client()
    sm.create_secret(Name="secretscan/team/app/github_token", SecretString=theirs)
    image = _image(tmp_path, {"app/.env": f"GITHUB_TOKEN={token}\n"})
    record = tmp_path / "r.json"
    apply = ("migrate", "apply", image, "--to", "aws-secrets", "--record", record, "-q")

    refused = cli(*apply)
    assert refused.code == 2 and "already holds a different value" in refused.err and "--force" in refused.err
    assert token not in refused.err + refused.out and theirs not in refused.err + refused.out
    assert sm.get_secret_value(SecretId="secretscan/team/app/github_token")["SecretString"] == theirs
    forced = cli(*apply, "--force")
    assert forced.code == 0 and "overwritten" in forced.out, forced.err
    assert sm.get_secret_value(SecretId="secretscan/team/app/github_token")["SecretString"] == token
    previous = sm.get_secret_value(SecretId="secretscan/team/app/github_token", VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == theirs, "their value stays, as AWSPREVIOUS"
    assert [e["action"] for e in json.loads(record.read_text())] == ["conflict", "overwritten"]


def test_apply_without_write_permission_is_denied_and_names_the_action(
    cli, moto_auth_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = secretgen.github_pat()
    image = _image(tmp_path, {"app/.env": f"GITHUB_TOKEN={token}\n"})
    _as(monkeypatch, _iam_user(moto_auth_endpoint, [*READ_ONLY, "secretsmanager:DescribeSecret"]))
    denied = cli("migrate", "apply", image, "--to", "aws-secrets", "--record", tmp_path / "r.json", "-q")
    assert denied.code == 2 and "access denied for secretsmanager:CreateSecret" in denied.err
    assert denied.out.startswith("denied") and token not in denied.err + denied.out


# --------------------------------------------------------------------------- sweeps


def test_sweep_matches_by_fingerprint_and_report_db_shows_the_verdicts(
    cli, moto_endpoint: str, registry_none: RegistryInfo, unique_repo: str, tmp_path: Path
) -> None:
    gh, npm, stripe = secretgen.github_pat(), secretgen.npm_token(), secretgen.stripe_live_secret()
    Pusher(registry_none.host).image(
        unique_repo,
        "v1",
        ImageSpec([Layer([Entry("app/.env", f"GITHUB_TOKEN={gh}\nNPM_TOKEN={npm}\nSTRIPE={stripe}\n".encode())])]),
    )
    sm = _client()
    sm.create_secret(Name="app/github", SecretString=gh)
    sm.create_secret(Name="ci/npm", SecretString=npm)
    sm.put_secret_value(SecretId="ci/npm", SecretString=secretgen.npm_token())
    db = tmp_path / "s.db"

    def sweep() -> dict[str, Any]:
        result = cli(
            "sweep", registry_none.host, "--repo", unique_repo, "--db", db, "--aws-secrets", "-f", "json", "-q"
        )
        assert result.code == 1, result.err
        return {f["redacted"]: _aws(f) for f in result.report["findings"]}

    def statuses(verdicts: dict[str, Any]) -> list[str]:
        return sorted((v or {}).get("status", "none") for v in verdicts.values())

    first = sweep()
    assert statuses(first) == ["current", "former", "unmanaged"]
    assert {(v or {}).get("name") for v in first.values()} == {"app/github", "ci/npm", None}

    servers.moto_reset(moto_endpoint)  # the database alone answers report --db
    stored = cli("report", "--db", db, "-f", "json", "-q")
    assert {f["redacted"]: _aws(f) for f in stored.report["findings"]} == first
    text = cli("report", "--db", db, "-q").out
    assert "aws-secrets: current app/github (AWSCURRENT" in text and "aws-secrets: former ci/npm (AWSPREVIOUS" in text

    sm.create_secret(Name="app/github", SecretString=secretgen.github_pat())  # a new secret: gh is nowhere now
    sm.create_secret(Name="payments/stripe", SecretString=stripe)
    warm = sweep()  # every layer from the cache: fingerprints, no plaintext, and yet matched
    assert statuses(warm) == ["current", "unmanaged", "unmanaged"]
    assert not any(value.encode() in db.read_bytes() for value in (gh, npm, stripe)), "a plaintext reached the database"
