"""Real servers for tests, started and stopped by the test suite itself.

Everything listens on 127.0.0.1 (or a unix socket) on a port the kernel
picks, keeps its state in a temp dir, and is stopped on exit even when the
test fails. Nothing here talks to any other address.

- `registry()`: the distribution registry (Debian `docker-registry`, 2.8)
  with no auth, htpasswd (bcrypt) auth, or token auth backed by
  `TokenIssuer`, a small JWT token server in a thread.
- `push()`: `skopeo copy` of a docker archive / OCI layout into a registry.
- `flaky_proxy()`: a reverse proxy in front of a registry that answers the
  first N manifest/blob requests with 429 (or any status), can tamper with
  one blob's bytes, or redirect blob GETs to a `BlobMirror` on another port.
- `dockerd()`: a private Docker daemon (vfs storage, no networking), with
  `docker_cli()`, `docker_load()`, `docker_build()`, `docker_save()`.
- `moto_server()`: moto's AWS mock (ECR, ...) in a thread.
- `need()`: the skip policy for a missing binary or module: skip locally,
  fail in CI (env CI=true), always naming the package to install.

Secrets (registry passwords, signing keys) are generated at test time and
never put on a command line.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import functools
import hashlib
import http.client
import http.server
import importlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

LOOPBACK = "127.0.0.1"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# What to install when something is missing (Debian packages for binaries, PyPI for modules).
DEBIAN_PACKAGES = {
    "docker-registry": ("docker-registry",),
    "docker.io": ("dockerd", "docker"),
    "containerd": ("containerd",),
    "runc": ("runc",),
    "skopeo": ("skopeo",),
    "umoci": ("umoci",),
    "apache2-utils": ("htpasswd",),
    "openssl": ("openssl",),
}
BINARY_PACKAGES = {binary: pkg for pkg, binaries in DEBIAN_PACKAGES.items() for binary in binaries}
MODULE_PACKAGES = {
    "moto": "moto[server]",
    "moto.server": "moto[server]",
    "boto3": "boto3",
    "cryptography": "cryptography",
    "requests": "requests",
}
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"

# --------------------------------------------------------------------------- skip policy


def unavailable(reason: str) -> None:
    """Skip the test with `reason`, or fail it when running in CI (env CI=true).

    CI must have every tool (`make install-system`, `make install-test`), so a
    missing one there is a broken setup, not a reason to quietly run less.
    """
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: missing test tools fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


def which(binary: str) -> str | None:
    """`shutil.which`, also looking in the sbin dirs (dockerd lives in /usr/sbin)."""
    return shutil.which(binary) or shutil.which(binary, path=_SBIN)


def need(name: str) -> str:
    """Return the path of binary `name` (or the name of module `name`), else skip/fail.

    Names in MODULE_PACKAGES, or written "py:NAME", are Python modules and must
    import; anything else is a binary looked up on PATH and the sbin dirs. A
    missing one skips the test locally and fails it in CI (see `unavailable`),
    with a message naming the package that provides it.
    """
    if name in MODULE_PACKAGES or name.startswith("py:"):
        module = name.removeprefix("py:")
        try:
            importlib.import_module(module)
        except ImportError as e:
            pkg = MODULE_PACKAGES.get(module, module.split(".")[0])
            unavailable(f"Python module {module!r} is missing ({e}): pip install '{pkg}' (make install-test)")
        return module
    path = which(name)
    if path is None:
        pkg = BINARY_PACKAGES.get(name, name)
        unavailable(f"`{name}` is not installed: Debian package {pkg!r} (make install-system, as root)")
    assert path is not None
    return path


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).

    Another process can take it before it is used: servers started on it here
    retry with a new port when their bind fails. Python servers bind port 0
    directly instead.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """preexec_fn: SIGTERM the child when pytest dies, so no server outlives the run."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Process:
    """A server process with its stdout+stderr in a log file."""

    def __init__(self, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, lines: int = 80) -> str:
        """The last `lines` lines of the log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._log.close()

    def fail(self, what: str) -> RuntimeError:
        """Stop the process, print its log, and return an error to raise."""
        self.stop(5)
        msg = f"{what}\n--- {' '.join(self.argv[:2])} log ({self.log_path}) ---\n{self.log()}"
        print(msg)
        return RuntimeError(msg)


def wait_for(ready: Callable[[], bool], timeout: float, what: str, proc: Process | None = None) -> None:
    """Poll `ready()` (exceptions count as not ready) until true; raise on timeout or process death."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        with contextlib.suppress(Exception):
            if ready():
                return
        if proc is not None and not proc.alive():
            raise proc.fail(f"{what}: process exited with {proc.popen.returncode}")
        if time.monotonic() > deadline:
            if proc is not None:
                raise proc.fail(f"{what}: not ready after {timeout:.0f}s")
            raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _http_status(host: str, path: str, timeout: float = 2.0, tls: bool = False) -> int:
    if tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, timeout=timeout, context=ssl._create_unverified_context()
        )
    else:
        conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _answers_v2(host: str, tls: bool = False) -> bool:
    return _http_status(host, "/v2/", tls=tls) in (200, 401)


