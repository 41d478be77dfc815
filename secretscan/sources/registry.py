"""Images straight from a registry (OCI distribution spec / Docker Registry HTTP API v2).

Manifests are fetched with every Accept type we understand and checked against their digest;
layer blobs stream from the HTTP response into the layer walker (no temp files), which hashes
them as they pass: a blob whose bytes do not match its digest is an error, never a silent scan.
Redirects to blob storage are followed by hand, because where credentials and bytes may go is ours
to decide, not the server's:

* an ``Authorization`` header (basic or bearer) goes only to the exact origin it was made for —
  scheme, host and port — so ``https://reg`` redirecting to ``http://reg`` gets none;
* plain HTTP is spoken only to loopback hosts and ``--insecure-registry`` hosts, and never after an
  HTTPS hop except to loopback: a downgrade to a remote ``http://`` host is refused outright;
* a token service gets credentials over HTTPS only, or over loopback HTTP beside a loopback
  registry; user credentials never cross the network in clear text.

Every transfer is guarded against trickles and stalls (``sources.transfer``), every body is
bounded by its descriptor's size, and every listing ends (empty page, non-advancing cursor, page cap).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import json
import logging
import platform as host_platform
import re
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
import urllib3

from secretscan.errors import (
    BlobOverrun,
    SecretScanError,
    SourceError,
    TimeLimitReached,
    TransferStalled,
    UsageError,
    causes,
)
from secretscan.image.manifest import DIGEST, ManifestImage, descriptor_size, platform_matches, platform_of
from secretscan.image.model import LayerHandle, UnreadableImage, parse_json
from secretscan.origin import is_loopback_host
from secretscan.sources.auth import Credentials, Keychain
from secretscan.sources.reference import ImageRef
from secretscan.sources.registry_options import RegistryOptions
from secretscan.sources.transfer import guarded_session

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
MAX_LISTING_PAGES = 10_000
MAX_LISTING_ENTRIES = 1_000_000
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "secretscan"


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
    return is_loopback_host(name)


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port, with default ports made explicit: ``https://reg`` is
    ``https://reg:443`` and a different origin from ``http://reg`` (``:80``)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            raise SourceError(f"invalid port in {_netloc(url)}") from None
        if scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"refusing a URL that is not http(s): {scheme or '(none)'}://{_netloc(url)}")
        return cls(scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80))

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def _netloc(url: str) -> str:
    return urlsplit(url).netloc[:100] or url[:100]


class RegistryClient:
    """One registry, one repository: auth handshake, retries, digest checks."""

    def __init__(self, ref: ImageRef, keychain: Keychain, options: RegistryOptions) -> None:
        self.ref, self.options = ref, options
        self.host = ref.api_host
        self._keychain = keychain
        self._credentials: Credentials | None = None
        self._credentials_resolved = False
        self._auth_header: str | None = None
        self.session = guarded_session(options.transfer_policy)
        self.session.headers["User-Agent"] = USER_AGENT
        # Proxies and CA bundles from the environment apply (HTTPS_PROXY, REQUESTS_CA_BUNDLE), but no
        # credentials from ~/.netrc: an explicit no-op auth stops requests from looking there.
        self.session.auth = _NoNetrc()
        relaxed = not options.tls_verify and (
            _is_loopback(self.host)
            or ref.registry in options.insecure_registries
            or self.host in options.insecure_registries
        )
        self._https_origin = Origin.of(f"https://{self.host}")
        self.base = self._choose_base(relaxed)
        self.origin = Origin.of(self.base)

    def _tls(self, url: str) -> dict[str, Any]:
        """Certificate checks are off only for the relaxed registry itself, never for the blob
        storage it redirects to or its token service. (Passed per request: requests lets a
        REQUESTS_CA_BUNDLE variable override a session-wide ``verify=False``.)"""
        return {"verify": False} if self._unverified and Origin.of(url) == self._https_origin else {}

    def _plain_http_allowed(self, target: Origin, after_https: bool) -> bool:
        """Plain HTTP to loopback always; to an ``--insecure-registry`` host only if no HTTPS hop
        came before (a server cannot talk us down from TLS to a remote host)."""
        if target.loopback:
            return True
        named = {target.host, target.netloc, f"{target.host}:{target.port}"}
        return not after_https and bool(named & set(self.options.insecure_registries))

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
                response = self._follow(method, url, headers, stream, self.origin)
            except (TransferStalled, TimeLimitReached) as exc:
                raise type(exc)(f"{self._where()}: {exc}") from None
            except requests.exceptions.SSLError as exc:
                raise SourceError(
                    f"{self._where()}: TLS verification failed for {self.host} ({_short(exc)}); "
                    f"use --insecure-registry {self.ref.registry} only for a registry you trust"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                why, final = _connection_failure(exc, self.host)
                if final or attempt == self.options.retries:
                    raise SourceError(f"{self._where()}: {why}") from None
                self._pause(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.options.retries:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._pause(attempt, retry_after)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _follow(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        stream: bool,
        credentials_for: Origin,
        data: dict[str, str] | None = None,
    ) -> requests.Response:
        """Follow redirects by hand. ``headers`` (with any Authorization) go to ``credentials_for``
        only — same scheme, host and port; every other hop gets them without it. A hop to plain
        HTTP is refused unless ``_plain_http_allowed``: credentials and blobs never cross the
        network in clear text because a server said so."""
        after_https = False
        for _ in range(MAX_REDIRECTS + 1):
            here = Origin.of(url)
            if here.scheme == "http" and not self._plain_http_allowed(here, after_https):
                raise SourceError(
                    f"{self._where()}: refusing to follow a redirect "
                    f"{'from HTTPS ' if after_https else ''}to plain HTTP ({here}): "
                    "the transfer would cross the network in clear text"
                )
            after_https = after_https or here.scheme == "https"
            sent = (
                headers
                if here == credentials_for
                else {k: v for k, v in headers.items() if k.lower() != "authorization"}
            )
            response = self.session.request(
                method,
                url,
                headers=sent,
                data=data,
                stream=stream,
                allow_redirects=False,
                timeout=self.options.timeout_seconds,
                **self._tls(url),
            )
            if response.status_code not in (301, 302, 303, 307, 308) or "Location" not in response.headers:
                return response
            url = urljoin(url, response.headers["Location"])
            response.close()
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, data = "GET", None
        raise SourceError(f"{self._where()}: more than {MAX_REDIRECTS} redirects")

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        self.options.deadline.check()
        delay = self.options.backoff_seconds * (2**attempt)
        if retry_after:
            if retry_after.strip().isdigit():
                delay = float(retry_after.strip())
            else:
                when = email.utils.parsedate_to_datetime(retry_after) if retry_after else None
                if when is not None:
                    delay = max(0.0, when.timestamp() - time.time())
        left = self.options.deadline.remaining()
        time.sleep(min(delay, self.options.max_retry_after_seconds, left if left is not None else delay))
        self.options.deadline.check()

    def _authenticate(self, response: requests.Response) -> bool:
        """Answer a 401 challenge (Bearer token service or Basic); False when nothing more can be tried."""
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = _parse_challenge(challenge)
        creds = self._creds()
        if creds is not None and self.origin.scheme == "http" and not self.origin.loopback:
            raise SourceError(
                f"{self._where()}: {self.host} asks for credentials over plain HTTP; refusing to send them "
                "(serve the registry over HTTPS: --insecure-registry then only relaxes certificate checks)"
            )
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
        try:
            service = Origin.of(realm)
        except SourceError as exc:
            raise SourceError(f"{self._where()}: unusable token service realm: {exc}") from None
        if service.scheme != "https" and not (service.loopback and self.origin.loopback):
            raise SourceError(
                f"{self._where()}: refusing to use the token service {service} named by {self.host}: "
                "a token service must use HTTPS (plain HTTP only on loopback beside a loopback registry)"
            )
        headers: dict[str, str] = {}
        form: dict[str, str] | None = None
        url = realm
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.password, "client_id": USER_AGENT, **query}
        else:
            url = f"{realm}{'&' if urlsplit(realm).query else '?'}{urlencode(query)}"
            if creds is not None:
                headers["Authorization"] = requests.auth._basic_auth_str(creds.username, creds.password)
        try:
            answer = self._follow("POST" if form else "GET", url, headers, True, service, form)
        except (TransferStalled, TimeLimitReached) as exc:
            raise type(exc)(f"{self._where()}: token service {service}: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise SourceError(f"{self._where()}: token service {service} unreachable ({type(exc).__name__})") from None
        if answer.status_code in (401, 403):
            _drain(answer)
            raise SourceError(
                f"{self._where()}: the token service refused the credentials"
                f"{' from ' + creds.origin if creds and creds.origin else ''} (HTTP {answer.status_code})"
            )
        if answer.status_code >= 400:
            _drain(answer)
            raise SourceError(f"{self._where()}: token service answered HTTP {answer.status_code}")
        body = _read_capped(answer, MAX_MANIFEST_BYTES, f"{self._where()}: token service answer")
        try:
            doc = json.loads(body)
            return str(doc.get("token") or doc["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
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

    def manifest(self, reference: str, size: int | None = None) -> tuple[bytes, str, str]:
        """(bytes, media type, digest), the digest checked against what was asked for or announced;
        at most ``size`` bytes when a descriptor gave one."""
        response = self.request(
            "GET", f"/v2/{self.ref.repository}/manifests/{reference}", {"Accept": MANIFEST_ACCEPT}, stream=True
        )
        body = _read_capped(response, MAX_MANIFEST_BYTES, f"{self._where()}: manifest {reference}", size)
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

    def listing(
        self,
        path: str,
        key: str,
        page_size: int = 1000,
        limit: int = MAX_LISTING_ENTRIES,
        max_pages: int = MAX_LISTING_PAGES,
    ) -> Listing:
        """A paginated list (``/v2/_catalog`` repositories, ``/v2/NAME/tags/list`` tags), following
        ``Link: <…>; rel="next"`` headers on the same registry. A hostile registry cannot page
        forever: the listing ends at an empty page, at a ``last`` cursor that does not advance (the
        spec lists names in lexical order, so each page's cursor sorts after the previous one), at a
        repeated link, after ``max_pages`` pages or ``limit`` entries; an early end says why."""
        items: list[str] = []
        next_path: str | None = f"{path}?n={page_size}"
        seen: set[str] = set()
        cursor: str | None = None
        pages = 0
        while next_path:
            if next_path in seen:
                return Listing(tuple(items), f"the registry's next-page link repeats ({next_path[:100]})")
            if pages >= max_pages:
                return Listing(tuple(items), f"stopped after {max_pages} pages")
            seen.add(next_path)
            pages += 1
            response = self.request("GET", next_path, stream=True)
            link = response.headers.get("Link", "")
            body = _read_capped(response, MAX_MANIFEST_BYTES, f"{self._where()}: {path}")
            doc = parse_json(body, f"{self.host}{path}")
            values = doc.get(key) if isinstance(doc, dict) else None
            page = [v for v in values or () if isinstance(v, str)] if isinstance(values, list) else []
            if not page:
                break
            items.extend(page)
            if len(items) >= limit:
                more = len(items) > limit or bool(_next_link(link, self.base))
                return Listing(tuple(items[:limit]), f"more than {limit} entries" if more else None)
            next_path = _next_link(link, self.base)
            if next_path is None:
                break
            following = _query_value(next_path, "last")
            if following is not None:
                if cursor is not None and following <= cursor:
                    return Listing(tuple(items), f"the registry's next-page cursor does not advance (last={following[:100]})")
                cursor = following
        return Listing(tuple(items))

    def blob(self, digest: str, limit: int) -> bytes:
        """A small blob (a config), at most ``limit`` bytes, checked against its digest."""
        with self.open_blob(digest, limit) as stream:
            body = stream.read()
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if actual != digest:
            raise SourceError(f"{self._where()}: blob {digest} does not match its digest (got {actual})")
        return body

    @contextmanager
    def open_blob(self, digest: str, size: int | None = None) -> Iterator[BinaryIO]:
        """The blob's bytes as stored, streamed; with ``size`` (from its descriptor) a blob that
        runs longer is an error after ``size`` bytes, however much more the registry would send."""
        response = self.request("GET", f"/v2/{self.ref.repository}/blobs/{digest}", stream=True)
        what = f"{self._where()} blob {digest[:19]}"
        try:
            response.raw.decode_content = False  # the digest is over the bytes as stored
            yield io.BufferedReader(_BodyStream(response.raw, what, size), 1 << 20)  # type: ignore[arg-type]
        finally:
            response.close()


@dataclass(frozen=True)
class Listing:
    """What a paginated listing returned, and why it ended early if it did."""

    items: tuple[str, ...]
    incomplete: str | None = None


class _NoNetrc(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _BodyStream(io.RawIOBase):
    """A response body as it arrives (``read1``: what the socket has, not a wait for a full
    buffer, so a trickled secret still reaches the scanner before a stall ends the transfer).

    A dropped connection or a read timeout mid-stream becomes EOFError, which the walker reports
    as an unreadable layer (keeping what it had already scanned); stalls and the ``--timeout``
    keep their own types, labelled with the blob; bytes past ``size`` are an error."""

    def __init__(self, raw: Any, what: str, size: int | None) -> None:
        self._raw, self._what, self._size = raw, what, size
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        # up to the declared size, then one byte more to see whether the registry overruns it
        want = len(buffer) if self._size is None else max(1, min(len(buffer), self._size - self._count))
        try:
            data = self._raw.read1(want)
        except (TransferStalled, TimeLimitReached) as exc:
            raise type(exc)(f"{self._what}: {exc}") from None
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
            raise EOFError(f"{self._what}: download interrupted ({type(exc).__name__})") from None
        self._count += len(data)
        if self._size is not None and self._count > self._size:
            raise BlobOverrun(f"{self._what}: longer than {self._size} bytes (its descriptor's size, or the size cap)")
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
        size = descriptor_size(descriptor)
        return LayerHandle(
            index=index,
            diff_id=diff_id,
            blob_digest=digest,
            size=size,
            open=lambda: self.client.open_blob(digest, size),
        )


@dataclass
class RegistrySource:
    ref: ImageRef
    keychain: Keychain
    options: RegistryOptions = field(default_factory=RegistryOptions)

    @property
    def description(self) -> str:
        return f"docker://{self.ref}"

    def images(self) -> Iterator[RegistryImage | UnreadableImage]:
        client = RegistryClient(self.ref, self.keychain, self.options)
        body, media_type, digest = client.manifest(self.ref.reference)
        doc = parse_json(body, str(self.ref))
        wanted = None if self.options.all_platforms else self.options.platform or host_platform_name()
        for item in resolve_manifest(client, doc, media_type, digest, wanted, every=self.options.all_platforms):
            if isinstance(item, UnreadablePlatform):  # one platform's trouble costs only that platform
                yield UnreadableImage(f"{self.ref} [{item.platform}]", item.digest, item.problem)
            else:
                yield RegistryImage(client, item.manifest, item.digest, item.platform, item.from_index)


@dataclass(frozen=True)
class PlatformManifest:
    """One image manifest a reference resolves to: itself, or one platform's of an index."""

    manifest: dict[str, Any]
    digest: str
    platform: str | None
    from_index: bool


@dataclass(frozen=True)
class UnreadablePlatform:
    """A platform an index lists whose manifest cannot be had: the others are still read."""

    digest: str
    platform: str | None
    problem: SourceError


def resolve_manifest(
    client: RegistryClient, doc: dict[str, Any], media_type: str, digest: str, wanted: str | None, *, every: bool
) -> list[PlatformManifest | UnreadablePlatform]:
    """The image manifests behind a fetched manifest ``doc``: itself when it is an image manifest;
    for an index, every platform image (``every``; only those matching ``wanted`` when given) or
    the first that matches ``wanted`` (a UsageError naming the available ones when none does).
    Attestations and other entries without a platform are not images. ``scan`` (one platform
    or ``--all-platforms``) and ``sweep`` (every platform, or ``--platform``) both resolve here."""
    if media_type not in INDEX_TYPES and "manifests" not in doc:
        return [PlatformManifest(doc, digest, None, False)]
    entries, seen = [], set()
    for entry in doc.get("manifests") or []:
        if not isinstance(entry, dict) or platform_of(entry) in (None, "unknown/unknown"):
            continue
        if str(entry.get("digest")) not in seen:  # an index may list one manifest many times: it is one image
            seen.add(str(entry.get("digest")))
            entries.append(entry)
    if every:
        chosen = [e for e in entries if wanted is None or platform_matches(platform_of(e), wanted)]
    else:
        assert wanted is not None
        chosen = [e for e in entries if platform_matches(platform_of(e), wanted)][:1]
        if not chosen:
            available = ", ".join(sorted({p for e in entries if (p := platform_of(e))})) or "none"
            raise UsageError(
                f"{client.ref}: no {wanted} image in this index (available: {available}); "
                "choose one with --platform or scan them all with --all-platforms"
            )
    out: list[PlatformManifest | UnreadablePlatform] = []
    for entry in chosen:
        platform, listed = platform_of(entry), str(entry.get("digest"))
        try:
            if not DIGEST.match(listed):
                raise SourceError(f"{client.ref}: the index lists it with no valid digest")
            body, _, child_digest = client.manifest(listed, descriptor_size(entry))
            if child_digest != listed:
                raise SourceError(f"{client.ref}: manifest does not match its digest {listed}")
            child = parse_json(body, f"{client.ref}@{listed}")
            if not isinstance(child, dict):
                raise SourceError(f"{client.ref}@{listed}: manifest is not a JSON object")
            out.append(PlatformManifest(child, child_digest, platform, True))
        except SourceError as exc:
            out.append(UnreadablePlatform(listed, platform, SourceError(f"the {platform} image: {exc}")))
    return out


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


def _query_value(path: str, name: str) -> str | None:
    values = parse_qs(urlsplit(path).query).get(name)
    return values[-1] if values else None


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


def _drain(response: requests.Response, limit: int = 64 * 1024) -> None:
    """Read a short error body before closing, so the server sees its answer taken (and the
    connection can be reused); a longer or slower one is cut off."""
    with contextlib.suppress(SecretScanError, urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError):
        response.raw.read(limit)
    response.close()


def _read_capped(response: requests.Response, limit: int, what: str, size: int | None = None) -> bytes:
    """A small body (manifest, listing, token), at most ``limit`` bytes and, when a descriptor
    gave one, at most its ``size``: more is an error, and no more than one byte past is read."""
    cap = limit if size is None else min(limit, size)
    try:
        body = response.raw.read(cap + 1, decode_content=True)
    except (TransferStalled, TimeLimitReached) as exc:
        raise type(exc)(f"{what}: {exc}") from None
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
        raise SourceError(f"{what}: download interrupted ({type(exc).__name__})") from None
    finally:
        response.close()
    if len(body) > cap:
        if size is not None and size <= limit:
            raise SourceError(f"{what}: longer than the {size} bytes its descriptor gives")
        raise SourceError(f"{what}: larger than {limit} bytes")
    return body


def _connection_failure(exc: BaseException, host: str) -> tuple[str, bool]:
    """Why a connection failed, in a few words (urllib3's own text runs to hundreds of
    characters), and whether retrying is pointless: a host name that does not resolve will not
    resolve a second later, so a typo costs one lookup, not a round of back-offs."""
    under = list(causes(exc))
    for cause in under:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve {host} ({cause.strerror or 'name resolution failed'})", True
    for cause in under:
        if isinstance(cause, ConnectionRefusedError):
            return f"cannot reach {host} (connection refused)", False
    if isinstance(exc, requests.exceptions.Timeout) or any(isinstance(c, TimeoutError) for c in under):
        return f"cannot reach {host} (timed out)", False
    for cause in under:
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot reach {host} ({cause.strerror})", False
    return f"cannot reach {host} ({type(exc).__name__}: {_short(exc)})", False


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"https?://\S+", "<url>", text)[:200]
