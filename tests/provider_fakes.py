"""Fake credential providers for `--verify` tests: loopback only, never the internet.

`ProviderFake` is one threaded HTTP server on 127.0.0.1 (kernel-picked port)
that answers, under a path prefix per provider, the one call each verifier
makes, the way the real provider answers it:

| provider | call (below `base[provider]`) | live | revoked | unknown |
|---|---|---|---|---|
| github | `GET /user`, `Authorization: token T` / `Bearer T` (or Basic, T as password) | 200 user + `X-OAuth-Scopes` | 401 Bad credentials | 401 Bad credentials |
| gitlab | `GET /api/v4/personal_access_tokens/self` (also `/api/v4/user`), `PRIVATE-TOKEN: T` / `Bearer T` | 200 token record | 401 `invalid_token` "Token was revoked..." | 401 `{"message":"401 Unauthorized"}` |
| slack | `POST /api/auth.test`, `Bearer T` (or form `token=T`) | 200 `ok: true` | 200 `ok: false`, `token_revoked` (`account_inactive` for xoxb-) | 200 `ok: false`, `invalid_auth` |
| stripe | `GET /v1/balance`, `Bearer K` or Basic `K:` | 200 balance (403 for a restricted key without balance read) | 401 `api_key_expired` | 401 "Invalid API Key provided: sk_live_***1234" |
| openai | `GET /v1/models`, `Bearer K` | 200 model list | 401 `invalid_api_key` | 401 `invalid_api_key` |
| npm | `GET /-/whoami`, `Bearer T` | 200 `{"username"}` | 401 | 401 |

Sources for these shapes (checked with the search tool): trufflehog's detectors
(pkg/detectors/{github/v1,gitlab/v1,slack,stripe,openai,npm/registry}) for
the endpoints and how answers are read; GitLab's doc/api/personal_access_tokens.md
and lib/api/api_guard.rb (the revoked-token message); docs.slack.dev
auth.test; Stripe API reference error examples ("Invalid API Key provided:
sk_test_****1234", code api_key_expired, the restricted-key 403 "Having the
'rak_..._read' permission would allow this request to continue."); OpenAI's
help article 6891781 and many client fixtures ("Incorrect API key provided:
sk-proj-****abcd. You can find your API key at ...", code invalid_api_key).
npm's 401 status is confirmed (npm CLI issues, trufflehog); its body is not
documented anywhere I could find, so verifiers must judge npm by the status.

Every request is logged in `requests` as {provider, method, path, status,
auth}: `path` is below the provider prefix and without its query string (a
token may be passed as ?private_token= / token=), `auth` is the scheme used
(never the value). Error bodies mask keys the way the provider does (prefix
plus last four), so a full token never leaves the server either.

AWS is not faked here: it is moto, in its own process with request signing
enforced (`moto_auth_server`, fixture `moto_auth_endpoint`), with keys made
by `aws_keys`. See `moto_auth_server` for why it cannot be a ThreadedMotoServer.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.client
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import servers
from servers import LOOPBACK

PROVIDERS = ("github", "gitlab", "slack", "stripe", "openai", "npm")

# identity keys each provider's `live(...)` accepts (anything else is a typo -> TypeError)
_IDENTITY_KEYS: dict[str, frozenset[str]] = {
    "github": frozenset({"login", "id", "type", "name", "scopes", "expires"}),
    "gitlab": frozenset({"id", "name", "scopes", "user_id", "username", "expires_at", "created_at", "last_used_at"}),
    "slack": frozenset({"url", "team", "user", "team_id", "user_id", "bot_id", "scopes"}),
    "stripe": frozenset({"livemode", "account", "balance_read", "available"}),
    "openai": frozenset({"models", "organization"}),
    "npm": frozenset({"username"}),
}

_GITHUB_DOCS = "https://docs.github.com/rest"


@dataclass
class _Credential:
    provider: str
    state: str  # "live" | "revoked"
    identity: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Flaky:
    status: int
    remaining: int
    retry_after: str | None


class ProviderFake:
    """The six providers on one loopback server; use as a context manager.

    ```
    with ProviderFake() as fake:
        fake.live("github", token, login="octo")
        requests.get(fake.base["github"] + "/user", headers={"Authorization": f"token {token}"})
    ```

    - `base`: provider -> base URL, e.g. "http://127.0.0.1:PORT/github"; point the verifier's
      API base at it (the provider's own paths follow it: `base["gitlab"] + "/api/v4/..."`).
    - `live(provider, token, **identity)` / `revoke(provider, token)`; any other token is unknown.
    - `set_flaky(provider, status=500, times=1)`: the next `times` requests get `status`
      (429 and 503 carry `Retry-After`), then normal answers resume.
    - `delay_seconds[provider] = s` (or the constructor's `delay_seconds=`): sleep before answering.
    - `requests`, `calls(provider)`, `reset_log()`.
    """

    def __init__(self, delay_seconds: Mapping[str, float] | None = None) -> None:
        for name in delay_seconds or {}:
            _check_provider(name)
        self.delay_seconds: dict[str, float] = {p: 0.0 for p in PROVIDERS}
        self.delay_seconds.update(delay_seconds or {})
        self.requests: list[dict[str, Any]] = []
        self.base: dict[str, str] = {}
        self.url = ""
        self._creds: dict[tuple[str, str], _Credential] = {}
        self._flaky: dict[str, _Flaky] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._stack: contextlib.ExitStack | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> ProviderFake:
        stack = contextlib.ExitStack()
        server = stack.enter_context(servers.serve_http(_ProviderHandler, fake=self))
        stack.callback(self._closing.set)  # runs first: wake delayed handlers so shutdown is quick
        self._stack = stack
        self.url = f"http://{LOOPBACK}:{server.server_address[1]}"
        self.base = {p: f"{self.url}/{p}" for p in PROVIDERS}
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    # ------------------------------------------------------------------ state

    def live(self, provider: str, token: str, **identity: Any) -> None:
        """Register `token` as a live credential; `identity` fills the answer (see _IDENTITY_KEYS)."""
        _check_provider(provider)
        unknown = set(identity) - _IDENTITY_KEYS[provider]
        if unknown:
            raise TypeError(
                f"{provider}: unknown identity keys {sorted(unknown)}; use {sorted(_IDENTITY_KEYS[provider])}"
            )
        with self._lock:
            self._creds[(provider, token)] = _Credential(provider, "live", dict(identity))

    def revoke(self, provider: str, token: str) -> None:
        """`token` now answers as revoked (registering it if it was never live)."""
        _check_provider(provider)
        with self._lock:
            cred = self._creds.setdefault((provider, token), _Credential(provider, "revoked"))
            cred.state = "revoked"

    def set_flaky(self, provider: str, status: int = 500, times: int = 1, retry_after: str | None = "1") -> None:
        """Answer the next `times` requests to `provider` with `status` (the provider's error shape).

        429 and 503 answers carry `Retry-After: retry_after` (None: no header).
        """
        _check_provider(provider)
        with self._lock:
            self._flaky[provider] = _Flaky(status, times, retry_after)

    def calls(self, provider: str) -> int:
        _check_provider(provider)
        with self._lock:
            return sum(1 for r in self.requests if r["provider"] == provider)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------ used by the handler

    def _lookup(self, provider: str, token: str | None) -> _Credential | None:
        if not token:
            return None
        with self._lock:
            return self._creds.get((provider, token))

    def _take_flaky(self, provider: str) -> _Flaky | None:
        with self._lock:
            flaky = self._flaky.get(provider)
            if flaky is None or flaky.remaining <= 0:
                return None
            flaky.remaining -= 1
            return flaky

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append({**entry, "at": time.monotonic()})


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; one of {PROVIDERS}")


# --------------------------------------------------------------------------- helpers


def _request_id(prefix: str = "") -> str:
    return prefix + secrets.token_hex(8)


def _mask(token: str, prefixes: tuple[str, ...], stars: int | None = None) -> str:
    """A key as providers print it: its type prefix, stars, and the last four characters."""
    prefix = next((p for p in prefixes if token.startswith(p)), "")
    rest = token[len(prefix) :]
    if len(rest) <= 4:
        return prefix + "*" * len(rest)
    return prefix + "*" * (stars if stars is not None else len(rest) - 4) + rest[-4:]


def _stable_int(token: str, digits: int = 7) -> int:
    """A number derived from the token, so ids are stable per token without storing them."""
    return int(hashlib.sha256(token.encode()).hexdigest(), 16) % (9 * 10 ** (digits - 1)) + 10 ** (digits - 1)


@dataclass
class _Auth:
    scheme: str | None  # "token", "Bearer", "Basic", "PRIVATE-TOKEN", "form", "query", or None
    value: str | None


class _Answer(NamedTuple):
    status: int
    body: Any  # JSON-able, or bytes for a raw body
    headers: dict[str, str]


# --------------------------------------------------------------------------- the handler


class _ProviderHandler(servers._Handler):
    server: Any  # servers._Server with `.fake`

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake: ProviderFake = self.server.fake
        split = urllib.parse.urlsplit(self.path)
        _, _, rest = split.path.partition("/")
        provider, slash, sub = rest.partition("/")
        sub = slash + sub
        body = self.read_body() or b""
        if provider not in PROVIDERS:
            self._send(_Answer(404, {"error": "no such provider prefix"}, {}), fake, None, split.path, None)
            return
        auth = self._auth(provider, split.query, body)
        delay = fake.delay_seconds.get(provider, 0.0)
        if delay > 0 and fake._closing.wait(delay):
            return  # shutting down: drop the request
        flaky = fake._take_flaky(provider)
        if flaky is not None:
            answer = _flaky_answer(provider, flaky)
        else:
            route = getattr(self, f"_{provider}", None)
            answer = route(fake, sub, auth)
        self._send(answer, fake, provider, sub, auth)

    def _send(self, answer: _Answer, fake: ProviderFake, provider: str | None, path: str, auth: _Auth | None) -> None:
        fake._log(
            {
                "provider": provider,
                "method": self.command,
                "path": path,
                "status": answer.status,
                "auth": auth.scheme if auth else None,
            }
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out
            if isinstance(answer.body, bytes):
                self.reply(answer.status, answer.body, answer.headers)
            else:
                self.reply_json(answer.status, answer.body, answer.headers)

    # ------------------------------------------------------------------ credentials

    def _auth(self, provider: str, query: str, body: bytes) -> _Auth:
        header = self.headers.get("Authorization", "").strip()
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if provider == "gitlab" and self.headers.get("PRIVATE-TOKEN"):
            return _Auth("PRIVATE-TOKEN", self.headers["PRIVATE-TOKEN"].strip())
        if scheme.lower() == "bearer" and value:
            return _Auth("Bearer", value)
        if scheme.lower() == "token" and value and provider == "github":
            return _Auth("token", value)
        if scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return _Auth("Basic", None)
            # Stripe: key as the username, empty password; GitHub: token as the password
            return _Auth("Basic", password or user)
        params = urllib.parse.parse_qs(query)
        if provider == "gitlab" and params.get("private_token"):
            return _Auth("query", params["private_token"][0])
        if provider == "slack":
            if params.get("token"):
                return _Auth("query", params["token"][0])
            if "application/x-www-form-urlencoded" in self.headers.get("Content-Type", "") and body:
                form = urllib.parse.parse_qs(body.decode(errors="replace"))
                if form.get("token"):
                    return _Auth("form", form["token"][0])
        return _Auth(scheme or None, None) if header else _Auth(None, None)

    # ------------------------------------------------------------------ github

    def _github(self, fake: ProviderFake, path: str, auth: _Auth) -> _Answer:
        headers = {
            "X-GitHub-Request-Id": f"{_request_id().upper()[:4]}:{_request_id().upper()}",
            "X-GitHub-Media-Type": "github.v3; format=json",
        }
        if not self.headers.get("User-Agent"):
            # https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api#user-agent
            msg = (
                b"Request forbidden by administrative rules. "
                b"Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
                b"Check https://developer.github.com for other possible causes.\n"
            )
            return _Answer(403, msg, {**headers, "Content-Type": "text/plain; charset=utf-8"})
        if path != "/user" or self.command not in ("GET", "HEAD"):
            return _Answer(404, {"message": "Not Found", "documentation_url": _GITHUB_DOCS, "status": "404"}, headers)
        if auth.value is None:
            return _Answer(
                401,
                {
                    "message": "Requires authentication",
                    "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                    "status": "401",
                },
                headers,
            )
        cred = fake._lookup("github", auth.value)
        if cred is None or cred.state != "live":
            return _Answer(
                401, {"message": "Bad credentials", "documentation_url": _GITHUB_DOCS, "status": "401"}, headers
            )
        ident = cred.identity
        login = ident.get("login", "octocat")
        uid = ident.get("id", _stable_int(auth.value, 8))
        user = {
            "login": login,
            "id": uid,
            "node_id": "U_" + base64.b64encode(str(uid).encode()).decode().rstrip("="),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "url": f"https://api.github.com/users/{login}",
            "html_url": f"https://github.com/{login}",
            "type": ident.get("type", "User"),
            "site_admin": False,
            "name": ident.get("name"),
            "company": None,
            "email": None,
            "location": None,
        }
        headers.update(
            {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "4999",
                "X-RateLimit-Used": "1",
                "X-RateLimit-Resource": "core",
                "X-Accepted-OAuth-Scopes": "",
            }
        )
        scopes = ident.get("scopes", "repo, read:org")
        if scopes is not None:  # fine-grained tokens get no X-OAuth-Scopes header
            headers["X-OAuth-Scopes"] = scopes
        if ident.get("expires"):
            headers["github-authentication-token-expiration"] = ident["expires"]
        return _Answer(200, user, headers)

    # ------------------------------------------------------------------ gitlab

    def _gitlab(self, fake: ProviderFake, path: str, auth: _Auth) -> _Answer:
        unauthorized = _Answer(401, {"message": "401 Unauthorized"}, {})
        if path not in ("/api/v4/personal_access_tokens/self", "/api/v4/user") or self.command not in ("GET", "HEAD"):
            return _Answer(404, {"error": "404 Not Found"}, {})
        cred = fake._lookup("gitlab", auth.value)
        if cred is None:
            return unauthorized
        if cred.state != "live":
            # lib/api/api_guard.rb: RevokedError -> Rack::OAuth2 Bearer::Unauthorized(:invalid_token, ...)
            desc = "Token was revoked. You have to re-authorize from the user."
            return _Answer(
                401,
                {"error": "invalid_token", "error_description": desc},
                {
                    "WWW-Authenticate": f'Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description="{desc}"'
                },
            )
        ident = cred.identity
        user_id = ident.get("user_id", _stable_int(auth.value or "", 6))
        if path == "/api/v4/user":
            username = ident.get("username", f"user{user_id}")
            return _Answer(
                200,
                {
                    "id": user_id,
                    "username": username,
                    "name": username.title(),
                    "state": "active",
                    "web_url": f"https://gitlab.com/{username}",
                },
                {},
            )
        return _Answer(
            200,
            {
                "id": ident.get("id", _stable_int(auth.value or "", 5)),
                "name": ident.get("name", "ci-token"),
                "revoked": False,
                "created_at": ident.get("created_at", "2025-01-15T09:30:00.000Z"),
                "description": None,
                "scopes": ident.get("scopes", ["api", "read_user"]),
                "user_id": user_id,
                "last_used_at": ident.get("last_used_at", "2025-06-01T12:00:00.000Z"),
                "active": True,
                "expires_at": ident.get("expires_at"),
            },
            {},
        )

    # ------------------------------------------------------------------ slack

    def _slack(self, fake: ProviderFake, path: str, auth: _Auth) -> _Answer:
        json_ct = {"Content-Type": "application/json; charset=utf-8"}
        if path != "/api/auth.test":
            return _Answer(404, {"ok": False, "error": "unknown_method"}, json_ct)
        if auth.value is None:
            return _Answer(200, {"ok": False, "error": "not_authed"}, json_ct)
        cred = fake._lookup("slack", auth.value)
        if cred is None:
            return _Answer(200, {"ok": False, "error": "invalid_auth"}, json_ct)
        if cred.state != "live":
            # auth.test docs: account_inactive for a bot token of a deleted user/workspace,
            # token_revoked for a user token (deleted user/workspace, or the app was removed)
            error = "account_inactive" if auth.value.startswith("xoxb-") else "token_revoked"
            return _Answer(200, {"ok": False, "error": error}, json_ct)
        ident = cred.identity
        team = ident.get("team", "Subarachnoid Workspace")
        answer: dict[str, Any] = {
            "ok": True,
            "url": ident.get("url", "https://subarachnoid.slack.com/"),
            "team": team,
            "user": ident.get("user", "grace"),
            "team_id": ident.get("team_id", "T12345678"),
            "user_id": ident.get("user_id", "U12345678"),
        }
        if "bot_id" in ident or auth.value.startswith("xoxb-"):
            answer["bot_id"] = ident.get("bot_id", "B12345678")
            answer["is_enterprise_install"] = False
        headers = dict(json_ct)
        scopes = ident.get("scopes", "chat:write,users:read")
        if scopes:
            headers["x-oauth-scopes"] = scopes
        return _Answer(200, answer, headers)

    # ------------------------------------------------------------------ stripe

    def _stripe(self, fake: ProviderFake, path: str, auth: _Auth) -> _Answer:
        headers = {"Request-Id": _request_id("req_")}
        if path != "/v1/balance" or self.command not in ("GET", "HEAD"):
            return _Answer(
                404,
                {
                    "error": {
                        "message": f"Unrecognized request URL ({self.command}: {path}).",
                        "type": "invalid_request_error",
                    }
                },
                headers,
            )
        if auth.value is None:
            msg = (
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
                "for details, or we can help at https://support.stripe.com/."
            )
            return _Answer(401, {"error": {"message": msg, "type": "invalid_request_error"}}, headers)
        masked = _mask(auth.value, ("sk_live_", "sk_test_", "rk_live_", "rk_test_"))
        cred = fake._lookup("stripe", auth.value)
        if cred is None:
            return _Answer(
                401,
                {"error": {"message": f"Invalid API Key provided: {masked}", "type": "invalid_request_error"}},
                headers,
            )
        if cred.state != "live":
            return _Answer(
                401,
                {
                    "error": {
                        "code": "api_key_expired",
                        "doc_url": "https://stripe.com/docs/error-codes/api-key-expired",
                        "message": f"Expired API Key provided: {masked}",
                        "type": "invalid_request_error",
                    }
                },
                headers,
            )
        ident = cred.identity
        account = ident.get("account", "acct_1" + hashlib.sha256(auth.value.encode()).hexdigest()[:15].upper())
        if not ident.get("balance_read", True):
            msg = (
                f"The provided key '{masked}' does not have the required permissions for this endpoint on account "
                f"'{account}'. Having the 'rak_balance_read' permission would allow this request to continue."
            )
            return _Answer(403, {"error": {"message": msg, "type": "invalid_request_error"}}, headers)
        livemode = ident.get("livemode", "_live_" in auth.value[:8])
        amount = ident.get("available", 666670)
        return _Answer(
            200,
            {
                "object": "balance",
                "available": [{"amount": amount, "currency": "usd", "source_types": {"card": amount}}],
                "connect_reserved": [{"amount": 0, "currency": "usd"}],
                "livemode": livemode,
                "pending": [{"amount": 61414, "currency": "usd", "source_types": {"card": 61414}}],
            },
            headers,
        )

    # ------------------------------------------------------------------ openai

    def _openai(self, fake: ProviderFake, path: str, auth: _Auth) -> _Answer:
        headers = {"x-request-id": _request_id("req_")}
        if path != "/v1/models" or self.command not in ("GET", "HEAD"):
            return _Answer(
                404,
                {
                    "error": {
                        "message": f"Invalid URL ({self.command} {path})",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                headers,
            )
        if auth.value is None:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
                "you're accessing the API from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys."
            )
            return _Answer(
                401, {"error": {"message": msg, "type": "invalid_request_error", "param": None, "code": None}}, headers
            )
        cred = fake._lookup("openai", auth.value)
        if cred is None or cred.state != "live":
            masked = _mask(auth.value, ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"), stars=4)
            msg = (
                f"Incorrect API key provided: {masked}. "
                "You can find your API key at https://platform.openai.com/account/api-keys."
            )
            return _Answer(
                401,
                {"error": {"message": msg, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
                headers,
            )
        ident = cred.identity
        models = ident.get("models", ["gpt-4o-mini", "text-embedding-3-small"])
        if ident.get("organization"):
            headers["openai-organization"] = ident["organization"]
        return _Answer(
            200,
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"} for m in models],
            },
            headers,
        )

    # ------------------------------------------------------------------ npm

    def _npm(self, fake: ProviderFake, path: str, auth: _Auth) -> _Answer:
        if path != "/-/whoami" or self.command not in ("GET", "HEAD"):
            return _Answer(404, {"error": "Not found"}, {})
        cred = fake._lookup("npm", auth.value)
        if cred is None or cred.state != "live":
            # 401 is what registry.npmjs.org answers (npm CLI: "401 Unauthorized - GET .../-/whoami");
            # the body is undocumented, so verifiers must decide on the status.
            return _Answer(401, {"error": "Unauthorized"}, {})
        return _Answer(200, {"username": cred.identity.get("username", "npm-user")}, {})


def _flaky_answer(provider: str, flaky: _Flaky) -> _Answer:
    """`flaky.status` in the provider's error shape (approximate for 5xx: nobody documents those)."""
    status = flaky.status
    headers: dict[str, str] = {}
    if status in (429, 503) and flaky.retry_after is not None:
        headers["Retry-After"] = flaky.retry_after
    limited = status == 429
    if provider == "github":
        if limited:
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 60)})
            body: Any = {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                "status": "429",
            }
        else:
            body = {"message": "Server Error", "status": str(status)}
    elif provider == "gitlab":
        body = b"Retry later\n" if limited else {"message": f"{status} Internal Server Error"}
        if limited:
            headers["Content-Type"] = "text/plain"
    elif provider == "slack":
        body = {"ok": False, "error": "ratelimited"} if limited else {"ok": False, "error": "internal_error"}
    elif provider == "stripe":
        body = {
            "error": {
                "code": "rate_limit" if limited else None,
                "message": "Request rate limit exceeded." if limited else "An unknown error occurred",
                "type": "invalid_request_error" if limited else "api_error",
            }
        }
    elif provider == "openai":
        body = {
            "error": {
                "message": "Rate limit reached for requests"
                if limited
                else "The server had an error while processing your request. Sorry about that!",
                "type": "requests" if limited else "server_error",
                "param": None,
                "code": "rate_limit_exceeded" if limited else None,
            }
        }
    else:
        body = {"error": "Too Many Requests" if limited else "Internal Server Error"}
    return _Answer(status, body, headers)


