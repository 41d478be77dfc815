"""Vault tokens: ``auth/token/lookup-self`` with the found token (hvac), against the Vault the
user named (``verify.endpoints.vault``, ``VAULT_ADDR`` or ``BAO_ADDR``): no other Vault is ever asked.
OpenBao answers a namespaced token (``s.<24>.<namespace id>``) without the namespace header."""

from __future__ import annotations

from secretscan.models import Verdict


def verify_vault_token(token: str, addr: str, timeout: float, verify_tls: bool | str = True) -> tuple[Verdict, str]:
    import hvac
    import hvac.exceptions
    import requests

    client = hvac.Client(url=addr, token=token, timeout=timeout, verify=verify_tls)
    try:
        data = client.auth.token.lookup_self()["data"]
    except hvac.exceptions.Forbidden:
        return Verdict.REVOKED, "lookup-self: permission denied (revoked, expired or never valid)"
    except (hvac.exceptions.VaultError, requests.exceptions.RequestException, KeyError, TypeError) as exc:
        return Verdict.UNKNOWN, f"lookup-self failed ({type(exc).__name__})"
    policies = ",".join(str(p) for p in data.get("policies") or [])
    return Verdict.LIVE, f"lookup-self: {data.get('display_name', '?')}, policies {policies}, ttl {data.get('ttl')}s"