def self_signed_certificate(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path]:
    """(certificate, key) for a TLS server on ``ip``, made with the openssl CLI."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            need("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={ip}",
            "-addext",
            f"subjectAltName=IP:{ip}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _clean_env(drop_prefixes: Sequence[str] = ()) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_prefixes))}


# --------------------------------------------------------------------------- small HTTP servers


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def serve_http(handler: type[http.server.BaseHTTPRequestHandler], **attrs: Any) -> Iterator[_Server]:
    """Run a threaded stdlib HTTP server on 127.0.0.1:<kernel-picked port>; `attrs` are set on it."""
    server = _Server((LOOPBACK, 0), handler)
    for k, v in attrs.items():
        setattr(server, k, v)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _host_of(server: http.server.HTTPServer) -> str:
    return f"{LOOPBACK}:{server.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as registry clients expect
    timeout = 30  # drop idle keep-alive connections

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def read_body(self) -> bytes | None:
        """The request body (chunked or Content-Length), or None when there is none."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length is not None else None

    def reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self.reply(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})


# --------------------------------------------------------------------------- token issuer


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """'repository:ns/app:pull,push' -> ('repository', 'ns/app', ['pull', 'push']).

    The name may hold ':' (a host:port prefix), so the actions are after the
    last ':'. A resource class, 'repository(plugin)', is dropped.
    """
    typ, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not typ or not name:
        return None
    return typ.split("(")[0], name, [a for a in actions.split(",") if a]


