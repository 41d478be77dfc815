"""The one part of Kubernetes auth OpenBao cannot get here: a Kubernetes API to review tokens.

At a Kubernetes login OpenBao reads the service account from the JWT's claims and then asks the
cluster's TokenReview API (``POST /apis/authentication.k8s.io/v1/tokenreviews``) whether the JWT is
genuine. `TokenReviewApi` answers that one call, over HTTPS on 127.0.0.1 with a fresh self-signed
certificate (OpenBao's kubernetes auth wants a CA certificate): a JWT it issued (`issue`) is the
service account it names, any other is not authenticated, as a cluster answers. Nothing else of
Kubernetes is imitated.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from servers import _Handler, _host_of, self_signed_certificate, serve_http

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


def _b64url(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


class TokenReviewApi:
    def __init__(self, url: str, ca_pem: str) -> None:
        self.url, self.ca_pem = url, ca_pem
        self.accounts: dict[str, dict[str, str]] = {}
        """JWT -> the user a review reports (username, uid)."""
        self.reviews = 0

    def issue(self, namespace: str, name: str) -> str:
        """A service-account JWT (projected-token claims; the signature is random: only this API
        vouches for it, as only the cluster's does for a real one)."""
        uid = str(uuid.uuid4())
        claims = {
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        jwt = f"{_b64url({'alg': 'RS256', 'typ': 'JWT'})}.{_b64url(claims)}.{secrets.token_urlsafe(64)}"
        self.accounts[jwt] = {"username": claims["sub"], "uid": uid}
        return jwt

    def review(self, token: str) -> dict[str, Any]:
        self.reviews += 1
        user = self.accounts.get(token)
        status: dict[str, Any] = (
            {"authenticated": True, "user": {**user, "groups": ["system:serviceaccounts"]}}
            if user
            else {"authenticated": False, "error": "invalid bearer token"}
        )
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}


class _ReviewHandler(_Handler):
    server: Any

    def setup(self) -> None:
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)  # in this connection's thread
        super().setup()

    def do_POST(self) -> None:
        if self.path != REVIEW_PATH:
            self.reply_json(404, {"kind": "Status", "status": "Failure", "code": 404})
            return
        try:
            token = json.loads(self.read_body() or b"{}")["spec"]["token"]
        except (ValueError, KeyError, TypeError):
            self.reply_json(400, {"kind": "Status", "status": "Failure", "code": 400})
            return
        self.reply_json(201, self.server.api.review(str(token)))


@contextlib.contextmanager
def tokenreview_api(directory: Path) -> Iterator[TokenReviewApi]:
    cert, key = self_signed_certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serve_http(_ReviewHandler, tls=context) as server:
        api = TokenReviewApi(f"https://{_host_of(server)}", cert.read_text())
        server.api = api  # type: ignore[attr-defined]
        yield api
