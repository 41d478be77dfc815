"""Images straight from a registry (OCI distribution spec / Docker Registry HTTP API v2).

Manifests are fetched with every Accept type we understand and checked against their digest;
layer blobs stream from the HTTP response into the layer walker (no temp files), which hashes
them as they pass: a blob whose bytes do not match its digest is an error, never a silent scan.
Redirects to blob storage are followed by hand so the registry's Authorization header never goes
to another host.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import ipaddress
import json
import logging
import platform as host_platform
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3

from secretscan.errors import SourceError, UsageError
from secretscan.image.manifest import ManifestImage
from secretscan.image.model import LayerHandle, parse_json
from secretscan.sources.auth import Credentials, Keychain
from secretscan.sources.reference import ImageRef

logger = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "secretscan"


@dataclass(frozen=True)
class RegistryOptions:
    timeout_seconds: float = 30.0
    retries: int = 4
    backoff_seconds: float = 0.5
    max_retry_after_seconds: float = 60.0
    insecure_registries: tuple[str, ...] = ()
    """Registries that may be reached without TLS verification or over plain HTTP (loopback ones
    always may, as in Docker): HTTPS is tried first, unverified, then HTTP."""
    tls_verify: bool = False
    """Require verified HTTPS even for loopback and insecure registries."""
    platform: str | None = None
    """``os/arch[/variant]``; None means the host's."""
    all_platforms: bool = False