class TokenIssuer:
    """A Docker-registry token server (distribution's `auth.token` realm) in a thread.

    `GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]` with
    HTTP basic credentials returns `{"token", "access_token", "expires_in",
    "issued_at"}`; the JWT grants the requested actions (pull, push, delete,
    *) on every requested repository, and `registry:catalog:*`. Anonymous
    requests get a token with empty `access` (as Docker Hub does for a
    private repository), or pull-only when `anonymous_pull`. Wrong
    credentials get 401. `POST /token` with a form (grant_type=password,
    username, password, service, scope) is the OAuth2 variant, answering
    `{"access_token", "expires_in", "scope"}`.

    The JWT is RS256 with the self-signed signing certificate in the `x5c`
    header; `cert_pem` goes into the registry's `rootcertbundle`. Every
    request is appended to `requests` (dicts: method, path, service, scopes,
    user (None = anonymous), status) so tests can assert what a client asked.
    """

    def __init__(
        self,
        username: str,
        password: str,
        service: str = "secretscan-test-registry",
        issuer: str = "secretscan-test-issuer",
        anonymous_pull: bool = False,
        expires_in: int = 300,
    ) -> None:
        need("cryptography")
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.username, self.password = username, password
        self.refresh_token = secrets.token_urlsafe(32)
        """An identity token for ``username``, as ``docker login`` stores for Docker Hub."""
        self.service, self.issuer = service, issuer
        self.anonymous_pull, self.expires_in = anonymous_pull, expires_in
        self.requests: list[dict[str, Any]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secretscan test token issuer")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self._server: _Server | None = None
        self._stack = contextlib.ExitStack()

    # -- lifecycle
    def __enter__(self) -> TokenIssuer:
        self._server = self._stack.enter_context(serve_http(_TokenHandler, issuer=self))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def host(self) -> str:
        assert self._server is not None, "use `with TokenIssuer(...)`"
        return _host_of(self._server)

    @property
    def realm(self) -> str:
        return f"http://{self.host}/token"

    # -- tokens
    def grant(self, user: str | None, scopes: Sequence[str]) -> list[dict[str, Any]]:
        """The `access` claim for `user` (None = anonymous) asking for `scopes`."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            typ, name, actions = parsed
            if user is None:
                allowed = {"pull"} if self.anonymous_pull and typ == "repository" else set()
            else:
                allowed = {"pull", "push", "delete", "*"}
            granted = [a for a in actions if a in allowed]
            if granted:
                access.append({"type": typ, "name": name, "actions": granted})
        return access

    def issue(self, subject: str, access: list[dict[str, Any]], expires_in: int | None = None) -> str:
        """Sign a registry JWT (RS256, x5c header) for `subject` with the `access` claim."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self._x5c}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + (self.expires_in if expires_in is None else expires_in),
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def check_basic(self, authorization: str | None) -> str | None | bool:
        """The user for an Authorization header: None if absent, False if wrong."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        ok = secrets.compare_digest(user.encode(), self.username.encode()) and secrets.compare_digest(
            password.encode(), self.password.encode()
        )
        return user if ok else False


class _TokenHandler(_Handler):
    server: Any

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        user = self.server.issuer.check_basic(self.headers.get("Authorization"))
        self._answer(url.path, user, query, oauth=False)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        form = urllib.parse.parse_qs((self.read_body() or b"").decode())
        issuer: TokenIssuer = self.server.issuer
        grant = form.get("grant_type", [""])[0]
        if grant == "refresh_token":  # Docker Hub's identity tokens (docker config "identitytoken")
            given = form.get("refresh_token", [""])[0]
            ok = bool(issuer.refresh_token) and secrets.compare_digest(given, issuer.refresh_token)
            self._answer(url.path, issuer.username if ok else False, form, oauth=True)
            return
        if grant != "password":
            self._record(url.path, None, form, 400)
            self.reply_json(400, {"error": "unsupported_grant_type"})
            return
        creds = f"{form.get('username', [''])[0]}:{form.get('password', [''])[0]}"
        user = issuer.check_basic("Basic " + base64.b64encode(creds.encode()).decode())
        self._answer(url.path, user, form, oauth=True)

    def _record(self, path: str, user: Any, params: dict[str, list[str]], status: int) -> None:
        scopes = [s for value in params.get("scope", []) for s in value.split()]
        self.server.issuer.requests.append(
            {
                "method": self.command,
                "path": path,
                "service": params.get("service", [None])[0],
                "scopes": scopes,
                "user": user if isinstance(user, str) else None,
                "grant_type": params.get("grant_type", [None])[0],
                "status": status,
            }
        )

    def _answer(self, path: str, user: str | None | bool, params: dict[str, list[str]], oauth: bool) -> None:
        issuer: TokenIssuer = self.server.issuer
        if path != "/token":
            self._record(path, user, params, 404)
            self.reply_json(404, {"error": "not found"})
            return
        if user is False:
            self._record(path, user, params, 401)
            self.reply_json(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]},
                {"WWW-Authenticate": 'Basic realm="secretscan-test-issuer"'},
            )
            return
        assert user is None or isinstance(user, str)
        scopes = [s for value in params.get("scope", []) for s in value.split()]
        token = issuer.issue(user or "", issuer.grant(user, scopes))
        self._record(path, user, params, 200)
        if oauth:
            body = {"access_token": token, "expires_in": issuer.expires_in, "scope": " ".join(scopes)}
        else:
            issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {"token": token, "access_token": token, "expires_in": issuer.expires_in, "issued_at": issued}
        self.reply_json(200, body)


# --------------------------------------------------------------------------- registry


@dataclass
class RegistryInfo:
    """A running registry: `host` is "127.0.0.1:PORT", `url` "http://127.0.0.1:PORT".

    `username`/`password` are random per run and only enforced when `auth` is
    "htpasswd" or "token"; in token mode `realm` is the issuer's token URL,
    `service` the audience, and `issuer` the TokenIssuer (its `requests` log).
    """

    host: str
    url: str
    auth: str
    username: str
    password: str
    root: Path
    log_path: Path
    realm: str | None = None
    service: str | None = None
    issuer: TokenIssuer | None = None

    def auth_json(self, host: str | None = None) -> dict[str, Any]:
        """A containers-auth.json / ~/.docker/config.json body with these credentials for `host`."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return {"auths": {host or self.host: {"auth": token}}}

    def write_authfile(self, path: str | os.PathLike[str], host: str | None = None) -> Path:
        """Write `auth_json()` to `path` (mode 0600) and return it."""
        p = Path(path)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.auth_json(host), f)
        return p

    def bearer_token(self, *scopes: str, authenticated: bool = True) -> str:
        """Fetch a token from the issuer (token mode) for `scopes`, as a client would."""
        if self.issuer is None:
            raise ValueError(f"registry auth is {self.auth!r}, not token")
        query = urllib.parse.urlencode([("service", self.service or "")] + [("scope", s) for s in scopes])
        conn = http.client.HTTPConnection(self.issuer.host, timeout=10)
        headers = {}
        if authenticated:
            creds = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {creds}"
        try:
            conn.request("GET", f"/token?{query}", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"token issuer answered {resp.status}: {body[:200]!r}")
        return str(json.loads(body)["token"])


