"""Provider APIs that answer "is this token live?" with one read-only request.

Each entry says how to ask (method, path, how the token is sent) and how to read the answer
into a three-valued verdict. Anything not explicitly recognised as live or revoked is UNKNOWN,
with the HTTP status as evidence: an odd answer never counts as "revoked".

The table is read at every start (the verifiers' names, their default endpoints); requests is
imported by ``ask``, the one place that sends, so that reading it loads no HTTP stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from secretscan.models import Verdict

if TYPE_CHECKING:
    import requests

Reading = tuple[Verdict, str]


@dataclass(frozen=True)
class HttpProvider:
    name: str
    default_base: str
    method: str
    path: str
    headers: Callable[[str], dict[str, str]]
    read: Callable[[requests.Response], Reading]


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _by_status(
    live: Callable[[requests.Response], str], revoked: tuple[int, ...] = (401,)
) -> Callable[[requests.Response], Reading]:
    def read(response: requests.Response) -> Reading:
        if response.status_code == 200:
            return Verdict.LIVE, f"HTTP 200, {live(response)}"
        if response.status_code in revoked:
            return Verdict.REVOKED, f"HTTP {response.status_code}, rejected"
        return Verdict.UNKNOWN, f"HTTP {response.status_code}"

    return read


def _github(response: requests.Response) -> str:
    doc = _json(response)
    scopes = response.headers.get("X-OAuth-Scopes")
    return f"login {doc.get('login', '?')}" + (f", scopes: {scopes}" if scopes else "")


def _gitlab(response: requests.Response) -> Reading:
    doc = _json(response)
    if response.status_code == 200:
        if doc.get("revoked") or doc.get("active") is False:
            return Verdict.REVOKED, "HTTP 200, token revoked or inactive"
        scopes = ",".join(str(s) for s in doc.get("scopes") or [])
        return (
            Verdict.LIVE,
            f"HTTP 200, token {doc.get('name', '?')!s}, scopes {scopes}, expires {doc.get('expires_at')}",
        )
    if response.status_code == 401:
        return Verdict.REVOKED, "HTTP 401, rejected"
    return Verdict.UNKNOWN, f"HTTP {response.status_code}"


_SLACK_DEAD = {"invalid_auth", "token_revoked", "account_inactive", "token_expired", "not_authed"}


def _slack(response: requests.Response) -> Reading:
    doc = _json(response)
    if response.status_code != 200:
        return Verdict.UNKNOWN, f"HTTP {response.status_code}"
    if doc.get("ok") is True:
        return Verdict.LIVE, f"auth.test ok, team {doc.get('team', '?')}, user {doc.get('user', '?')}"
    error = str(doc.get("error", ""))
    if error in _SLACK_DEAD:
        return Verdict.REVOKED, f"auth.test error {error}"
    return Verdict.UNKNOWN, f"auth.test error {error or 'unreadable'}"


def _stripe(response: requests.Response) -> Reading:
    if response.status_code == 200:
        return Verdict.LIVE, f"HTTP 200, balance readable, livemode {_json(response).get('livemode')}"
    if response.status_code == 403:  # a restricted key without balance permission: valid nonetheless
        return Verdict.LIVE, "HTTP 403, restricted key (valid, no balance permission)"
    if response.status_code == 401:
        return Verdict.REVOKED, "HTTP 401, invalid API key"
    return Verdict.UNKNOWN, f"HTTP {response.status_code}"


def _openai(response: requests.Response) -> Reading:
    if response.status_code == 200:
        return Verdict.LIVE, f"HTTP 200, {len(_json(response).get('data') or [])} models listed"
    error = _json(response).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if response.status_code == 429 and code == "insufficient_quota":
        return Verdict.LIVE, "HTTP 429 insufficient_quota (valid key without quota)"
    if response.status_code == 401:
        return Verdict.REVOKED, f"HTTP 401, {code or 'invalid key'}"
    return Verdict.UNKNOWN, f"HTTP {response.status_code}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


HTTP_PROVIDERS: dict[str, HttpProvider] = {
    p.name: p
    for p in (
        HttpProvider(
            "github",
            "https://api.github.com",
            "GET",
            "/user",
            lambda t: {"Authorization": f"token {t}", "Accept": "application/vnd.github+json"},
            _by_status(_github),
        ),
        HttpProvider(
            "gitlab",
            "https://gitlab.com",
            "GET",
            "/api/v4/personal_access_tokens/self",
            lambda t: {"PRIVATE-TOKEN": t},
            _gitlab,
        ),
        HttpProvider("slack", "https://slack.com", "POST", "/api/auth.test", _bearer, _slack),
        HttpProvider("stripe", "https://api.stripe.com", "GET", "/v1/balance", _bearer, _stripe),
        HttpProvider("openai", "https://api.openai.com", "GET", "/v1/models", _bearer, _openai),
        HttpProvider(
            "npm",
            "https://registry.npmjs.org",
            "GET",
            "/-/whoami",
            _bearer,
            _by_status(lambda r: f"user {_json(r).get('username', '?')}"),
        ),
    )
}


def ask(provider: HttpProvider, base: str, token: str, timeout: float, session: requests.Session) -> Reading:
    import requests

    try:
        response = session.request(
            provider.method,
            base.rstrip("/") + provider.path,
            headers=provider.headers(token),
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.exceptions.RequestException as exc:
        return Verdict.UNKNOWN, f"no answer ({type(exc).__name__})"
    with response:
        return provider.read(response)