def host_platform_name() -> str:
    machine = host_platform.machine().lower()
    arch = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm/v7",
        "armv6l": "arm/v6",
        "i386": "386",
        "i686": "386",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
    }.get(machine, machine)
    return f"linux/{arch}"


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """One registry, one repository: auth handshake, retries, digest checks."""

    def __init__(self, ref: ImageRef, keychain: Keychain, options: RegistryOptions) -> None:
        self.ref, self.options = ref, options
        self.host = ref.api_host
        self._keychain = keychain
        self._credentials: Credentials | None = None
        self._credentials_resolved = False
        self._auth_header: str | None = None
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Proxies and CA bundles from the environment apply (HTTPS_PROXY, REQUESTS_CA_BUNDLE), but no
        # credentials from ~/.netrc: an explicit no-op auth stops requests from looking there.
        self.session.auth = _NoNetrc()
        relaxed = not options.tls_verify and (
            _is_loopback(self.host)
            or ref.registry in options.insecure_registries
            or self.host in options.insecure_registries
        )
        self.base = self._choose_base(relaxed)

    def _tls(self, url: str) -> dict[str, Any]:
        """Certificate checks are off only for the relaxed registry itself, never for the blob
        storage it redirects to or its token service. (Passed per request: requests lets a
        REQUESTS_CA_BUNDLE variable override a session-wide ``verify=False``.)"""
        return {"verify": False} if self._unverified and urlsplit(url).netloc == self.host else {}

    def _choose_base(self, relaxed: bool) -> str:
        """HTTPS with verification; for loopback and --insecure-registry hosts, as Docker does:
        HTTPS without verification if the registry speaks it, else plain HTTP."""
        self._unverified = False
        if not relaxed:
            return f"https://{self.host}"
        self._unverified = True
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        try:
            probe = f"https://{self.host}/v2/"
            self.session.get(probe, timeout=min(self.options.timeout_seconds, 10), **self._tls(probe)).close()
        except requests.exceptions.RequestException:
            return f"http://{self.host}"
        return f"https://{self.host}"

    # ---- HTTP with auth, retries and safe redirects

    def _creds(self) -> Credentials | None:
        if not self._credentials_resolved:
            self._credentials = self._keychain.resolve(self.ref.registry)
            self._credentials_resolved = True
        return self._credentials

    def _where(self) -> str:
        return f"{self.ref.registry}/{self.ref.repository}"

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, stream: bool = False
    ) -> requests.Response:
        url = self.base + path
        response = self._send(method, url, headers or {}, stream)
        if response.status_code == 401 and self._authenticate(response):
            response.close()
            response = self._send(method, url, headers or {}, stream)
        if response.status_code >= 400:
            self._fail(response, path)
        return response

    def _send(self, method: str, url: str, headers: dict[str, str], stream: bool) -> requests.Response:
        headers = dict(headers)
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        for attempt in range(self.options.retries + 1):
            try:
                response = self._follow(method, url, headers, stream)
            except requests.exceptions.SSLError as exc:
                raise SourceError(
                    f"{self._where()}: TLS verification failed for {self.host} ({_short(exc)}); "
                    f"use --insecure-registry {self.ref.registry} only for a registry you trust"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt == self.options.retries:
                    raise SourceError(
                        f"{self._where()}: cannot reach {self.host} ({type(exc).__name__}: {_short(exc)})"
                    ) from None
                self._pause(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.options.retries:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._pause(attempt, retry_after)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _follow(self, method: str, url: str, headers: dict[str, str], stream: bool) -> requests.Response:
        """Follow redirects by hand: the Authorization header goes only to the registry's own host."""
        origin = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            sent = (
                headers
                if urlsplit(url).netloc == origin
                else {k: v for k, v in headers.items() if k.lower() != "authorization"}
            )
            response = self.session.request(
                method,
                url,
                headers=sent,
                stream=stream,
                allow_redirects=False,
                timeout=self.options.timeout_seconds,
                **self._tls(url),
            )
            if response.status_code not in (301, 302, 303, 307, 308) or "Location" not in response.headers:
                return response
            url = urljoin(url, response.headers["Location"])
            response.close()
            if response.status_code == 303:
                method = "GET"
        raise SourceError(f"{self._where()}: more than {MAX_REDIRECTS} redirects")

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.options.backoff_seconds * (2**attempt)
        if retry_after:
            if retry_after.strip().isdigit():
                delay = float(retry_after.strip())
            else:
                when = email.utils.parsedate_to_datetime(retry_after) if retry_after else None
                if when is not None:
                    delay = max(0.0, when.timestamp() - time.time())
        time.sleep(min(delay, self.options.max_retry_after_seconds))

    def _authenticate(self, response: requests.Response) -> bool:
        """Answer a 401 challenge (Bearer token service or Basic); False when nothing more can be tried."""
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = _parse_challenge(challenge)
        creds = self._creds()
        if scheme == "basic":
            if creds is None or self._auth_header:
                return False
            self._auth_header = requests.auth._basic_auth_str(creds.username, creds.password)
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        if self._auth_header and self._auth_header.startswith("Bearer ") and creds is None:
            return False  # anonymous token already refused
        token = self._fetch_token(params, creds)
        header = f"Bearer {token}"
        if header == self._auth_header:
            return False
        self._auth_header = header
        return True

    def _fetch_token(self, params: dict[str, str], creds: Credentials | None) -> str:
        realm = params["realm"]
        scope = params.get("scope") or f"repository:{self.ref.repository}:pull"
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        realm_url = urlsplit(realm)
        if realm_url.scheme != "https" and not _is_loopback(realm_url.netloc) and self.base.startswith("https"):
            raise SourceError(
                f"{self._where()}: refusing to send credentials to a non-HTTPS token service {urlsplit(realm).netloc}"
            )
        try:
            if creds is not None and creds.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.password,
                    "client_id": USER_AGENT,
                    **query,
                }
                answer = self.session.post(realm, data=form, timeout=self.options.timeout_seconds, **self._tls(realm))
            else:
                auth = (creds.username, creds.password) if creds else None
                answer = self.session.get(
                    f"{realm}?{urlencode(query)}", auth=auth, timeout=self.options.timeout_seconds, **self._tls(realm)
                )
        except requests.exceptions.RequestException as exc:
            raise SourceError(
                f"{self._where()}: token service {urlsplit(realm).netloc} unreachable ({type(exc).__name__})"
            ) from None
        if answer.status_code in (401, 403):
            raise SourceError(
                f"{self._where()}: the token service refused the credentials"
                f"{' from ' + creds.origin if creds and creds.origin else ''} (HTTP {answer.status_code})"
            )
        if answer.status_code >= 400:
            raise SourceError(f"{self._where()}: token service answered HTTP {answer.status_code}")
        try:
            doc = answer.json()
            return str(doc.get("token") or doc["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SourceError(f"{self._where()}: token service gave no token") from None

    def _fail(self, response: requests.Response, path: str) -> None:
        status = response.status_code
        detail = _registry_errors(response)
        response.close()
        what = self._where()
        if status == 401:
            creds = self._creds()
            hint = (
                f"credentials from {creds.origin} were not accepted"
                if creds
                else "no credentials found (docker login, REGISTRY_AUTH_FILE, --username with --password-stdin)"
            )
            raise SourceError(f"{what}: authentication required by {self.host} (HTTP 401): {hint}{detail}")
        if status == 403:
            raise SourceError(f"{what}: access denied by {self.host} (HTTP 403){detail}")
        if status == 404:
            raise SourceError(f"{what}: {path.rsplit('/', 1)[-1]} not found on {self.host} (HTTP 404){detail}")
        raise SourceError(f"{what}: {self.host} answered HTTP {status} for {path.rsplit('/', 2)[-2]}{detail}")

    # ---- manifests and blobs

    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest), the digest checked against what was asked for or announced."""
        response = self.request(
            "GET", f"/v2/{self.ref.repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT}, stream=True
        )
        body = _read_capped(response, MAX_MANIFEST_BYTES, f"{self._where()}: manifest {reference}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = reference if reference.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise SourceError(
                f"{self._where()}: manifest {reference} does not match its digest {expected} (got {digest})"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        doc = parse_json(body, f"{self._where()}: manifest {reference}")
        if not isinstance(doc, dict):
            raise SourceError(f"{self._where()}: manifest {reference} is not a JSON object")
        media_type = doc.get("mediaType") or media_type
        if media_type in DOCKER_SCHEMA1:
            raise SourceError(f"{self._where()}: {reference} is a Docker schema 1 manifest, which is not supported")
        return body, str(media_type), digest

    def listing(self, path: str, key: str, page_size: int = 1000, limit: int = 1_000_000) -> list[str]:
        """A paginated list (``/v2/_catalog`` repositories, ``/v2/NAME/tags/list`` tags), following
        ``Link: <…>; rel="next"`` headers; at most ``limit`` entries, so a hostile registry cannot
        page forever."""
        items: list[str] = []
        next_path: str | None = f"{path}?n={page_size}"
        seen: set[str] = set()
        while next_path and len(items) < limit and next_path not in seen:
            seen.add(next_path)
            response = self.request("GET", next_path, stream=True)
            link = response.headers.get("Link", "")
            body = _read_capped(response, MAX_MANIFEST_BYTES, f"{self._where()}: {path}")
            doc = parse_json(body, f"{self.host}{path}")
            values = doc.get(key) if isinstance(doc, dict) else None
            items.extend(str(v) for v in values or () if isinstance(v, str))
            next_path = _next_link(link, self.base)
        return items[:limit]

    def blob(self, digest: str, limit: int) -> bytes:
        with self.open_blob(digest) as stream:
            body = stream.read(limit + 1)
        if len(body) > limit:
            raise SourceError(f"{self._where()}: blob {digest} is over the {limit}-byte limit")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise SourceError(f"{self._where()}: blob {digest} does not match its digest (got {actual})")
        return body

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        response = self.request("GET", f"/v2/{self.ref.repository}/blobs/{digest}", stream=True)
        try:
            response.raw.decode_content = False  # the digest is over the bytes as stored
            yield io.BufferedReader(_DropSafe(response.raw, f"{self._where()} blob {digest[:19]}"), 1 << 20)  # type: ignore[arg-type]
        finally:
            response.close()


class _NoNetrc(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _DropSafe(io.RawIOBase):
    """A blob download: a dropped connection or a read timeout mid-stream becomes EOFError, which
    the walker reports as an unreadable layer (keeping what it had already scanned)."""

    def __init__(self, raw: Any, what: str) -> None:
        self._raw, self._what = raw, what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(len(buffer))
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
            raise EOFError(f"{self._what}: download interrupted ({type(exc).__name__})") from None
        buffer[: len(data)] = data
        return len(data)


@dataclass
class RegistryImage(ManifestImage):
    client: RegistryClient
    manifest: dict[str, Any]
    manifest_digest: str
    platform: str | None
    multi_platform: bool

    @property
    def name(self) -> str:
        base = str(self.client.ref)
        return f"{base} [{self.platform}]" if self.multi_platform and self.platform else base

    def read_blob(self, digest: str, limit: int) -> bytes:
        return self.client.blob(digest, limit)

    def layer_handle(self, index: int, digest: str, descriptor: dict[str, Any], diff_id: str | None) -> LayerHandle:
        return LayerHandle(
            index=index,
            diff_id=diff_id,
            blob_digest=digest,
            size=int(descriptor["size"]) if isinstance(descriptor.get("size"), int) else None,
            open=lambda: self.client.open_blob(digest),
        )


@dataclass
class RegistrySource:
    ref: ImageRef
    keychain: Keychain
    options: RegistryOptions = field(default_factory=RegistryOptions)

    @property
    def description(self) -> str:
        return f"docker://{self.ref}"

    def images(self) -> Iterator[RegistryImage]:
        client = RegistryClient(self.ref, self.keychain, self.options)
        body, media_type, digest = client.manifest(self.ref.reference)
        doc = parse_json(body, str(self.ref))
        if media_type not in INDEX_TYPES and "manifests" not in doc:
            yield RegistryImage(client, doc, digest, None, False)
            return
        for entry in self._pick(doc):
            child_body, _, child_digest = client.manifest(str(entry["digest"]))
            if child_digest != entry["digest"]:
                raise SourceError(f"{self.ref}: platform manifest does not match its digest {entry['digest']}")
            yield RegistryImage(
                client, parse_json(child_body, f"{self.ref} [{_platform(entry)}]"), child_digest, _platform(entry), True
            )

    def _pick(self, index: dict[str, Any]) -> list[dict[str, Any]]:
        entries = [
            e
            for e in index.get("manifests") or []
            if isinstance(e, dict) and _platform(e) not in (None, "unknown/unknown")
        ]
        if self.options.all_platforms:
            return entries
        wanted = self.options.platform or host_platform_name()
        chosen = [e for e in entries if _platform_matches(_platform(e), wanted)]
        if not chosen:
            available = ", ".join(sorted({p for e in entries if (p := _platform(e))})) or "none"
            raise UsageError(
                f"{self.ref}: no {wanted} image in this index (available: {available}); "
                "choose one with --platform or scan them all with --all-platforms"
            )
        return chosen[:1]


def _platform(entry: dict[str, Any]) -> str | None:
    plat = entry.get("platform")
    if not isinstance(plat, dict):
        return None
    return "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if plat.get(k))


def _platform_matches(actual: str | None, wanted: str) -> bool:
    if actual is None:
        return False
    if actual == wanted:
        return True
    # "linux/arm64" matches "linux/arm64/v8": the variant is optional unless asked for
    return wanted.count("/") == 1 and actual.startswith(wanted + "/")


def _next_link(header: str, base: str) -> str | None:
    """The path of a ``rel="next"`` Link (RFC 5988, as the distribution spec uses it) on the same
    registry; a link elsewhere is not followed."""
    found = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    if not found:
        return None
    url = urlsplit(urljoin(base + "/", found.group(1)))
    if url.netloc and url.netloc != urlsplit(base).netloc:
        return None
    return url.path + (f"?{url.query}" if url.query else "")


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _registry_errors(response: requests.Response) -> str:
    """The registry's ``{"errors": [{"code", "message"}]}`` body, shortened, as a message suffix."""
    try:
        doc = json.loads(response.raw.read(64 * 1024, decode_content=True) if response.raw else b"")
        errors = doc.get("errors") or []
        text = "; ".join(
            f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)
        )
    except (ValueError, AttributeError, OSError, RecursionError, requests.exceptions.RequestException):
        return ""
    return f" ({text[:200]})" if text else ""


def _read_capped(response: requests.Response, limit: int, what: str) -> bytes:
    body = response.raw.read(limit + 1, decode_content=True)
    response.close()
    if len(body) > limit:
        raise SourceError(f"{what}: larger than {limit} bytes")
    return body


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"https?://\S+", "<url>", text)[:200]