REGISTRY_AUTH_MODES = ("none", "htpasswd", "token")


def _htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry from `htpasswd -niB USER`, the password fed on stdin."""
    out = subprocess.run(
        [need("htpasswd"), "-niB", username],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    if not out.startswith(f"{username}:$2"):
        raise RuntimeError(f"unexpected htpasswd output for {username!r}")
    return out + "\n"


@contextlib.contextmanager
def registry(
    tmp_path: str | os.PathLike[str],
    auth: str = "none",
    anonymous_pull: bool = False,
    credentials: tuple[str, str] | None = None,
    tls: bool = False,
) -> Iterator[RegistryInfo]:
    """Run `docker-registry serve CONFIG` on 127.0.0.1 with storage under `tmp_path`.

    auth="none": open. "htpasswd": basic auth against a bcrypt entry made by
    `htpasswd -niB` (password on stdin). "token": distribution's token auth,
    backed by a `TokenIssuer` (started first, so its URL is the realm); with
    `anonymous_pull` anonymous tokens may pull. `credentials` fixes the user and password
    (random otherwise). `tls` serves HTTPS with a fresh self-signed certificate. Deletes enabled.
    Yields once `GET /v2/` answers 200 or 401; on failure the process is
    stopped and its log printed. Env vars REGISTRY_* (which override the
    config file) are not passed on.
    """
    if auth not in REGISTRY_AUTH_MODES:
        raise ValueError(f"auth must be one of {REGISTRY_AUTH_MODES}, not {auth!r}")
    binary = need("docker-registry")
    root = Path(tempfile.mkdtemp(prefix=f"registry-{auth}-", dir=tmp_path))
    username, password = credentials or ("scanner-" + secrets.token_hex(3), secrets.token_urlsafe(18))
    with contextlib.ExitStack() as stack:
        auth_config: dict[str, Any] = {}
        issuer: TokenIssuer | None = None
        if auth == "htpasswd":
            (root / "htpasswd").write_text(_htpasswd_line(username, password))
            auth_config = {"htpasswd": {"realm": "secretscan-test-registry", "path": str(root / "htpasswd")}}
        elif auth == "token":
            issuer = stack.enter_context(TokenIssuer(username, password, anonymous_pull=anonymous_pull))
            (root / "token-root.pem").write_bytes(issuer.cert_pem)
            auth_config = {
                "token": {
                    "realm": issuer.realm,
                    "service": issuer.service,
                    "issuer": issuer.issuer,
                    "rootcertbundle": str(root / "token-root.pem"),
                }
            }
        log_path = root / "registry.log"
        tls_config: dict[str, Any] = {}
        if tls:
            cert, key = self_signed_certificate(root)
            tls_config = {"tls": {"certificate": str(cert), "key": str(key)}}
        for attempt in range(3):
            port = free_port()
            config = {
                "version": 0.1,
                "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
                "storage": {
                    "filesystem": {"rootdirectory": str(root / "storage")},
                    "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}},
                },
                "http": {"addr": f"{LOOPBACK}:{port}", "secret": secrets.token_hex(16), **tls_config},
                **({"auth": auth_config} if auth_config else {}),
            }
            config_path = root / "config.yml"
            config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
            proc = Process([binary, "serve", str(config_path)], log_path, _clean_env(["REGISTRY_"]))
            stack.callback(proc.stop)
            host = f"{LOOPBACK}:{port}"
            try:
                wait_for(functools.partial(_answers_v2, host, tls), 30, f"docker-registry ({auth})", proc)
                break
            except RuntimeError:
                if attempt < 2 and "address already in use" in proc.log():
                    continue  # another process took the port between free_port() and the bind
                raise
        yield RegistryInfo(
            host=host,
            url=f"{'https' if tls else 'http'}://{host}",
            auth=auth,
            username=username,
            password=password,
            root=root,
            log_path=log_path,
            realm=issuer.realm if issuer else None,
            service=issuer.service if issuer else None,
            issuer=issuer,
        )


# --------------------------------------------------------------------------- push with skopeo

_TRANSPORTS = ("docker-archive:", "oci:", "oci-archive:", "dir:", "docker://", "docker-daemon:")


def skopeo_source(source: str | os.PathLike[str]) -> str:
    """A skopeo source reference for `source`.

    Strings with a transport prefix pass through ("oci:DIR:REF", ...). A
    directory becomes "oci:DIR"; a tar file "docker-archive:PATH" when it has
    a manifest.json (both `docker save` styles), else "oci-archive:PATH".
    """
    s = os.fspath(source)
    if s.startswith(_TRANSPORTS):
        return s
    if os.path.isdir(s):
        return f"oci:{s}"
    with tarfile.open(s) as tar:
        names = {n.lstrip("./") for n in tar.getnames()}
    return f"docker-archive:{s}" if "manifest.json" in names else f"oci-archive:{s}"


def push(
    info: RegistryInfo,
    source_ref: str | os.PathLike[str],
    dest_repo_tag: str,
    all_platforms: bool = False,
    host: str | None = None,
) -> str:
    """`skopeo copy` `source_ref` to docker://HOST/`dest_repo_tag`; return the pushed manifest digest.

    `source_ref` is a docker archive, an OCI layout dir, or any skopeo
    reference (see `skopeo_source`). `all_platforms` copies every image of an
    index (`--all`) and keeps the index; otherwise skopeo picks one platform.
    Credentials go through a temp `--dest-authfile`, never the command line.
    `host` pushes through another address (a proxy) with the same creds.
    """
    skopeo = need("skopeo")
    dest_host = host or info.host
    with tempfile.TemporaryDirectory(prefix="skopeo-") as td:
        authfile = info.write_authfile(Path(td) / "auth.json", dest_host)
        digestfile = Path(td) / "digest"
        argv = [
            skopeo,
            "--insecure-policy",  # no /etc/containers/policy.json needed
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-authfile",
            str(authfile),
            "--digestfile",
            str(digestfile),
        ]
        if all_platforms:
            argv.append("--all")
        argv += [skopeo_source(source_ref), f"docker://{dest_host}/{dest_repo_tag}"]
        env = _clean_env(["REGISTRY_AUTH_FILE"])
        env["HOME"] = td  # no ~/.docker/config.json or containers auth from the developer's home
        env.pop("XDG_RUNTIME_DIR", None)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"skopeo copy failed ({result.returncode}):\n{result.stderr}")
        return digestfile.read_text().strip()


def manifest_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- flaky proxy + blob mirror

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
_BLOB_GET = re.compile(r"^/v2/.+/blobs/(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$")
DEFAULT_FAIL_PATHS = r"^/v2/.+/(manifests|blobs)/[^/]+$"


class BlobMirror:
    """A loopback HTTP server on its own port serving blob bytes, like a CDN or S3.

    `put(digest, data)` stores bytes; GET/HEAD `/blobs/<digest>` (any query)
    serves them. Every request's headers are appended to `received` (dicts
    with lower-case keys plus "_method" and "_path"), so a test can check for
    example that no Authorization header followed a redirect here.
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.received: list[dict[str, str]] = []
        self._stack = contextlib.ExitStack()
        self._server: _Server | None = None

    def __enter__(self) -> BlobMirror:
        self._server = self._stack.enter_context(serve_http(_MirrorHandler, mirror=self))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def host(self) -> str:
        assert self._server is not None, "use `with BlobMirror()`"
        return _host_of(self._server)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def put(self, digest: str, data: bytes) -> None:
        self.blobs[digest] = data

    def location(self, digest: str) -> str:
        """The URL a redirect for `digest` points at (with a dummy pre-signed query)."""
        return f"{self.url}/blobs/{digest}?X-Test-Signature={secrets.token_hex(4)}"