# --------------------------------------------------------------------------- AWS (moto)


class AwsKeys(NamedTuple):
    live_key_id: str
    live_secret: str
    revoked_key_id: str
    revoked_secret: str


def _moto_post(endpoint: str, path: str, data: bytes = b"") -> dict[str, Any]:
    host = urllib.parse.urlsplit(endpoint).netloc
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request("POST", path, body=data)
        resp = conn.getresponse()
        payload = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"moto {path} answered {resp.status}: {payload[:200]!r}")
        return json.loads(payload or b"{}")
    finally:
        conn.close()


def moto_set_auth(endpoint: str, enforce: bool) -> str:
    """Turn moto's request authentication on (every request after this is checked) or off.

    `POST /moto-api/reset-auth` with the new INITIAL_NO_AUTH_ACTION_COUNT ("0":
    from now on, "inf": never) and resets moto's request counter; returns the
    previous value. The setting is a module global in the moto *process*, so
    only do this to a moto running in its own process (`moto_auth_server`).
    """
    answer = _moto_post(endpoint, "/moto-api/reset-auth", b"0" if enforce else b"inf")
    return str(answer.get("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT", "inf"))


def _in_this_process_auth_count() -> float | None:
    settings = sys.modules.get("moto.settings")
    return getattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", None) if settings else None


