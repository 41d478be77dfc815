"""Where a credential may travel: over TLS to anywhere, in plain HTTP only to this machine.

A registry password, a Vault token, an AWS-signed request carrying a secret's value: each is as
good as leaked on a plain-HTTP hop across a network. Loopback is the one exception (local test
servers, a port-forward, a sidecar)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(name: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``), without port or brackets."""
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_http_refusal(url: str, what: str) -> str | None:
    """Why ``url`` must not carry ``what`` (one line), or None when it may: https, or http to
    loopback. Any other scheme is refused too."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None
    if scheme == "http" and is_loopback_host(parts.hostname or ""):
        return None
    return f"refusing to send {what} to {url}: only https, or plain http to this machine (loopback)"