class _MirrorHandler(_Handler):
    server: Any

    def do_GET(self) -> None:
        mirror: BlobMirror = self.server.mirror
        path = urllib.parse.urlsplit(self.path).path
        mirror.received.append(
            {"_method": self.command, "_path": path, **{k.lower(): v for k, v in self.headers.items()}}
        )
        digest = path.removeprefix("/blobs/")
        data = mirror.blobs.get(digest) if path.startswith("/blobs/") else None
        if data is None:
            self.reply(404, b"blob not found\n")
            return
        self.reply(200, data, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest})

    do_HEAD = do_GET


@contextlib.contextmanager
def blob_mirror() -> Iterator[BlobMirror]:
    """A running `BlobMirror` (context manager)."""
    with BlobMirror() as mirror:
        yield mirror


@dataclass
class ProxyInfo:
    """A running `flaky_proxy`: `host` ("127.0.0.1:PORT") is what clients use instead of the registry.

    `log` has (method, path, status) for every request answered, in order;
    `failed` counts the injected failures; `mirror` is the redirect target.
    """

    host: str
    url: str
    upstream: str
    fail_first: int
    status: int
    log: list[tuple[str, str, int]] = field(default_factory=list)
    failed: int = 0
    mirror: BlobMirror | None = None

    def statuses(self, path_contains: str = "") -> list[int]:
        return [s for _, p, s in self.log if path_contains in p]


