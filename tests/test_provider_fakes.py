"""The fake providers answer live / revoked / unknown credentials as the real ones document,
and moto (own process, auth enforced) tells a live AWS key from a deleted or unknown one.

Everything talks to 127.0.0.1 only; tokens are generated per run (secretgen)."""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator

import provider_fakes
import pytest
import secretgen
from provider_fakes import PROVIDERS, ProviderFake

requests = pytest.importorskip("requests")


@pytest.fixture
def fake() -> Iterator[ProviderFake]:
    with ProviderFake() as f:
        yield f


def _no_token_leaks(fake: ProviderFake, *tokens: str) -> None:
    log = json.dumps(fake.requests)
    for token in tokens:
        assert token not in log


def test_one_loopback_server_serves_every_provider(fake: ProviderFake) -> None:
    assert set(fake.base) == set(PROVIDERS)
    port = fake.url.rsplit(":", 1)[1]
    for provider, base in fake.base.items():
        assert base == f"http://127.0.0.1:{port}/{provider}"
    assert requests.get(fake.url + "/nope/x", timeout=5).status_code == 404


# --------------------------------------------------------------------------- github


def test_github(fake: ProviderFake) -> None:
    live, revoked, unknown = secretgen.github_pat(), secretgen.github_pat(), secretgen.github_pat()
    fake.live("github", live, login="octo-verify", id=4242)
    fake.live("github", revoked)
    fake.revoke("github", revoked)
    url = fake.base["github"] + "/user"
    accept = {"Accept": "application/vnd.github+json"}

    for scheme in ("token", "Bearer"):
        r = requests.get(url, headers={**accept, "Authorization": f"{scheme} {live}"}, timeout=5)
        assert r.status_code == 200
        assert r.json()["login"] == "octo-verify" and r.json()["id"] == 4242 and r.json()["type"] == "User"
        assert r.headers["X-OAuth-Scopes"] == "repo, read:org"
        assert r.headers["X-GitHub-Request-Id"]
    assert requests.get(url, auth=("x-access-token", live), timeout=5).status_code == 200  # basic, token as password

    bad = {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}
    for token in (revoked, unknown):
        r = requests.get(url, headers={**accept, "Authorization": f"token {token}"}, timeout=5)
        assert (r.status_code, r.json()) == (401, bad)
    r = requests.get(url, headers=accept, timeout=5)
    assert r.status_code == 401 and r.json()["message"] == "Requires authentication"
    # GitHub rejects requests without a User-Agent (http.client sends none; urllib3 would add one)
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=5)
    conn.request("GET", urllib.parse.urlsplit(url).path, headers={"Authorization": f"token {live}"})
    resp = conn.getresponse()
    assert resp.status == 403 and b"User-Agent" in resp.read()
    conn.close()
    assert fake.calls("github") == 7
    assert {r["auth"] for r in fake.requests} >= {"token", "Bearer", "Basic"}
    _no_token_leaks(fake, live, revoked, unknown)