def aws_keys(endpoint: str, user_name: str | None = None, enforce: bool = True) -> AwsKeys:
    """Make an IAM user with a live and a revoked (deleted) access key on the moto at `endpoint`.

    Returns (live_key_id, live_secret, revoked_key_id, revoked_secret). Auth
    is lifted while the user and keys are made (no admin credentials are
    needed), then enforced (`enforce=True`) so `sts.get_caller_identity()`
    answers: live key -> UserId/Account/Arn (arn:aws:iam::123456789012:user/
    USER); deleted or never-issued key -> ClientError InvalidClientTokenId
    (HTTP 403); live key id with a wrong secret -> SignatureDoesNotMatch.

    The revoked key is *deleted*: moto 5.x ignores an access key's Status, so
    a key made Inactive with update_access_key still authenticates (real AWS
    answers InvalidClientTokenId for it).

    Refuses (RuntimeError, auth left off) a moto running inside this process,
    e.g. `moto_endpoint`'s ThreadedMotoServer: enforcing there would make every
    other moto user in the test process (ECR tests with "testing" keys) fail.
    """
    import boto3  # a test extra: imported on use, as servers.py does with moto

    previous = moto_set_auth(endpoint, enforce=False)
    name = user_name or f"secretscan-verify-{secrets.token_hex(4)}"
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    iam = session.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName=name)
    live = iam.create_access_key(UserName=name)["AccessKey"]
    revoked = iam.create_access_key(UserName=name)["AccessKey"]
    iam.delete_access_key(UserName=name, AccessKeyId=revoked["AccessKeyId"])
    if enforce:
        moto_set_auth(endpoint, enforce=True)
        if _in_this_process_auth_count() == 0:
            moto_set_auth(endpoint, enforce=False)
            raise RuntimeError(
                f"{endpoint} is a moto server inside this test process: its auth setting is process-wide, "
                "so it cannot be enforced for one server; use the moto_auth_endpoint fixture (own process)"
            )
    elif previous in ("0", "0.0"):
        moto_set_auth(endpoint, enforce=True)
    return AwsKeys(live["AccessKeyId"], live["SecretAccessKey"], revoked["AccessKeyId"], revoked["SecretAccessKey"])


