"""``--verify``: ask each provider whether a found secret is live — opt-in, read-only requests,
one per distinct secret (cached by fingerprint), rate-limited per provider, only to the
endpoints the user enabled (defaults: the providers' public APIs; every one configurable).

Verdicts are three-valued. LIVE and REVOKED only on an answer the provider documents; timeouts,
rate limits and odd answers are UNKNOWN, with the evidence (status, account, token metadata —
never the secret).

requests is imported when a ``Verifier`` is made, not with this package: every run names
``VERIFIER_NAMES`` and ``VerifyOptions`` (options, help, config checks), and a run without
``--verify`` should not pay for loading an HTTP stack it never uses.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeAlias

from secretscan.detect.rules import RuleSet
from secretscan.models import Finding, Verdict, Verification
from secretscan.verify.aws import verify_aws
from secretscan.verify.http_providers import HTTP_PROVIDERS, ask
from secretscan.verify.vault_token import verify_vault_token

if TYPE_CHECKING:
    import requests

AWS_KEY_ID_RULE = "aws.access-key-id"
MAX_AWS_PAIRS = 8
PAIRED = frozenset({"aws"})
"""Checks that need two findings: an AWS secret key is verified with a key ID found beside it."""


@dataclass(frozen=True)
class VerifyOptions:
    providers: frozenset[str] = field(default_factory=lambda: VERIFIER_NAMES)
    """Which verifiers may send requests (all by default)."""
    endpoints: Mapping[str, str] = field(default_factory=dict)
    """provider -> base URL (``vault`` -> Vault address; ``aws`` -> STS endpoint)."""
    rate_per_second: float = 5.0
    timeout_seconds: float = 10.0

    def endpoint(self, provider: str) -> str | None:
        env = os.environ.get(f"SECRETSCAN_VERIFY_{provider.upper()}_URL")
        if provider in self.endpoints:
            return self.endpoints[provider]
        if env:
            return env
        if provider == "vault":
            return os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR")  # OpenBao's name for it
        if provider == "aws":
            return None  # boto3's own resolution (AWS_ENDPOINT_URL_STS, regions)
        return HTTP_PROVIDERS[provider].default_base


SecretCheck: TypeAlias = "Callable[[str, VerifyOptions, requests.Session], tuple[Verdict, str]]"
"""One found secret -> (verdict, evidence): the whole of a single-secret verifier."""


def _vault(secret: str, options: VerifyOptions, session: requests.Session) -> tuple[Verdict, str]:
    addr = options.endpoint("vault")
    if not addr:
        return Verdict.UNKNOWN, "no Vault address to ask (set VAULT_ADDR, BAO_ADDR or verify.endpoints.vault)"
    return verify_vault_token(secret, addr, options.timeout_seconds)


def _http(provider: str, secret: str, options: VerifyOptions, session: requests.Session) -> tuple[Verdict, str]:
    http = HTTP_PROVIDERS[provider]
    return ask(http, options.endpoint(provider) or http.default_base, secret, options.timeout_seconds, session)


CHECKS: Mapping[str, SecretCheck] = {
    "vault": _vault,
    **{name: functools.partial(_http, name) for name in HTTP_PROVIDERS},
}
"""The verifiers a rule's ``verifier:`` names: adding one is a module and an entry here (an HTTP
provider: an entry in ``http_providers.HTTP_PROVIDERS``)."""
VERIFIER_NAMES: frozenset[str] = frozenset(CHECKS) | PAIRED


class _RateLimit:
    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, provider: str) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(provider, now))
            self._next[provider] = at + self._interval
        if at > now:
            time.sleep(at - now)


class Verifier:
    """The enricher behind ``--verify``."""

    def __init__(self, ruleset: RuleSet, options: VerifyOptions) -> None:
        import requests  # here, not with the package: see the module docstring

        self.ruleset, self.options = ruleset, options
        self._cache: dict[tuple[str, str], Verification] = {}
        self._limit = _RateLimit(options.rate_per_second)
        self._session = requests.Session()
        self._session.trust_env = True
        self.requests_sent: dict[str, int] = {}

    def enrich(self, findings: Sequence[Finding], secrets: Mapping[str, str]) -> tuple[list[Finding], list[str]]:
        key_ids = [f for f in findings if f.rule_id == AWS_KEY_ID_RULE]
        out: list[Finding] = []
        for finding in findings:
            provider = self.ruleset.by_id[finding.rule_id].verifier
            if provider is None or provider not in self.options.providers:
                out.append(finding)
                continue
            if provider in PAIRED:
                verification = self._aws(finding, key_ids, findings, secrets)
            else:
                check = functools.partial(CHECKS[provider], secrets[finding.fingerprint], self.options, self._session)
                verification = self._cached(provider, finding.fingerprint, check)
            out.append(replace(finding, verification=verification) if verification else finding)
        return out, []

    def _cached(self, provider: str, key: str, run: Callable[[], tuple[Verdict, str]]) -> Verification:
        if (provider, key) not in self._cache:
            self._limit.wait(provider)
            self.requests_sent[provider] = self.requests_sent.get(provider, 0) + 1
            verdict, evidence = run()
            self._cache[(provider, key)] = Verification(verdict, provider, evidence)
        return self._cache[(provider, key)]

    def _aws(
        self, finding: Finding, key_ids: list[Finding], findings: Sequence[Finding], secrets: Mapping[str, str]
    ) -> Verification | None:
        """An AWS key is verified as a pair: a key ID with the secret keys found beside it (same
        file or config entry first, then the same image)."""
        if finding.rule_id == AWS_KEY_ID_RULE:
            pairs = [
                (finding, s)
                for s in _near(
                    finding,
                    [
                        f
                        for f in findings
                        if f.rule_id != AWS_KEY_ID_RULE and self.ruleset.by_id[f.rule_id].verifier == "aws"
                    ],
                )
            ]
        else:
            pairs = [(k, finding) for k in _near(finding, key_ids)]
        if not pairs:
            return Verification(
                Verdict.UNKNOWN, "aws", "no matching key ID / secret key found beside it to verify as a pair"
            )
        results = []
        for key_id, secret_key in pairs[:MAX_AWS_PAIRS]:
            pair = f"{key_id.fingerprint}+{secret_key.fingerprint}"
            results.append(
                self._cached(
                    "aws",
                    pair,
                    functools.partial(
                        verify_aws,
                        secrets[key_id.fingerprint],
                        secrets[secret_key.fingerprint],
                        self.options.endpoint("aws"),
                        self.options.timeout_seconds,
                    ),
                )
            )
        for verdict in (Verdict.LIVE, Verdict.REVOKED):
            for result in results:
                if result.verdict is verdict:
                    return result
        return results[0]


def _near(finding: Finding, candidates: list[Finding]) -> list[Finding]:
    """Candidates seen in the same file or config entry as ``finding``, else in the same image."""
    places = {(loc.image, loc.layer_index, loc.path) for loc in finding.locations}
    same_place = [c for c in candidates if any((loc.image, loc.layer_index, loc.path) in places for loc in c.locations)]
    if same_place:
        return same_place
    images = {loc.image for loc in finding.locations}
    return [c for c in candidates if any(loc.image in images for loc in c.locations)]