def test_github_fine_grained_token_has_no_scopes_header(fake: ProviderFake) -> None:
    token = secretgen.github_fine_grained()
    fake.live("github", token, scopes=None, expires="2031-01-01 00:00:00 UTC")
    r = requests.get(fake.base["github"] + "/user", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert r.status_code == 200
    assert "X-OAuth-Scopes" not in r.headers
    assert r.headers["github-authentication-token-expiration"] == "2031-01-01 00:00:00 UTC"


# --------------------------------------------------------------------------- gitlab


def test_gitlab(fake: ProviderFake) -> None:
    live, revoked, unknown = secretgen.gitlab_pat(), secretgen.gitlab_pat(), secretgen.gitlab_pat()
    fake.live("gitlab", live, name="deploy", scopes=["read_api"], user_id=77)
    fake.revoke("gitlab", revoked)
    url = fake.base["gitlab"] + "/api/v4/personal_access_tokens/self"

    for headers in ({"PRIVATE-TOKEN": live}, {"Authorization": f"Bearer {live}"}):
        r = requests.get(url, headers=headers, timeout=5)
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == "deploy" and body["scopes"] == ["read_api"] and body["user_id"] == 77
        assert body["revoked"] is False and body["active"] is True
        assert {"id", "created_at", "last_used_at", "expires_at"} <= set(body)

    r = requests.get(url, headers={"PRIVATE-TOKEN": revoked}, timeout=5)
    assert r.status_code == 401
    assert r.json() == {
        "error": "invalid_token",
        "error_description": "Token was revoked. You have to re-authorize from the user.",
    }
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    for headers in ({"PRIVATE-TOKEN": unknown}, {}):
        r = requests.get(url, headers=headers, timeout=5)
        assert (r.status_code, r.json()) == (401, {"message": "401 Unauthorized"})

    # the token in the query string works too, and is not logged
    assert requests.get(url, params={"private_token": live}, timeout=5).status_code == 200
    assert fake.requests[-1]["path"] == "/api/v4/personal_access_tokens/self"
    assert (
        requests.get(fake.base["gitlab"] + "/api/v4/user", headers={"PRIVATE-TOKEN": live}, timeout=5).json()["id"]
        == 77
    )
    _no_token_leaks(fake, live, revoked, unknown)


# --------------------------------------------------------------------------- slack


def test_slack(fake: ProviderFake) -> None:
    bot = secretgen.slack_bot_token()
    user = secretgen.slack_bot_token().replace("xoxb-", "xoxp-", 1)
    revoked_bot, revoked_user = secretgen.slack_bot_token(), secretgen.slack_bot_token().replace("xoxb-", "xoxp-", 1)
    unknown = secretgen.slack_bot_token()
    fake.live("slack", bot, team="Acme", user="deploybot", team_id="T0ACME", user_id="U0BOT")
    fake.live("slack", user, team="Acme", user="grace")
    fake.revoke("slack", revoked_bot)
    fake.revoke("slack", revoked_user)
    url = fake.base["slack"] + "/api/auth.test"

    def call(token: str | None) -> dict:
        r = requests.post(url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=5)
        assert r.status_code == 200  # Slack answers errors with 200 and ok:false
        return r.json()

    body = call(bot)
    assert body["ok"] is True and body["team"] == "Acme" and body["user"] == "deploybot"
    assert body["team_id"] == "T0ACME" and body["user_id"] == "U0BOT" and body["bot_id"].startswith("B")
    assert body["url"].startswith("https://") and body["url"].endswith(".slack.com/")
    body = call(user)
    assert body["ok"] is True and body["user"] == "grace" and "bot_id" not in body
    assert call(revoked_user) == {"ok": False, "error": "token_revoked"}
    assert call(revoked_bot) == {"ok": False, "error": "account_inactive"}
    assert call(unknown) == {"ok": False, "error": "invalid_auth"}
    assert call(None) == {"ok": False, "error": "not_authed"}
    # the documented alternative: token as a POST parameter
    assert requests.post(url, data={"token": bot}, timeout=5).json()["ok"] is True
    _no_token_leaks(fake, bot, user, revoked_bot, revoked_user, unknown)


# --------------------------------------------------------------------------- stripe


def test_stripe(fake: ProviderFake) -> None:
    live, revoked, unknown = (
        secretgen.stripe_live_secret(),
        secretgen.stripe_live_secret(),
        secretgen.stripe_live_secret(),
    )
    restricted = secretgen.stripe_live_secret().replace("sk_live_", "rk_live_", 1)
    test_mode = secretgen.stripe_live_secret().replace("sk_live_", "sk_test_", 1)
    fake.live("stripe", live)
    fake.live("stripe", test_mode)
    fake.live("stripe", restricted, balance_read=False, account="acct_1TESTACCT")
    fake.revoke("stripe", revoked)
    url = fake.base["stripe"] + "/v1/balance"

    for kwargs in ({"headers": {"Authorization": f"Bearer {live}"}}, {"auth": (live, "")}):
        r = requests.get(url, timeout=5, **kwargs)
        assert r.status_code == 200
        assert r.json()["object"] == "balance" and r.json()["livemode"] is True
        assert r.headers["Request-Id"].startswith("req_")
    assert requests.get(url, auth=(test_mode, ""), timeout=5).json()["livemode"] is False

    r = requests.get(url, auth=(unknown, ""), timeout=5)
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["message"] == "Invalid API Key provided: sk_live_" + "*" * (len(unknown) - 12) + unknown[-4:]

    r = requests.get(url, headers={"Authorization": f"Bearer {revoked}"}, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "api_key_expired"
    assert r.json()["error"]["message"].startswith("Expired API Key provided: sk_live_*")

    r = requests.get(url, headers={"Authorization": f"Bearer {restricted}"}, timeout=5)
    assert r.status_code == 403  # live, just not allowed to read the balance
    assert "rak_balance_read" in r.json()["error"]["message"] and "acct_1TESTACCT" in r.json()["error"]["message"]

    r = requests.get(url, timeout=5)
    assert r.status_code == 401 and "You did not provide an API key" in r.json()["error"]["message"]
    for resp_token in (live, revoked, unknown, restricted):
        assert resp_token not in r.text
    _no_token_leaks(fake, live, revoked, unknown, restricted, test_mode)


# --------------------------------------------------------------------------- openai


def test_openai(fake: ProviderFake) -> None:
    live, revoked, unknown = secretgen.openai_key(), secretgen.openai_key(), secretgen.openai_key()
    fake.live("openai", live, models=["gpt-4o-mini"], organization="org-verifytest")
    fake.revoke("openai", revoked)
    url = fake.base["openai"] + "/v1/models"

    r = requests.get(url, headers={"Authorization": f"Bearer {live}"}, timeout=5)
    assert r.status_code == 200
    assert r.json()["object"] == "list" and [m["id"] for m in r.json()["data"]] == ["gpt-4o-mini"]
    assert r.headers["openai-organization"] == "org-verifytest"

    for token in (revoked, unknown):
        r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 401
        err = r.json()["error"]
        assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", None, "invalid_api_key")
        assert err["message"].startswith(f"Incorrect API key provided: sk-proj-****{token[-4:]}. ")
        assert token not in r.text
    r = requests.get(url, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] is None
    _no_token_leaks(fake, live, revoked, unknown)


# --------------------------------------------------------------------------- npm


def test_npm(fake: ProviderFake) -> None:
    live, revoked, unknown = secretgen.npm_token(), secretgen.npm_token(), secretgen.npm_token()
    fake.live("npm", live, username="release-bot")
    fake.revoke("npm", revoked)
    url = fake.base["npm"] + "/-/whoami"
    r = requests.get(url, headers={"Authorization": f"Bearer {live}"}, timeout=5)
    assert (r.status_code, r.json()) == (200, {"username": "release-bot"})
    for headers in ({"Authorization": f"Bearer {revoked}"}, {"Authorization": f"Bearer {unknown}"}, {}):
        assert requests.get(url, headers=headers, timeout=5).status_code == 401
    _no_token_leaks(fake, live, revoked, unknown)


# --------------------------------------------------------------------------- log, flakiness, delays


def test_requests_log_has_no_tokens_and_one_entry_per_call(fake: ProviderFake) -> None:
    token = secretgen.slack_bot_token()
    fake.live("slack", token)
    requests.post(fake.base["slack"] + "/api/auth.test", params={"token": token}, timeout=5)
    assert [{k: v for k, v in r.items() if k != "at"} for r in fake.requests] == [
        {"provider": "slack", "method": "POST", "path": "/api/auth.test", "status": 200, "auth": "query"}
    ]
    _no_token_leaks(fake, token)
    fake.reset_log()
    assert fake.requests == [] and fake.calls("slack") == 0


def test_live_rejects_unknown_identity_keys_and_providers(fake: ProviderFake) -> None:
    with pytest.raises(TypeError, match="loginn"):
        fake.live("github", secretgen.github_pat(), loginn="typo")
    with pytest.raises(ValueError, match="bitbucket"):
        fake.live("bitbucket", "x")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_set_flaky_answers_the_status_then_recovers(fake: ProviderFake, provider: str) -> None:
    token = {
        "github": secretgen.github_pat,
        "gitlab": secretgen.gitlab_pat,
        "slack": secretgen.slack_bot_token,
        "stripe": secretgen.stripe_live_secret,
        "openai": secretgen.openai_key,
        "npm": secretgen.npm_token,
    }[provider]()
    fake.live(provider, token)
    method, path = {
        "github": ("GET", "/user"),
        "gitlab": ("GET", "/api/v4/personal_access_tokens/self"),
        "slack": ("POST", "/api/auth.test"),
        "stripe": ("GET", "/v1/balance"),
        "openai": ("GET", "/v1/models"),
        "npm": ("GET", "/-/whoami"),
    }[provider]
    url = fake.base[provider] + path
    headers = {"Authorization": f"Bearer {token}"}

    fake.set_flaky(provider, status=500, times=2)
    assert [requests.request(method, url, headers=headers, timeout=5).status_code for _ in range(3)] == [500, 500, 200]
    fake.set_flaky(provider, status=429, times=1, retry_after="7")
    r = requests.request(method, url, headers=headers, timeout=5)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert requests.request(method, url, headers=headers, timeout=5).status_code == 200
    assert fake.calls(provider) == 5
    assert [e["status"] for e in fake.requests] == [500, 500, 200, 429, 200]


def test_delay_seconds_makes_a_client_time_out() -> None:
    token = secretgen.github_pat()
    with ProviderFake(delay_seconds={"github": 5.0}) as fake:
        fake.live("github", token)
        fake.live("npm", secretgen.npm_token())
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.get(fake.base["github"] + "/user", headers={"Authorization": f"token {token}"}, timeout=0.3)
        assert requests.get(fake.base["npm"] + "/-/whoami", timeout=5).status_code == 401  # other providers: no delay
        fake.delay_seconds["github"] = 0
        r = requests.get(fake.base["github"] + "/user", headers={"Authorization": f"token {token}"}, timeout=5)
        assert r.status_code == 200
    assert time.monotonic() - started < 4  # closing does not wait for the delayed handler


def test_basic_auth_header_is_parsed_not_logged(fake: ProviderFake) -> None:
    key = secretgen.stripe_live_secret()
    fake.live("stripe", key)
    header = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    assert requests.get(fake.base["stripe"] + "/v1/balance", headers={"Authorization": header}, timeout=5).ok
    assert fake.requests[-1]["auth"] == "Basic"
    _no_token_leaks(fake, key, header)


# --------------------------------------------------------------------------- AWS (moto, auth enforced)


def _sts(endpoint: str, key_id: str, secret: str):  # type: ignore[no-untyped-def]
    import boto3

    session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1")
    return session.client("sts", endpoint_url=endpoint)


def _sts_error(endpoint: str, key_id: str, secret: str) -> tuple[str, int]:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        _sts(endpoint, key_id, secret).get_caller_identity()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_moto_sts_tells_live_from_revoked_and_unknown_keys(moto_auth_endpoint: str) -> None:
    assert moto_auth_endpoint.startswith("http://127.0.0.1:")
    keys = provider_fakes.aws_keys(moto_auth_endpoint, user_name="leaky-ci")
    live_id, live_secret, revoked_id, revoked_secret = keys
    assert live_id.startswith("AKIA") and revoked_id.startswith("AKIA") and live_id != revoked_id

    ident = _sts(moto_auth_endpoint, live_id, live_secret).get_caller_identity()
    assert ident["Arn"] == "arn:aws:iam::123456789012:user/leaky-ci"
    assert ident["Account"] == "123456789012" and ident["UserId"]

    assert _sts_error(moto_auth_endpoint, revoked_id, revoked_secret) == ("InvalidClientTokenId", 403)
    unknown = (secretgen.aws_access_key_id(), secretgen.aws_secret_access_key())
    assert _sts_error(moto_auth_endpoint, *unknown) == ("InvalidClientTokenId", 403)
    assert _sts_error(moto_auth_endpoint, live_id, secretgen.aws_secret_access_key()) == ("SignatureDoesNotMatch", 403)
    # the fixture's ambient "testing" credentials are not accepted either
    assert _sts_error(moto_auth_endpoint, "testing", "testing") == ("InvalidClientTokenId", 403)


def test_moto_auth_state_is_reset_between_tests(moto_auth_endpoint: str) -> None:
    """Keys from the previous test are gone (moto_reset), and auth is enforced again."""
    import boto3

    iam = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("iam", endpoint_url=moto_auth_endpoint)
    provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=False)
    try:
        assert [u["UserName"] for u in iam.list_users()["Users"]] == []
    finally:
        provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=True)