def _moto_ready(host: str) -> bool:
    return servers._http_status(host, "/moto-api/data.json") == 200


@contextlib.contextmanager
def moto_auth_server(tmp_path: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """moto's server in its own process on 127.0.0.1, enforcing AWS request signing; yield its URL.

    Started as `python -m moto.server -H 127.0.0.1 -p PORT` with env
    INITIAL_NO_AUTH_ACTION_COUNT=0, so from the first request moto checks the
    SigV4 signature against its IAM access keys (moto/core/authorization.py,
    moto/iam/access_control.py): unknown or deleted key -> InvalidClientTokenId,
    wrong secret -> SignatureDoesNotMatch, sts:GetCallerIdentity always allowed.
    `aws_keys()` lifts the check while it makes the keys.

    Why a process and not a second ThreadedMotoServer: moto keeps both its
    backends (IAM users, keys) and the auth switch (moto.settings, and the
    request counter on ActionAuthenticatorMixin) in module globals, so every
    ThreadedMotoServer in the pytest process shares one state and one switch;
    enforcing auth on one would break `moto_endpoint`'s unsigned "testing" keys.
    The child gets none of our AWS_/MOTO_ env and dies with pytest.
    """
    servers.need("moto.server")
    root = Path(tempfile.mkdtemp(prefix="moto-auth-", dir=tmp_path))
    env = servers._clean_env(["AWS_", "MOTO_", "INITIAL_NO_AUTH_ACTION_COUNT", "TEST_SERVER_MODE"])
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    with contextlib.ExitStack() as stack:
        for attempt in range(3):
            port = servers.free_port()
            argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
            proc = servers.Process(argv, root / "moto.log", env)
            stack.callback(proc.stop)
            host = f"{LOOPBACK}:{port}"
            try:
                servers.wait_for(functools.partial(_moto_ready, host), 60, "moto server (auth enforced)", proc)
                break
            except RuntimeError:
                if attempt < 2 and "Address already in use" in proc.log():
                    continue  # another process took the port between free_port() and the bind
                raise
        yield f"http://{host}"