class _ProxyHandler(_Handler):
    server: Any

    def _handle(self) -> None:
        cfg = self.server.cfg
        info: ProxyInfo = cfg["info"]
        body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        with cfg["lock"]:
            fail = (
                info.failed < info.fail_first
                and self.command in cfg["fail_methods"]
                and cfg["fail_paths"].search(path) is not None
            )
            if fail:
                info.failed += 1
        if fail and info.status == 0:  # status 0: drop the connection without an answer
            info.log.append((self.command, path, 0))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fail:
            headers = {"Retry-After": cfg["retry_after"]} if cfg["retry_after"] is not None else {}
            code = "TOOMANYREQUESTS" if info.status == 429 else "UNAVAILABLE"
            err = {"errors": [{"code": code, "message": f"injected failure {info.failed}", "detail": None}]}
            info.log.append((self.command, path, info.status))
            self.reply_json(info.status, err, headers)
            return
        blob = _BLOB_GET.match(path) if self.command == "GET" else None
        if blob and cfg["blob_delay"]:
            time.sleep(cfg["blob_delay"])  # a slow registry: lets tests interrupt a sweep midway
        conn = http.client.HTTPConnection(info.upstream, timeout=120)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in _HOP_BY_HOP:
                    conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            mirror: BlobMirror | None = info.mirror
            if blob and resp.status == 200 and mirror is not None:
                mirror.put(blob["digest"], resp.read())
                info.log.append((self.command, path, 307))
                self.reply(307, b"", {"Location": mirror.location(blob["digest"])})
                return
            tamper = blob is not None and blob["digest"] == cfg["tamper_blob"] and resp.status == 200
            info.log.append((self.command, path, resp.status))
            self._relay(resp, tamper)
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse, tamper: bool) -> None:
        """Send the upstream response on: status, headers (minus hop-by-hop), body streamed."""
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        length = resp.getheader("Content-Length")
        data: bytes | None = None
        if tamper or (length is None and not no_body):
            data = resp.read()
            if tamper and data:
                flipped = bytearray(data)
                flipped[len(flipped) // 2] ^= 0xFF
                data = bytes(flipped)
            length = str(len(data))
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP_BY_HOP:
                self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if no_body:
            return
        if data is not None:
            self.wfile.write(data)
            return
        while chunk := resp.read(65536):
            self.wfile.write(chunk)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


@contextlib.contextmanager
def flaky_proxy(
    upstream_host: str,
    fail_first: int = 2,
    status: int = 429,
    retry_after: str | None = "1",
    fail_methods: Sequence[str] = ("GET", "HEAD"),
    fail_paths: str = DEFAULT_FAIL_PATHS,
    tamper_blob: str | None = None,
    redirect_blobs_to: BlobMirror | bool | None = None,
    blob_delay: float = 0.0,
) -> Iterator[ProxyInfo]:
    """A reverse proxy on 127.0.0.1 in front of registry `upstream_host` ("127.0.0.1:PORT").

    The first `fail_first` requests whose method is in `fail_methods` and
    whose path matches the regex `fail_paths` (default: manifest and blob
    GET/HEAD, not uploads) are dropped without an answer when `status` is 0,
    else answered with `status` and a `Retry-After:
    retry_after` header (none if None) and a registry-style JSON error.
    Everything else is forwarded verbatim: method, path, headers (Host
    included, so registry Location URLs point back at the proxy), body; the
    upstream status, headers (WWW-Authenticate, Location, ...) and body
    (streamed) come back unchanged, with no redirect followed.

    `tamper_blob="sha256:..."` flips one byte in the middle of that blob's
    GET body (same length), for digest-mismatch tests. `redirect_blobs_to=True`
    (or a running `BlobMirror`) answers successful blob GETs with a 307 to
    the mirror, on another port, which then serves the same bytes and
    records the headers it got (`info.mirror.received`). The upstream GET
    that fetched them used the client's own headers, so auth works as usual.
    `blob_delay` seconds are waited before each blob GET is forwarded (a slow registry).
    """
    with contextlib.ExitStack() as stack:
        mirror: BlobMirror | None = None
        if isinstance(redirect_blobs_to, str):
            raise TypeError("redirect_blobs_to takes a BlobMirror (or True for a new one), which gets the bytes")
        if isinstance(redirect_blobs_to, BlobMirror):
            mirror = redirect_blobs_to
        elif redirect_blobs_to:
            mirror = stack.enter_context(BlobMirror())
        info = ProxyInfo(host="", url="", upstream=upstream_host, fail_first=fail_first, status=status, mirror=mirror)
        cfg = {
            "info": info,
            "lock": threading.Lock(),
            "fail_methods": {m.upper() for m in fail_methods},
            "fail_paths": re.compile(fail_paths),
            "retry_after": retry_after,
            "tamper_blob": tamper_blob,
            "blob_delay": blob_delay,
        }
        server = stack.enter_context(serve_http(_ProxyHandler, cfg=cfg))
        info.host = _host_of(server)
        info.url = f"http://{info.host}"
        yield info


# --------------------------------------------------------------------------- dockerd


@dataclass
class DockerInfo:
    """A running private dockerd: `host` is "unix:///tmp/dkr-.../docker.sock" (for `docker -H`/DOCKER_HOST).

    `cli` is the docker CLI to use, `config_dir` its DOCKER_CONFIG (empty, so
    no developer credentials or contexts leak in).
    """

    host: str
    socket: Path
    data_root: Path
    exec_root: Path
    log_path: Path
    cli: str
    config_dir: Path
    pid: int


def _docker_cli_path() -> str:
    """The docker CLI: Debian's /usr/bin/docker (same release as dockerd) if there, else PATH's."""
    debian = "/usr/bin/docker"
    if os.access(debian, os.X_OK) and which("dockerd") == "/usr/sbin/dockerd":
        return debian
    return need("docker")


def _ping(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(str(sock))
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        status_line = s.recv(64).split(b"\r\n")[0]
        return status_line.split()[1:2] == [b"200"]


def _mounts_under(*dirs: Path) -> list[str]:
    prefixes = tuple(str(d.resolve()) + "/" for d in dirs)
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    return sorted((p for p in points if p.startswith(prefixes)), key=len, reverse=True)


@contextlib.contextmanager
def dockerd(tmp_path: str | os.PathLike[str]) -> Iterator[DockerInfo]:
    """Run a private dockerd: vfs storage, no bridge/iptables, listening on a unix socket.

    Data root and pidfile live under `tmp_path`; the exec root and socket in a
    short /tmp/dkr-* dir (unix socket paths are limited to 108 bytes and the
    daemon's own containerd puts its socket in the exec root). dockerd 20.10
    starts and stops its own containerd when /run/containerd has none. Waits
    until `/_ping` answers and `docker version` works; stops with SIGTERM
    (then SIGKILL) and removes both dirs. Needs root.
    """
    binary = need("dockerd")
    need("containerd")
    cli = _docker_cli_path()
    if os.geteuid() != 0:
        unavailable("dockerd needs root (rootless docker is not set up for the tests)")
    base = Path(tempfile.mkdtemp(prefix="dockerd-", dir=tmp_path))
    short = Path(tempfile.mkdtemp(prefix="dkr-", dir="/tmp"))
    data_root, exec_root, sock = base / "data", short / "exec", short / "docker.sock"
    config_dir = base / "cli-config"
    config_dir.mkdir()
    (base / "daemon.json").write_text("{}\n")
    argv = [
        binary,
        "--config-file", str(base / "daemon.json"),
        "--data-root", str(data_root),
        "--exec-root", str(exec_root),
        "--pidfile", str(base / "docker.pid"),
        "--storage-driver", "vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
        "--userland-proxy=false",
        "--containerd-namespace", "secretscan-test",
        "--containerd-plugins-namespace", "secretscan-test-plugins",
        "-H", f"unix://{sock}",
    ]  # fmt: skip
    env = _clean_env(["DOCKER_"])
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":" + _SBIN
    proc = Process(argv, base / "dockerd.log", env)
    info = DockerInfo(
        host=f"unix://{sock}",
        socket=sock,
        data_root=data_root,
        exec_root=exec_root,
        log_path=base / "dockerd.log",
        cli=cli,
        config_dir=config_dir,
        pid=proc.pid,
    )
    try:
        wait_for(lambda: _ping(sock), 60, "dockerd", proc)
        version = docker_cli(info, "version", "--format", "{{.Server.Version}}", check=False)
        if version.returncode != 0:
            raise proc.fail(f"`docker version` failed: {version.stderr}")
        yield info
    finally:
        containerd_pid = _read_pid(exec_root / "containerd" / "containerd.pid")
        proc.stop(30)
        # if dockerd had to be killed, its containerd (started by it, for this exec root) may be left
        if containerd_pid and _cmdline(containerd_pid).find(str(exec_root)) >= 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(containerd_pid, signal.SIGKILL)
        for mount in _mounts_under(base, short):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(short, ignore_errors=True)
        shutil.rmtree(data_root, ignore_errors=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def docker_cli(
    info: DockerInfo,
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `docker -H info.host ARGS` (classic builder, private DOCKER_CONFIG); raise with stderr on failure."""
    full_env = _clean_env(["DOCKER_"])
    full_env.update({"DOCKER_CONFIG": str(info.config_dir), "DOCKER_BUILDKIT": "0"})
    full_env.update(env or {})
    argv = [info.cli, "-H", info.host, *map(str, args)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(argv[3:])} failed ({result.returncode}):\n{result.stderr}")
    return result


def docker_load(info: DockerInfo, archive_path: str | os.PathLike[str]) -> list[str]:
    """`docker load -i ARCHIVE`; return what it loaded ("repo:tag" names, or "sha256:..." IDs)."""
    out = docker_cli(info, "load", "--input", archive_path).stdout
    return [m.group(2).strip() for m in re.finditer(r"^Loaded image( ID)?: (.+)$", out, re.M)]


_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def docker_build(
    info: DockerInfo,
    context_dir: str | os.PathLike[str],
    tag: str,
    build_args: Mapping[str, str] | None = None,
    dockerfile: str | None = None,
) -> str:
    """Build `context_dir` with the classic builder (DOCKER_BUILDKIT=0) as `tag`; return the image ID.

    Each build arg goes on the command line as `--build-arg NAME` only; its
    value is in the docker CLI's environment, so it never appears in argv
    (the image history records it, as docker does). Names must be plain
    identifiers and not PATH, HOME or DOCKER_*, which would change the CLI.
    """
    args: list[str] = ["build", "--tag", tag, "--rm", "--force-rm"]
    env: dict[str, str] = {}
    for name, value in (build_args or {}).items():
        if not _ARG_NAME.match(name) or name in ("PATH", "HOME") or name.startswith("DOCKER_"):
            raise ValueError(f"unsupported build arg name {name!r}")
        args += ["--build-arg", name]
        env[name] = value
    if dockerfile:
        args += ["--file", dockerfile]
    docker_cli(info, *args, str(context_dir), env=env)
    return docker_cli(info, "image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()


def docker_save(info: DockerInfo, ref: str, path: str | os.PathLike[str]) -> Path:
    """`docker save -o PATH REF`; return PATH."""
    docker_cli(info, "save", "--output", path, ref)
    return Path(path)


# --------------------------------------------------------------------------- moto (AWS)


def fake_aws_env(endpoint_url: str | None = None) -> dict[str, str]:
    """Env vars that point boto3 at fake credentials (and `endpoint_url`, if given), never at ~/.aws."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


@contextlib.contextmanager
def _patched_env(values: Mapping[str, str], drop: Sequence[str] = ()) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in [*values, *drop]}
    try:
        for k in drop:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def moto_server(set_env: bool = True) -> Iterator[str]:
    """Run moto's ThreadedMotoServer on 127.0.0.1 (kernel-picked port); yield its endpoint URL.

    With `set_env`, `fake_aws_env(endpoint)` is in os.environ while it runs
    (AWS_PROFILE dropped), so any boto3 client, even one made without
    endpoint_url, talks to it with fake credentials. `POST /moto-api/reset`
    on the endpoint clears its state.
    """
    need("moto.server")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        endpoint = f"http://{LOOPBACK}:{port}"
        with _patched_env(fake_aws_env(endpoint), drop=["AWS_PROFILE"]) if set_env else contextlib.nullcontext():
            yield endpoint
    finally:
        server.stop()


def moto_reset(endpoint_url: str) -> None:
    """Clear every moto backend's state (`POST /moto-api/reset`)."""
    host = urllib.parse.urlsplit(endpoint_url).netloc
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request("POST", "/moto-api/reset")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"moto reset answered {resp.status}")
    finally:
        conn.close()