def test_moto_inactive_keys_still_authenticate(moto_auth_endpoint: str) -> None:
    """A moto limitation the verifier tests must not rely on: moto ignores an access key's
    Status, so an Inactive key passes (real AWS: InvalidClientTokenId). Revoke by deleting.
    If this starts failing, moto learnt key status: aws_keys can then deactivate instead."""
    import boto3

    live_id, live_secret, _, _ = provider_fakes.aws_keys(moto_auth_endpoint, user_name="inactive-probe")
    provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=False)
    iam = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("iam", endpoint_url=moto_auth_endpoint)
    iam.update_access_key(UserName="inactive-probe", AccessKeyId=live_id, Status="Inactive")
    provider_fakes.moto_set_auth(moto_auth_endpoint, enforce=True)
    assert _sts(moto_auth_endpoint, live_id, live_secret).get_caller_identity()["Arn"].endswith("user/inactive-probe")


def test_aws_keys_refuses_the_in_process_moto(moto_endpoint: str, moto_auth_endpoint: str) -> None:
    """Enforcing auth on the in-process ThreadedMotoServer would enforce it process-wide;
    aws_keys refuses, and the in-process moto keeps accepting unsigned "testing" keys."""
    import boto3

    with pytest.raises(RuntimeError, match="inside this test process"):
        provider_fakes.aws_keys(moto_endpoint)
    ecr = boto3.client("ecr", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert ecr.describe_repositories()["repositories"] == []
    # ...while the separate process still enforces
    assert _sts_error(moto_auth_endpoint, "testing", "testing") == ("InvalidClientTokenId", 403)
