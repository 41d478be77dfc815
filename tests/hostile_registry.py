"""A registry that misbehaves on purpose, on 127.0.0.1 only, for the tests of what a hostile
registry can and cannot make secretscan do.

It serves one repository (``hostile/app``) whose image comes from an ``ImageSpec``, speaks the
parts of the distribution API a scan uses (``/v2/``, manifests, blobs, ``_catalog``, tag lists),
and can, per test:

* speak HTTPS and plain HTTP **on the same port** (the first byte of a connection tells a TLS
  handshake from a request), so a redirect from ``https://host:port`` to ``http://host:port`` —
  same host, same port, other scheme — reaches it and is recorded;
* demand basic auth, or name any bearer-token realm (a token endpoint at ``/token`` on itself);
* answer a blob with a redirect, trickle it (a burst, then one byte per interval), or send more
  bytes than its descriptor's size;
* trickle a manifest's response headers;
* page its catalog forever (empty pages, a cursor that never advances, one new name per page).

Every request is recorded (``seen``) with its scheme and headers, so a test can show that a
request was never made, or made without an Authorization header. ``127.1`` reaches loopback
but is not a loopback *name*: a test can point a redirect or a realm at
``http://127.1:PORT`` to stand for a remote host, and see the request if one is wrongly sent.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagebuilder import ImageSpec, oci_image_blobs
from servers import LOOPBACK, _Handler, self_signed_certificate

REPOSITORY = "hostile/app"
TAG = "1"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
REMOTE_LOOKING = "127.1"
"""Connects to 127.0.0.1, but is not a loopback name to a client that checks names."""


@dataclass(frozen=True)
class Seen:
    scheme: str
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""


@dataclass
class Behaviour:
    auth: str = "none"
    """``none``, ``basic`` (username/password) or ``bearer`` (challenge names ``realm``)."""
    username: str = "scanner"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    realm: str = ""
    """For ``bearer``: any URL; ``{port}`` is replaced by this server's port."""
    redirect_blobs: dict[str, str] = field(default_factory=dict)
    """digest -> Location (``{port}`` replaced); ``/cdn/<digest>`` on this server serves the blob."""
    trickle_blobs: dict[str, tuple[int, float, int]] = field(default_factory=dict)
    """digest -> (bytes sent at once, seconds between later pieces, bytes per later piece)."""
    overrun_blobs: dict[str, int] = field(default_factory=dict)
    """digest -> how many zero bytes follow the blob (Content-Length counts them)."""
    manifest_header_delay: float | None = None
    """Seconds between bytes of the manifest response's status line and headers."""
    catalog: str = "normal"
    """``normal``, ``endless-empty``, ``stuck-cursor`` or ``one-per-page``."""


class HostileRegistry:
    def __init__(self, spec: ImageSpec, behaviour: Behaviour, tls_dir: Path | None = None) -> None:
        self.manifest, self.blobs = oci_image_blobs(spec)
        self.behaviour = behaviour
        self.seen: list[Seen] = []
        self.sent: dict[str, int] = {}
        """digest -> body bytes written for it (an overrun's writes stop when the client hangs up)."""
        self.stop = threading.Event()
        self.token = secrets.token_urlsafe(16)
        self._tls: ssl.SSLContext | None = None
        if tls_dir is not None:
            cert, key = self_signed_certificate(tls_dir)
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(cert, key)
        self._server = _Server((LOOPBACK, 0), _RegistryHandler)
        self._server.registry = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def reference(self) -> str:
        return f"docker://{self.host}/{REPOSITORY}:{TAG}"

    @property
    def layer_digests(self) -> list[str]:
        return [d["digest"] for d in json.loads(self.manifest)["layers"]]

    @property
    def config_digest(self) -> str:
        return str(json.loads(self.manifest)["config"]["digest"])

    def requests(self, scheme: str | None = None, path_contains: str = "") -> list[Seen]:
        return [s for s in self.seen if (scheme is None or s.scheme == scheme) and path_contains in s.path]

    def __enter__(self) -> HostileRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up on a trickle, or refuse the self-signed certificate


