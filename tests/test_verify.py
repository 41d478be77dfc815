"""--verify against loopback fakes of the providers' APIs and a moto STS that checks keys: live,
revoked and unknown verdicts, one request per distinct secret, evidence without the secret, and
no request at all without --verify."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import provider_fakes
import pytest
import secretgen
from conftest import scan_json
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_docker_archive

pytestmark = pytest.mark.servers


def _image(tmp_path: Path, files: dict[str, str], env: list[str] | None = None) -> Path:
    path = tmp_path / "img.tar"
    layers = [Layer([Entry(p, d.encode()) for p, d in files.items()])]
    write_docker_archive(path, [ImageSpec(steps=[*layers, EmptyStep("ENV X=1")], env=env or [], repo_tags=["v/app:1"])])
    return path


def _config(tmp_path: Path, endpoints: dict[str, str], **extra: object) -> Path:
    cfg = tmp_path / "secretscan.yaml"
    cfg.write_text(
        json.dumps({"verify": {"endpoints": endpoints, "rate_per_second": 50, "timeout_seconds": 2, **extra}})
    )
    return cfg


def _verdicts(report: dict) -> dict[str, dict]:
    return {f["secret"]: f["verification"] for f in report["findings"]}


@pytest.fixture
def fake():
    with provider_fakes.ProviderFake() as running:
        yield running


def test_provider_tokens_live_revoked_unknown(cli, fake, tmp_path: Path) -> None:
    gh_live, gh_dead = secretgen.github_pat(), secretgen.github_pat()
    gl_live, slack_live, slack_dead = secretgen.gitlab_pat(), secretgen.slack_bot_token(), secretgen.slack_bot_token()
    stripe_live, openai_dead, npm_live = secretgen.stripe_live_secret(), secretgen.openai_key(), secretgen.npm_token()
    fake.live("github", gh_live, login="octo")
    fake.revoke("github", gh_dead)
    fake.live("gitlab", gl_live)
    fake.live("slack", slack_live)
    fake.revoke("slack", slack_dead)
    fake.live("stripe", stripe_live)
    fake.revoke("openai", openai_dead)
    fake.live("npm", npm_live, username="publisher")
    files = {
        "app/tokens.txt": "\n".join(
            [
                f"gh {gh_live}",
                f"gh_old {gh_dead}",
                f"gl {gl_live}",
                f"sl {slack_live}",
                f"sl_old {slack_dead}",
                f"st {stripe_live}",
                f"oa {openai_dead}",
            ]
        )
        + "\n",
        "root/.npmrc": f"//registry.npmjs.org/:_authToken={npm_live}\n",
        "app/copy.txt": f"again {gh_live}\n",
    }
    cfg = _config(tmp_path, dict(fake.base))
    report = scan_json(cli, _image(tmp_path, files), "--verify", "--config", str(cfg), "--show-secrets")
    v = _verdicts(report)
    assert v[gh_live]["verdict"] == "live" and "octo" in v[gh_live]["evidence"]
    assert v[gh_dead]["verdict"] == "revoked"
    assert v[gl_live]["verdict"] == "live"
    assert v[slack_live]["verdict"] == "live" and v[slack_dead]["verdict"] == "revoked"
    assert v[stripe_live]["verdict"] == "live"
    assert v[openai_dead]["verdict"] == "revoked"
    assert v[npm_live]["verdict"] == "live" and "publisher" in v[npm_live]["evidence"]
    assert fake.calls("github") == 2, "one request per distinct secret, though gh_live is in two files"
    for secret, verification in v.items():
        assert secret not in json.dumps(verification)


def test_unknown_on_server_error_and_timeout(cli, fake, tmp_path: Path) -> None:
    flaky, slow = secretgen.github_pat(), secretgen.npm_token()
    fake.live("github", flaky)
    fake.live("npm", slow)
    fake.set_flaky("github", status=500, times=5)
    fake.delay_seconds["npm"] = 5
    cfg = _config(tmp_path, dict(fake.base))
    report = scan_json(
        cli, _image(tmp_path, {"a.txt": f"{flaky}\nnpm {slow}\n"}), "--verify", "--config", str(cfg), "--show-secrets"
    )
    v = _verdicts(report)
    assert v[flaky]["verdict"] == "unknown" and "500" in v[flaky]["evidence"]
    assert v[slow]["verdict"] == "unknown"


def test_nothing_is_sent_without_verify_or_for_disabled_providers(cli, fake, tmp_path: Path) -> None:
    token, npm = secretgen.github_pat(), secretgen.npm_token()
    fake.live("github", token)
    fake.live("npm", npm)
    cfg = _config(tmp_path, dict(fake.base))
    image = _image(tmp_path, {"a.txt": f"{token}\nnpm {npm}\n"})
    report = scan_json(cli, image, "--config", str(cfg))
    assert all(f["verification"] is None for f in report["findings"]) and fake.requests == []
    only_npm = scan_json(cli, image, "--config", str(cfg), "--verify", "--verify-provider", "npm", "--show-secrets")
    assert _verdicts(only_npm)[token] is None and _verdicts(only_npm)[npm]["verdict"] == "live"
    assert fake.calls("github") == 0


def test_aws_key_pairs_through_sts(cli, moto_auth_endpoint: str, tmp_path: Path) -> None:
    live_id, live_secret, dead_id, dead_secret = provider_fakes.aws_keys(moto_auth_endpoint)
    files = {
        "root/.aws/credentials": f"[default]\naws_access_key_id = {live_id}\naws_secret_access_key = {live_secret}\n",
        "app/.env": f"AWS_ACCESS_KEY_ID={dead_id}\nAWS_SECRET_ACCESS_KEY={dead_secret}\n",
    }
    cfg = _config(tmp_path, {"aws": moto_auth_endpoint})
    report = scan_json(cli, _image(tmp_path, files), "--verify", "--config", str(cfg), "--show-secrets")
    v = _verdicts(report)
    assert v[live_id]["verdict"] == "live" and v[live_secret]["verdict"] == "live"
    assert "account" in v[live_id]["evidence"]
    assert v[dead_id]["verdict"] == "revoked" and v[dead_secret]["verdict"] == "revoked"
    text = cli("scan", _image(tmp_path, files), "--verify", "--config", str(cfg), "-q").out
    assert "verified: LIVE (aws" in text and "verified: REVOKED (aws" in text
    assert live_secret not in text and dead_secret not in text
    # a found key signs nothing that crosses a network in plain HTTP
    plain = _config(tmp_path, {"aws": "http://sts.example.com:4566"})
    v = _verdicts(scan_json(cli, _image(tmp_path, files), "--verify", "--config", str(plain), "--show-secrets"))
    assert v[live_id]["verdict"] == "unknown"
    assert v[live_id]["evidence"] == (
        "refusing to send a request signed with the found key to http://sts.example.com:4566: only https, or "
        "plain http to this machine (loopback)"
    )


def test_a_live_aws_key_says_when_it_was_last_used_where_it_may(cli, moto_auth_endpoint: str, tmp_path: Path) -> None:
    """GetAccessKeyLastUsed, asked with the found key itself: its date and service where the key's
    policy allows the call, a plain "not known" where it does not (the verdict stands either way)."""
    allowed = provider_fakes.aws_keys(moto_auth_endpoint, user_name="ci-deployer")
    other = provider_fakes.aws_keys(moto_auth_endpoint, user_name="ci-reader")
    provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=False)
    try:
        iam = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client("iam", endpoint_url=moto_auth_endpoint)
        statement = {"Effect": "Allow", "Action": "iam:GetAccessKeyLastUsed", "Resource": "*"}
        iam.put_user_policy(
            UserName="ci-deployer",
            PolicyName="own-last-use",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
    finally:
        provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=True)
    files = {
        "root/.aws/credentials": f"[default]\naws_access_key_id = {allowed.live_key_id}\n"
        f"aws_secret_access_key = {allowed.live_secret}\n",
        "app/.env": f"AWS_ACCESS_KEY_ID={other.live_key_id}\nAWS_SECRET_ACCESS_KEY={other.live_secret}\n",
    }
    cfg = _config(tmp_path, {"aws": moto_auth_endpoint})
    v = _verdicts(scan_json(cli, _image(tmp_path, files), "--verify", "--config", str(cfg), "--show-secrets"))
    evidence = v[allowed.live_key_id]["evidence"]
    assert v[allowed.live_key_id]["verdict"] == "live"
    assert re.search(
        r"last used 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \((sts|iam), us-east-1; user ci-deployer\)", evidence
    ), evidence
    assert v[other.live_key_id]["verdict"] == "live"
    assert "last use not known: this key may not call iam:GetAccessKeyLastUsed" in v[other.live_key_id]["evidence"]
    assert allowed.live_secret not in json.dumps(list(v.values())) and other.live_secret not in json.dumps(
        list(v.values())
    )


def test_requests_are_rate_limited_per_provider(cli, fake, tmp_path: Path) -> None:
    tokens = [secretgen.github_pat() for _ in range(4)]
    for token in tokens:
        fake.live("github", token)
    cfg = tmp_path / "secretscan.yaml"
    cfg.write_text(json.dumps({"verify": {"endpoints": dict(fake.base), "rate_per_second": 4}}))
    scan_json(cli, _image(tmp_path, {"a.txt": "\n".join(tokens) + "\n"}), "--verify", "--config", str(cfg))
    times = sorted(r["at"] for r in fake.requests if r["provider"] == "github")
    assert len(times) == 4
    assert all(later - earlier >= 0.2 for earlier, later in zip(times, times[1:], strict=False)), (
        "at most 4 requests a second"
    )