class _RegistryHandler(_Handler):
    server: Any

    def setup(self) -> None:
        registry: HostileRegistry = self.server.registry
        self.scheme = "http"
        self.request.settimeout(30)
        first = self.request.recv(1, socket.MSG_PEEK)
        if first == b"\x16" and registry._tls is not None:
            self.request = registry._tls.wrap_socket(self.request, server_side=True)
            self.scheme = "https"
        super().setup()

    # ---- helpers

    def _authorized(self, registry: HostileRegistry) -> bool:
        b = registry.behaviour
        given = self.headers.get("Authorization", "")
        if b.auth == "basic":
            expected = base64.b64encode(f"{b.username}:{b.password}".encode()).decode()
            return given == f"Basic {expected}"
        if b.auth == "bearer":
            return given == f"Bearer {registry.token}"
        return True

    def _challenge(self, registry: HostileRegistry) -> None:
        b = registry.behaviour
        if b.auth == "basic":
            challenge = 'Basic realm="hostile"'
        else:
            realm = b.realm.replace("{port}", str(registry.port))
            challenge = f'Bearer realm="{realm}",service="hostile",scope="repository:{REPOSITORY}:pull"'
        self.reply_json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                   {"WWW-Authenticate": challenge})

    def _trickle(self, registry: HostileRegistry, data: bytes, burst: int, interval: float, step: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:burst])
        self.wfile.flush()
        for i in range(burst, len(data), step):
            if registry.stop.wait(interval):
                return
            self.wfile.write(data[i : i + step])
            self.wfile.flush()

    def _overrun(self, registry: HostileRegistry, digest: str, data: bytes, extra: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) + extra))
        self.end_headers()
        self.wfile.write(data)
        registry.sent[digest] = len(data)
        zeros = bytes(64 * 1024)
        while extra > 0 and not registry.stop.is_set():
            piece = zeros[: min(extra, len(zeros))]
            self.wfile.write(piece)  # raises once the client has hung up
            registry.sent[digest] += len(piece)
            extra -= len(piece)

    def _slow_headers(self, registry: HostileRegistry, status_and_headers: bytes, body: bytes, delay: float) -> None:
        for i in range(len(status_and_headers)):
            self.wfile.write(status_and_headers[i : i + 1])
            self.wfile.flush()
            if registry.stop.wait(delay):
                return
        self.wfile.write(body)

    # ---- the API

    def do_GET(self) -> None:  # noqa: C901 - one branch per endpoint
        registry: HostileRegistry = self.server.registry
        b = registry.behaviour
        path, _, query = self.path.partition("?")
        registry.seen.append(Seen(self.scheme, self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        if path == "/token":
            expected = base64.b64encode(f"{b.username}:{b.password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self.reply_json(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            else:
                self.reply_json(200, {"token": registry.token})
            return
        if path.startswith("/cdn/"):
            data = registry.blobs.get(path.removeprefix("/cdn/"))
            if data is None:
                self.reply(404)
            else:
                self.reply(200, data)
            return
        if not path.startswith("/v2/"):
            self.reply(404)
            return
        if not self._authorized(registry):
            self._challenge(registry)
            return
        if path == "/v2/":
            self.reply_json(200, {})
            return
        if path == "/v2/_catalog":
            self._catalog(b.catalog, query)
            return
        manifest = re.fullmatch(rf"/v2/{REPOSITORY}/manifests/([^/]+)", path)
        if manifest:
            self._manifest(registry)
            return
        blob = re.fullmatch(rf"/v2/{REPOSITORY}/blobs/([^/]+)", path)
        if blob:
            self._blob(registry, blob.group(1))
            return
        self.reply_json(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]})

    do_HEAD = do_GET

    def _manifest(self, registry: HostileRegistry) -> None:
        from imagebuilder import sha256_hex

        body = registry.manifest
        headers = {"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": "sha256:" + sha256_hex(body)}
        delay = registry.behaviour.manifest_header_delay
        if delay is None:
            self.reply(200, body, headers)
            return
        lines = ["HTTP/1.1 200 OK", *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(body)}"]
        self._slow_headers(registry, ("\r\n".join(lines) + "\r\n\r\n").encode(), body, delay)

    def _blob(self, registry: HostileRegistry, digest: str) -> None:
        b = registry.behaviour
        data = registry.blobs.get(digest)
        if data is None:
            self.reply_json(404, {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
        elif digest in b.redirect_blobs:
            location = b.redirect_blobs[digest].replace("{port}", str(registry.port))
            self.reply(307, b"", {"Location": location})
        elif digest in b.trickle_blobs:
            self._trickle(registry, data, *b.trickle_blobs[digest])
        elif digest in b.overrun_blobs:
            self._overrun(registry, digest, data, b.overrun_blobs[digest])
        else:
            self.reply(200, data, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest})

    def _catalog(self, mode: str, query: str) -> None:
        page = int(re.search(r"page=(\d+)", query).group(1)) if "page=" in query else 0  # type: ignore[union-attr]
        if mode == "normal":
            self.reply_json(200, {"repositories": [REPOSITORY]})
        elif mode == "endless-empty":  # a Link to a new page every time, and nothing on any page
            self.reply_json(200, {"repositories": []}, {"Link": f'</v2/_catalog?n=1000&page={page + 1}>; rel="next"'})
        elif mode == "stuck-cursor":  # the same names and the same cursor, with a fresh link each time
            self.reply_json(
                200,
                {"repositories": ["a/one", "a/two"]},
                {"Link": f'</v2/_catalog?last=a%2Ftwo&n=2&page={page + 1}>; rel="next"'},
            )
        else:  # one-per-page: a new name on every page, forever, the cursor advancing
            name = f"r/{page:09d}"
            self.reply_json(
                200,
                {"repositories": [name]},
                {"Link": f'</v2/_catalog?last={name.replace("/", "%2F")}&n=1&page={page + 1}>; rel="next"'},
            )


@contextlib.contextmanager
def hostile_registry(spec: ImageSpec, behaviour: Behaviour, tls_dir: Path | None = None) -> Iterator[HostileRegistry]:
    """A running ``HostileRegistry`` (HTTPS as well as HTTP on its port when ``tls_dir`` is given)."""
    with HostileRegistry(spec, behaviour, tls_dir) as registry:
        yield registry

