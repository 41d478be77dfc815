"""A faithful in-process double of HashiCorp Vault's HTTP API, for tests.

No Vault server can be installed on the test machines, so this module serves
the part of Vault's documented HTTP API that secretscan and its tests need,
over loopback (127.0.0.1, a port the kernel picks), from a
`ThreadingHTTPServer` in a thread. Drive it with the real `hvac` client::

    with VaultDouble() as vault:
        client = hvac.Client(url=vault.addr, token=vault.root_token)
        client.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": pw})

What it serves (paths under /v1/, all behind token + ACL checks unless noted):

- sys/health (GET/HEAD, unauthenticated), sys/mounts (GET).
- Token store: auth/token/create, create-orphan, lookup-self, lookup, revoke,
  revoke-self, renew-self, renew. Tokens have accessors, TTLs (honoured on the
  double's clock, see `advance_time`), num_uses, parents (revoking a parent
  revokes its children) and namespaces.
- KV version 2 on every mount in `kv_mounts`: data/ (GET ?version=N, POST/PUT
  with options.cas, PATCH merge-patch, DELETE), metadata/ (GET, LIST or
  GET ?list=true, POST, PATCH, DELETE), delete/, undelete/, destroy/, config.
- auth/<mount>/login for AppRole and Kubernetes once enabled with
  `enable_approle` / `enable_kubernetes` (default mounts approle/, kubernetes/).

Behaviour follows Vault's source (hashicorp/vault, vault-plugin-secrets-kv,
vault-plugin-auth-kubernetes) and API docs: the response envelope
(request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings,
auth, mount_type), error bodies ({"errors": [...]}, multierror-formatted where
Vault wraps them), status codes, ACL path matching (exact, glob `*`, segment
`+`, Vault's priority rules, deny wins, create-vs-update by existence check)
and the KV v2 version bookkeeping (max_versions sliding window,
oldest_version, soft delete / destroy, 404 with metadata for deleted
versions). Deliberate differences are listed in `KNOWN_DEVIATIONS`.

Secrets stay secret: the double never prints or logs anything (the HTTP
server's request log is silenced), keeps tokens only as SHA-256 digests,
and its request log (`VaultDouble.requests`) records method, path, the
token's accessor, namespace and status -- never a token or a secret value.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.server
import json
import re
import secrets
import string
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["KNOWN_DEVIATIONS", "VaultDouble"]

LOOPBACK = "127.0.0.1"
VAULT_VERSION = "1.17.6"

# Vault's system default and maximum lease TTL: 768h (32 days).
SYSTEM_MAX_TTL = 768 * 3600
KV_DEFAULT_MAX_VERSIONS = 10

# Error strings exactly as Vault renders them (hashicorp/go-multierror formatting).
PERMISSION_DENIED = "permission denied"
ACL_DENIED = "1 error occurred:\n\t* permission denied\n\n"
INVALID_TOKEN = "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
UNSUPPORTED_OPERATION = "1 error occurred:\n\t* unsupported operation\n\n"
UNSUPPORTED_PATH = "1 error occurred:\n\t* unsupported path\n\n"
INTERNAL_ERROR = "1 error occurred:\n\t* internal error\n\n"
KV_INVALID_PATH = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
    "endpoints to use. If using the Vault CLI, use 'vault kv {verb}' for this operation."
)

CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"})

# Vault's built-in "default" policy (identity templated paths left out).
DEFAULT_POLICY: dict[str, list[str]] = {
    "auth/token/lookup-self": ["read"],
    "auth/token/renew-self": ["update"],
    "auth/token/revoke-self": ["update"],
    "sys/capabilities-self": ["update"],
    "sys/internal/ui/resultant-acl": ["read"],
    "sys/renew": ["update"],
    "sys/leases/renew": ["update"],
    "sys/leases/lookup": ["update"],
    "cubbyhole/*": ["create", "read", "update", "delete", "list"],
    "sys/wrapping/wrap": ["update"],
    "sys/wrapping/lookup": ["update"],
    "sys/wrapping/unwrap": ["update"],
    "sys/tools/hash": ["update"],
    "sys/tools/hash/*": ["update"],
    "sys/control-group/request": ["update"],
    "sys/mfa/challenge": ["update"],
}

KNOWN_DEVIATIONS = (
    "Only the endpoints listed in the module docstring exist; any other path behaves like an unmounted "
    "or unsupported path (404), after the usual token and ACL checks.",
    "Batch tokens, token roles, response wrapping, identity entities/groups, sentinel/EGP, control "
    "groups, MFA, bound CIDRs and audit devices are not implemented.",
    "Request bodies must be JSON (Vault also accepts form-encoded bodies).",
    "Namespaces (Vault Enterprise) are enabled with namespaces=True; every namespace gets the same KV "
    "mounts (a real child namespace starts with none). With namespaces=False the X-Vault-Namespace "
    "header is ignored, as Vault Community Edition does.",
    "A token used outside its namespace (or its descendants) is refused with the ACL denial body; "
    "Vault Enterprise's exact body for that case was not verified.",
    "Kubernetes login compares the JWT with the registered one (constant time) instead of asking a "
    "TokenReview API; service-account metadata is read from the JWT's claims when it decodes.",
    "renew-self / renew on a non-renewable token (including the root token) answer 400 "
    "'lease is not renewable' for both cases.",
    'Raw 404 bodies (deleted KV versions) carry mount_type "" like Vault\'s RespondWithStatusCode; the '
    "exact presence of mount_type there was inferred from the source, not observed.",
)


# --------------------------------------------------------------------------- helpers


class _VaultError(Exception):
    """An HTTP error response: `status` and Vault's {"errors": [...]} list (or a raw body)."""

    def __init__(self, status: int, errors: list[str] | None = None, body: Any = None, raw: bool = False):
        super().__init__(status)
        self.status = status
        self.errors = [] if errors is None else errors
        self.body = body
        self.raw = raw


@dataclass
class _Response:
    status: int
    body: Any = None  # dict -> JSON; None -> empty body


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_BASE62 = string.ascii_letters + string.digits


def _rand62(n: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def _rfc3339(ts: float | None) -> str:
    """Go's time.Time JSON form (RFC 3339 with nanoseconds, UTC); "" for no time, as Vault's KV does."""
    if ts is None:
        return ""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}000Z"


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")


def _parse_duration(value: Any, field_name: str = "ttl") -> int:
    """Vault's parseutil.ParseDurationSecond: an int (seconds), "3600", or a Go duration ("1h30m", "2d")."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _VaultError(400, [f'error parsing "{field_name}"'])
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise _VaultError(400, [f'time: invalid duration "{text}"'])
    return sign * int(total)


def _go_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 0s, 45s, 30m0s, 768h0m0s."""
    if seconds == 0:
        return "0s"
    neg, seconds = seconds < 0, abs(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    text = f"{h}h{m}m{s}s" if h else (f"{m}m{s}s" if m else f"{s}s")
    return "-" + text if neg else text


def _to_int(value: Any, field_name: str) -> int:
    """mapstructure.WeakDecode into an int (numbers, numeric strings, bools)."""
    try:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            return int(float(value)) if value.strip() else 0
        return int(value)
    except (TypeError, ValueError):
        raise _VaultError(400, [f'error converting input {value!r} for field "{field_name}"']) from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "yes")
    return bool(value)


def _str_list(value: Any) -> list[str]:
    """Vault's TypeCommaStringSlice: a list, or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(p) for p in value]


def _int_list(value: Any, field_name: str) -> list[int]:
    """Vault's TypeCommaIntSlice."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    if not isinstance(value, list):
        value = [value]
    return [_to_int(v, field_name) for v in value]


def _sanitize_policies(policies: Iterable[str], add_default: bool) -> list[str]:
    """policyutil.SanitizePolicies: trim, lower-case, root wins alone, optionally add default, sort, dedupe."""
    out: list[str] = []
    default_found = False
    for raw in policies:
        p = raw.strip().lower()
        if not p:
            continue
        if p == "root":
            out, default_found = ["root"], True
            break
        if p == "default":
            default_found = True
        out.append(p)
    if add_default and (not out or not default_found):
        out.append("default")
    return sorted(set(out))


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what Vault applies for PATCH)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _jwt_claims(jwt: str) -> dict[str, Any]:
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return _as_dict(claims)


# --------------------------------------------------------------------------- ACL


def _validate_policy_path(pattern: str) -> None:
    if "*" in pattern[:-1]:
        raise ValueError(f"policy path {pattern!r}: '*' is only allowed at the end")
    body = pattern.removesuffix("*")
    for segment in body.split("/"):
        if "+" in segment and segment != "+":
            raise ValueError(f"policy path {pattern!r}: '+' must be a whole path segment")


def _pattern_matches(pattern: str, path: str) -> bool:
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    if "+" not in body:
        return path.startswith(body) if glob else path == body
    pat = body.split("/")
    segs = path.split("/")
    if glob:
        if len(segs) < len(pat):
            return False
        for i, p in enumerate(pat):
            last = i == len(pat) - 1
            if p == "+":
                continue
            if last:
                if not segs[i].startswith(p):
                    return False
            elif segs[i] != p:
                return False
        return True
    return len(segs) == len(pat) and all(p in ("+", s) for p, s in zip(pat, segs, strict=True))


def _priority(pattern: str) -> tuple[int, int, int, int, str]:
    """Vault's ordering for overlapping non-exact policy paths; the greatest key wins.

    Lower priority when: the first wildcard (+ or *) comes earlier; it ends in *;
    it has more + segments; it is shorter; it is lexicographically smaller.
    """
    positions = [i for i, ch in enumerate(pattern) if ch in "+*"]
    first = positions[0] if positions else len(pattern)
    return (first, 0 if pattern.endswith("*") else 1, -pattern.split("/").count("+"), len(pattern), pattern)


def _merge_rules(policies: Iterable[Mapping[str, frozenset[str]]]) -> dict[str, frozenset[str]]:
    """Merge policies like vault.NewACL: capabilities of identical paths add up; deny wipes the rest."""
    merged: dict[str, frozenset[str]] = {}
    for policy in policies:
        for pattern, caps in policy.items():
            have = merged.get(pattern)
            if have is None:
                merged[pattern] = caps
            elif "deny" in have:
                continue
            elif "deny" in caps:
                merged[pattern] = frozenset({"deny"})
            else:
                merged[pattern] = have | caps
    return merged


def _capabilities(rules: Mapping[str, frozenset[str]], path: str, op: str) -> frozenset[str]:
    """The capabilities the merged `rules` grant on `path` (vault.ACL.AllowOperation's lookup)."""
    is_list = op == "list"
    candidates = [path.rstrip("/"), path] if is_list else [path]
    for p in candidates:
        if p in rules and not (p.endswith("*") or "+" in p.split("/")):
            return rules[p]
    best: str | None = None
    for pattern in rules:
        exact = not pattern.endswith("*") and "+" not in pattern.split("/")
        if exact:
            continue
        if any(_pattern_matches(pattern, p) for p in candidates) and (
            best is None or _priority(pattern) > _priority(best)
        ):
            best = pattern
    return rules[best] if best is not None else frozenset()


def _allowed(caps: frozenset[str], op: str) -> bool:
    if "deny" in caps:
        return False
    return op in caps


# --------------------------------------------------------------------------- state


@dataclass
class _Token:
    digest: str
    accessor: str
    namespace: str
    policies: list[str]
    meta: dict[str, str] | None
    display_name: str
    path: str
    issue_time: float
    ttl: int  # creation TTL in seconds; 0 = never expires
    expire_time: float | None
    renewable: bool
    num_uses: int
    limited_uses: bool
    explicit_max_ttl: int = 0
    period: int = 0
    parent: str | None = None  # parent accessor; None = orphan
    entity_id: str = ""
    last_renewal: float | None = None
    children: set[str] = field(default_factory=set)


@dataclass
class _Version:
    created: float
    data: dict[str, Any] | None
    deletion_time: float | None = None
    destroyed: bool = False


@dataclass
class _KeyMeta:
    created: float
    updated: float
    versions: dict[int, _Version] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None


@dataclass
class _KVMount:
    accessor: str
    uuid: str
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    keys: dict[str, _KeyMeta] = field(default_factory=dict)


@dataclass
class _AppRole:
    name: str
    role_id: str
    secret_ids: set[str]
    policies: list[str]
    token_ttl: int
    entity_id: str


@dataclass
class _KubeRole:
    name: str
    jwt_digest: str
    policies: list[str]
    token_ttl: int


@dataclass
class _Namespace:
    path: str  # "" for root, else "team-a/" or "team-a/child/"
    id: str
    policies: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    kv: dict[str, _KVMount] = field(default_factory=dict)
    approle: dict[str, dict[str, _AppRole]] = field(default_factory=dict)  # auth mount -> role name -> role
    kubernetes: dict[str, dict[str, _KubeRole]] = field(default_factory=dict)


@dataclass
class _Request:
    method: str
    op: str  # read | list | update | create | delete | patch
    path: str  # relative to the namespace
    ns: _Namespace
    data: dict[str, Any]
    query: dict[str, str]
    client_token: str | None
    token: _Token | None = None
    acl_path: str = ""


# --------------------------------------------------------------------------- the double


class VaultDouble:
    """A Vault HTTP API double on 127.0.0.1; use as a context manager (or call start/stop)."""

    def __init__(self, kv_mounts: Iterable[str] = ("secret",), namespaces: bool = False) -> None:
        self.kv_mounts = tuple(m.strip("/") for m in kv_mounts)
        if not all(self.kv_mounts):
            raise ValueError("kv_mounts must be non-empty paths")
        self.namespaces_enabled = namespaces
        self.requests: list[dict[str, Any]] = []
        self.internal_errors: list[str] = []  # tracebacks of bugs in the double (never request data)
        self.addr = ""
        self.root_token = ""
        self._lock = threading.RLock()
        self._clock_offset = 0.0
        self._tokens: dict[str, _Token] = {}  # digest -> token
        self._by_accessor: dict[str, str] = {}  # accessor -> digest
        self._namespaces: dict[str, _Namespace] = {}
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cluster_id = str(uuid.uuid4())
        self._cluster_name = "vault-cluster-" + secrets.token_hex(4)
        self._add_namespace("")

    def __repr__(self) -> str:  # never show the root token
        return f"VaultDouble(addr={self.addr!r}, kv_mounts={self.kv_mounts!r}, namespaces={self.namespaces_enabled})"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> VaultDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            return
        root = self._new_token(
            namespace="",
            policies=["root"],
            meta=None,
            display_name="root",
            path="auth/token/root",
            ttl=0,
            renewable=False,
            num_uses=0,
            parent=None,
        )
        self.root_token = root
        handler = type("_BoundHandler", (_Handler,), {"double": self})
        server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
        server.daemon_threads = True
        self._server = server
        self.addr = f"http://{LOOPBACK}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vault-double", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    # ------------------------------------------------------------------ clock

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def advance_time(self, seconds: float) -> None:
        """Move the double's clock forward (token expiry, KV delete_version_after) without sleeping."""
        with self._lock:
            self._clock_offset += seconds

    # ------------------------------------------------------------------ namespaces

    @staticmethod
    def _ns_key(namespace: str | None) -> str:
        if not namespace:
            return ""
        parts = [p for p in namespace.strip().split("/") if p]
        return "".join(p + "/" for p in parts)

    def _add_namespace(self, path: str) -> _Namespace:
        ns = _Namespace(path=path, id="root" if path == "" else _rand62(5))
        ns.policies["default"] = {p: frozenset(c) for p, c in DEFAULT_POLICY.items()}
        for mount in self.kv_mounts:
            ns.kv[mount] = _KVMount(accessor="kv_" + secrets.token_hex(4), uuid=str(uuid.uuid4()))
        self._namespaces[path] = ns
        return ns

    def create_namespace(self, path: str) -> str:
        """Create a namespace (and its parents); returns its canonical path ("team-a/")."""
        if not self.namespaces_enabled:
            raise RuntimeError("this VaultDouble was started with namespaces=False")
        key = self._ns_key(path)
        if not key:
            raise ValueError("the root namespace always exists")
        with self._lock:
            parts = key.rstrip("/").split("/")
            for i in range(1, len(parts) + 1):
                sub = "".join(p + "/" for p in parts[:i])
                if sub not in self._namespaces:
                    self._add_namespace(sub)
        return key

    def _ns(self, namespace: str | None) -> _Namespace:
        key = self._ns_key(namespace)
        if key and not self.namespaces_enabled:
            raise RuntimeError("this VaultDouble was started with namespaces=False")
        if key not in self._namespaces:
            self.create_namespace(key)
        return self._namespaces[key]

    # ------------------------------------------------------------------ server-side helpers

    def set_policy(self, name: str, rules: Mapping[str, Iterable[str]], namespace: str | None = None) -> None:
        """Write ACL policy `name`: {path glob: [capabilities]} (Vault-style `*` suffix and `+` segments)."""
        if name.lower() == "root":
            raise ValueError("cannot update the root policy")
        parsed: dict[str, frozenset[str]] = {}
        for pattern, caps in rules.items():
            _validate_policy_path(pattern)
            capset = frozenset(c.lower() for c in caps)
            unknown = capset - CAPABILITIES
            if unknown:
                raise ValueError(f"policy {name!r} path {pattern!r}: unknown capabilities {sorted(unknown)}")
            parsed[pattern.lstrip("/")] = capset
        with self._lock:
            self._ns(namespace).policies[name.lower()] = parsed

    def create_token(
        self,
        policies: Iterable[str],
        ttl: str | int = "1h",
        meta: Mapping[str, str] | None = None,
        display_name: str = "token",
        renewable: bool = True,
        num_uses: int = 0,
        namespace: str | None = None,
        no_default_policy: bool = False,
        explicit_max_ttl: str | int = 0,
    ) -> str:
        """Mint a service token server-side (an orphan, as if root called auth/token/create-orphan)."""
        with self._lock:
            ns = self._ns(namespace)
            pols = _sanitize_policies(list(policies), not no_default_policy)
            if no_default_policy and "default" in pols:
                pols.remove("default")
            ttl_s = _parse_duration(ttl)
            max_s = _parse_duration(explicit_max_ttl, "explicit_max_ttl")
            if "root" not in pols and ttl_s == 0:
                ttl_s = SYSTEM_MAX_TTL
            cap = min(max_s, SYSTEM_MAX_TTL) if max_s else SYSTEM_MAX_TTL
            if ttl_s > cap:
                ttl_s = cap
            return self._new_token(
                namespace=ns.path,
                policies=pols,
                meta=dict(meta) if meta else None,
                display_name=self._token_display_name(display_name),
                path="auth/token/create-orphan",
                ttl=ttl_s,
                renewable=renewable and ttl_s > 0,
                num_uses=num_uses,
                parent=None,
                explicit_max_ttl=max_s,
            )

    def revoke(self, token: str) -> None:
        """Revoke `token` and its child tokens (auth/token/revoke)."""
        with self._lock:
            entry = self._tokens.get(_digest(token))
            if entry is not None:
                self._revoke_tree(entry.accessor)

    def token_accessor(self, token: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(_digest(token))
            return entry.accessor if entry else None

    def enable_approle(
        self,
        role_name: str,
        policies: Iterable[str],
        token_ttl: str | int = 0,
        namespace: str | None = None,
        mount: str = "approle",
    ) -> tuple[str, str]:
        """Enable auth/<mount> (AppRole) if needed, create role `role_name` or add a secret ID to it.

        Returns (role_id, secret_id); both are random UUIDs, as Vault generates them.
        """
        with self._lock:
            roles = self._ns(namespace).approle.setdefault(mount.strip("/"), {})
            role = roles.get(role_name)
            secret_id = str(uuid.uuid4())
            if role is None:
                role = _AppRole(
                    name=role_name,
                    role_id=str(uuid.uuid4()),
                    secret_ids=set(),
                    policies=list(policies),
                    token_ttl=_parse_duration(token_ttl),
                    entity_id=str(uuid.uuid4()),
                )
                roles[role_name] = role
            else:
                role.policies = list(policies)
            role.secret_ids.add(_digest(secret_id))
            return role.role_id, secret_id

    def enable_kubernetes(
        self,
        role_name: str,
        service_account_jwt: str,
        policies: Iterable[str],
        token_ttl: str | int = 0,
        namespace: str | None = None,
        mount: str = "kubernetes",
    ) -> None:
        """Enable auth/<mount> (Kubernetes) if needed, with role `role_name` accepting exactly this JWT."""
        with self._lock:
            self._ns(namespace).kubernetes.setdefault(mount.strip("/"), {})[role_name] = _KubeRole(
                name=role_name,
                jwt_digest=_digest(service_account_jwt),
                policies=list(policies),
                token_ttl=_parse_duration(token_ttl),
            )

    def put_secret(self, mount: str, path: str, data: Mapping[str, Any], namespace: str | None = None) -> int:
        """Write a new KV v2 version server-side (no token, no CAS); returns the new version number."""
        with self._lock:
            kv = self._kv_mount(mount, namespace)
            key = path.strip("/")
            meta = kv.keys.get(key)
            if meta is None:
                now = self._now()
                meta = kv.keys[key] = _KeyMeta(created=now, updated=now)
            return self._kv_add_version(kv, meta, copy.deepcopy(dict(data)))

    def delete_secret(
        self, mount: str, path: str, versions: Iterable[int] | None = None, namespace: str | None = None
    ) -> None:
        """Soft-delete versions (default: the latest) server-side."""
        with self._lock:
            meta = self._kv_mount(mount, namespace).keys.get(path.strip("/"))
            if meta is None:
                return
            now = self._now()
            for v in versions if versions is not None else [meta.current_version]:
                vm = meta.versions.get(v)
                if vm and not vm.destroyed and not (vm.deletion_time is not None and vm.deletion_time <= now):
                    vm.deletion_time = now

    def destroy_secret(self, mount: str, path: str, versions: Iterable[int], namespace: str | None = None) -> None:
        """Permanently destroy versions server-side."""
        with self._lock:
            meta = self._kv_mount(mount, namespace).keys.get(path.strip("/"))
            for v in versions if meta else []:
                vm = meta.versions.get(v) if meta else None
                if vm:
                    vm.destroyed, vm.data = True, None

    def _kv_mount(self, mount: str, namespace: str | None) -> _KVMount:
        kv = self._ns(namespace).kv.get(mount.strip("/"))
        if kv is None:
            raise KeyError(f"no KV mount {mount!r}; kv_mounts={self.kv_mounts!r}")
        return kv

    # ------------------------------------------------------------------ tokens

    @staticmethod
    def _token_display_name(name: str) -> str:
        if not name:
            return "token"
        full = re.sub(r"[^a-zA-Z0-9-]", "-", "token-" + name)
        return full.removesuffix("-")

    def _new_token(
        self,
        *,
        namespace: str,
        policies: list[str],
        meta: dict[str, str] | None,
        display_name: str,
        path: str,
        ttl: int,
        renewable: bool,
        num_uses: int,
        parent: str | None,
        explicit_max_ttl: int = 0,
        period: int = 0,
        entity_id: str = "",
        token_id: str | None = None,
    ) -> str:
        ns = self._namespaces[namespace]
        suffix = "" if ns.path == "" else "." + ns.id
        if token_id is None:
            # Root tokens look like hvs.<24>; other service tokens are the long server-side-consistent form.
            token_id = ("hvs." + _rand62(24) if policies == ["root"] else "hvs.CAESI" + _rand62(86)) + suffix
        accessor = _rand62(24) + suffix
        now = self._now()
        entry = _Token(
            digest=_digest(token_id),
            accessor=accessor,
            namespace=namespace,
            policies=policies,
            meta=meta,
            display_name=display_name,
            path=path,
            issue_time=now,
            ttl=ttl,
            expire_time=now + ttl if ttl else None,
            renewable=renewable,
            num_uses=num_uses,
            limited_uses=num_uses > 0,
            explicit_max_ttl=explicit_max_ttl,
            period=period,
            parent=parent,
            entity_id=entity_id,
        )
        self._tokens[entry.digest] = entry
        self._by_accessor[accessor] = entry.digest
        if parent is not None and parent in self._by_accessor:
            self._tokens[self._by_accessor[parent]].children.add(accessor)
        return token_id

    def _revoke_tree(self, accessor: str) -> None:
        digest = self._by_accessor.pop(accessor, None)
        if digest is None:
            return
        entry = self._tokens.pop(digest)
        for child in list(entry.children):
            self._revoke_tree(child)
        if entry.parent is not None and entry.parent in self._by_accessor:
            self._tokens[self._by_accessor[entry.parent]].children.discard(accessor)

    def _live_token(self, token: str | None) -> _Token | None:
        """The token's entry if it exists and it (and every ancestor) has not expired; expired ones are revoked."""
        if not token:
            return None
        entry = self._tokens.get(_digest(token))
        if entry is None:
            return None
        now = self._now()
        node: _Token | None = entry
        while node is not None:
            if node.expire_time is not None and node.expire_time <= now:
                self._revoke_tree(node.accessor)  # the expiration manager revokes it and its children
                return None
            node = self._tokens.get(self._by_accessor.get(node.parent, "")) if node.parent else None
        return entry

    def _token_lookup_data(self, entry: _Token, token_id: str) -> dict[str, Any]:
        now = self._now()
        data: dict[str, Any] = {
            "accessor": entry.accessor,
            "creation_time": int(entry.issue_time),
            "creation_ttl": entry.ttl,
            "display_name": entry.display_name,
            "entity_id": entry.entity_id,
            "expire_time": _rfc3339(entry.expire_time) if entry.expire_time else None,
            "explicit_max_ttl": entry.explicit_max_ttl,
            "id": token_id,
            "issue_time": _rfc3339(entry.issue_time),
            "meta": entry.meta,
            "num_uses": entry.num_uses,
            "orphan": entry.parent is None,
            "path": entry.path,
            "policies": entry.policies,
            "renewable": entry.renewable,
            "ttl": max(0, int(entry.expire_time - now)) if entry.expire_time else 0,
            "type": "service",
        }
        if entry.period:
            data["period"] = entry.period
        if entry.last_renewal is not None:
            data["last_renewal_time"] = int(entry.last_renewal)
            data["last_renewal"] = _rfc3339(entry.last_renewal)
        if entry.namespace:
            data["namespace_path"] = entry.namespace
        return data

    @staticmethod
    def _auth_block(entry: _Token, token_id: str, lease_duration: int) -> dict[str, Any]:
        return {
            "client_token": token_id,
            "accessor": entry.accessor,
            "policies": entry.policies,
            "token_policies": entry.policies,
            "metadata": entry.meta,
            "lease_duration": lease_duration,
            "renewable": entry.renewable,
            "entity_id": entry.entity_id,
            "token_type": "service",
            "orphan": entry.parent is None,
            "mfa_requirement": None,
            "num_uses": entry.num_uses,
        }

    # ------------------------------------------------------------------ HTTP entry point

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Serve one HTTP request (called by the handler thread; `headers` keys lower-case)."""
        parsed = urllib.parse.urlsplit(target)
        url_path = urllib.parse.unquote(parsed.path)
        log: dict[str, Any] = {"method": method, "path": url_path, "accessor": None, "namespace": None, "status": 0}
        with self._lock:
            try:
                resp = self._dispatch(method, url_path, parsed.query, headers, body, log)
            except _VaultError as e:
                resp = _Response(e.status, e.body if e.raw else {"errors": e.errors})
            except Exception:  # a bug in the double: answer like Vault's internal error
                self.internal_errors.append(traceback.format_exc())
                resp = _Response(500, {"errors": [INTERNAL_ERROR]})
            log["status"] = resp.status
            self.requests.append(log)
        out_headers = {"Cache-Control": "no-store"}
        if resp.status == 204 or method == "HEAD":
            return resp.status, out_headers, b""
        out_headers["Content-Type"] = "application/json"
        payload = b"" if resp.body is None else (json.dumps(resp.body) + "\n").encode()
        return resp.status, out_headers, payload

    def _dispatch(
        self,
        method: str,
        url_path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
        log: dict[str, Any],
    ) -> _Response:
        if not url_path.startswith("/v1/"):
            raise _VaultError(404)
        path = url_path[len("/v1/") :]
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(query_string, keep_blank_values=True).items()}

        # http.buildLogicalRequest: method -> operation, body parsing.
        data: dict[str, Any] = {}
        if method in ("GET", "HEAD"):
            op = "read"
            if query.get("list"):
                if query["list"].lower() not in ("1", "t", "true", "0", "f", "false"):
                    raise _VaultError(400)
                if _to_bool(query.pop("list")):
                    op = "list"
            data = dict(query)
        elif method in ("POST", "PUT"):
            op = "update"
            data = self._json_body(body)
        elif method == "PATCH":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/merge-patch+json":
                raise _VaultError(
                    415, [f"PATCH requires Content-Type of application/merge-patch+json, provided {ctype}"]
                )
            op = "patch"
            data = self._json_body(body)
        elif method == "DELETE":
            op = "delete"
            data = dict(query)
        elif method == "LIST":
            op = "list"
            data = dict(query)
        else:
            raise _VaultError(405)
        if op == "list" and not path.endswith("/"):
            path += "/"

        # sys/health is served by the HTTP layer, before namespaces and tokens.
        if path.rstrip("/") == "sys/health":
            return self._sys_health(method, query)

        ns, path = self._resolve_namespace(headers.get("x-vault-namespace", ""), path)
        log["namespace"] = ns.path or None
        client_token = headers.get("x-vault-token") or None
        if client_token is None:
            authz = headers.get("authorization", "")
            if authz.startswith("Bearer "):
                client_token = authz[len("Bearer ") :].strip() or None

        # core.handleCancelableRequest
        if path.endswith("/") and op in ("update", "create", "patch"):
            raise _VaultError(400, ["cannot write to a path ending in '/'"])

        req = _Request(method=method, op=op, path=path, ns=ns, data=data, query=query, client_token=client_token)
        route = self._route(ns, path)

        if route is not None and route[0] == "login":
            return self._login(req, route[1], route[2])

        # core.CheckToken
        if not client_token:
            raise _VaultError(403, [PERMISSION_DENIED])
        entry = self._live_token(client_token)
        if entry is None:
            raise _VaultError(403, [INVALID_TOKEN])
        log["accessor"] = entry.accessor
        req.token = entry
        if not ns.path.startswith(entry.namespace):
            raise _VaultError(403, [ACL_DENIED])
        req.acl_path = ns.path[len(entry.namespace) :] + path

        if op == "update" and route is not None and self._exists(ns, route, path) is False:
            req.op = "create"

        allowed = self._acl_allows(entry, req.acl_path, req.op)
        # tokenStore.UseToken runs whether or not the ACL allowed the request.
        revoke_after = False
        if entry.limited_uses:
            entry.num_uses -= 1
            revoke_after = entry.num_uses <= 0
        try:
            if not allowed:
                raise _VaultError(403, [ACL_DENIED])
            if route is None:
                raise _VaultError(404, [f'no handler for route "{path}". route entry not found.'])
            return self._route_request(req, route)
        finally:
            if revoke_after:
                self._revoke_tree(entry.accessor)

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except ValueError:
            raise _VaultError(400, ["error parsing JSON"]) from None
        if not isinstance(data, dict):
            raise _VaultError(400, ["error parsing JSON"])
        return data

    def _resolve_namespace(self, header: str, path: str) -> tuple[_Namespace, str]:
        if not self.namespaces_enabled:
            return self._namespaces[""], path
        base = self._ns_key(header)
        if base not in self._namespaces:
            raise _VaultError(404, ["namespace not found"])
        best = base
        for candidate in self._namespaces:
            if candidate.startswith(base) and len(candidate) > len(best):
                rel = candidate[len(base) :]
                if path.startswith(rel):
                    best = candidate
        return self._namespaces[best], path[len(best) - len(base) :]

    def _route(self, ns: _Namespace, path: str) -> tuple[str, str, str] | None:
        """(kind, mount, sub-path) for `path`, or None when nothing is mounted there."""
        mounts: list[tuple[str, str]] = [("sys/", "sys"), ("auth/token/", "token")]
        mounts += [(f"auth/{m}/", "approle") for m in ns.approle]
        mounts += [(f"auth/{m}/", "kubernetes") for m in ns.kubernetes]
        mounts += [(m + "/", "kv") for m in ns.kv]
        best: tuple[str, str] | None = None
        for prefix, kind in mounts:
            if (path.startswith(prefix) or path == prefix.rstrip("/")) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, kind)
        if best is None:
            return None
        prefix, kind = best
        sub = path[len(prefix) :] if path.startswith(prefix) else ""
        if kind in ("approle", "kubernetes") and sub == "login":
            return ("login", kind, prefix.removeprefix("auth/").rstrip("/"))
        return (kind, prefix.rstrip("/"), sub)

    def _exists(self, ns: _Namespace, route: tuple[str, str, str], path: str) -> bool | None:
        """The backend's existence check (None = the path has none, so a write is an update)."""
        kind, mount, sub = route
        if kind != "kv":
            return None
        for prefix in ("data/", "metadata/"):
            if sub.startswith(prefix) and sub != prefix:
                return sub[len(prefix) :] in ns.kv[mount].keys
        return None

    def _acl_allows(self, entry: _Token, acl_path: str, op: str) -> bool:
        if "root" in entry.policies:
            return True
        return _allowed(self._token_rules(entry, acl_path, op), op)

    def _token_rules(self, entry: _Token, acl_path: str, op: str) -> frozenset[str]:
        ns = self._namespaces[entry.namespace]
        rules = _merge_rules(ns.policies[p] for p in entry.policies if p in ns.policies)
        return _capabilities(rules, acl_path, op)

    def _is_sudo(self, req: _Request) -> bool:
        assert req.token is not None
        if "root" in req.token.policies:
            return True
        caps = self._token_rules(req.token, req.acl_path, "update")
        return "sudo" in caps and "deny" not in caps

    def _route_request(self, req: _Request, route: tuple[str, str, str]) -> _Response:
        kind, mount, sub = route
        if kind == "sys":
            return self._sys(req, sub)
        if kind == "token":
            return self._token_store(req, sub)
        if kind == "kv":
            return self._kv(req, req.ns.kv[mount], sub)
        raise _VaultError(404, [UNSUPPORTED_PATH])  # approle / kubernetes paths other than login

    # ------------------------------------------------------------------ responses

    def _envelope(
        self,
        data: Any = None,
        *,
        auth: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
        mount_type: str = "",
    ) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": warnings or None,
            "auth": auth,
            "mount_type": mount_type,
        }

    def _ok(self, data: Any = None, **kw: Any) -> _Response:
        return _Response(200, self._envelope(data, **kw))

    # ------------------------------------------------------------------ sys

    def _sys_health(self, method: str, query: Mapping[str, str]) -> _Response:
        if method not in ("GET", "HEAD"):
            raise _VaultError(405)
        status = 200
        if query.get("activecode"):
            status = _to_int(query["activecode"], "activecode")
        return _Response(
            status,
            {
                "initialized": True,
                "sealed": False,
                "standby": False,
                "performance_standby": False,
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled",
                "server_time_utc": int(self._now()),
                "version": VAULT_VERSION,
                "enterprise": self.namespaces_enabled,
                "cluster_name": self._cluster_name,
                "cluster_id": self._cluster_id,
                "echo_duration_ms": 0,
                "clock_skew_ms": 0,
            },
        )

    def _sys(self, req: _Request, sub: str) -> _Response:
        if sub == "mounts":
            if req.op != "read":
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            mounts: dict[str, Any] = {}
            for name, kv in req.ns.kv.items():
                mounts[name + "/"] = {
                    "accessor": kv.accessor,
                    "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
                    "description": "key/value secret storage",
                    "external_entropy_access": False,
                    "local": False,
                    "options": {"version": "2"},
                    "plugin_version": "",
                    "running_plugin_version": "v0.19.0+builtin",
                    "running_sha256": "",
                    "seal_wrap": False,
                    "type": "kv",
                    "uuid": kv.uuid,
                }
            mounts["sys/"] = {
                "accessor": "system_" + self._cluster_id[:8],
                "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
                "description": "system endpoints used for control, policy and debugging",
                "external_entropy_access": False,
                "local": False,
                "options": None,
                "plugin_version": "",
                "running_plugin_version": f"v{VAULT_VERSION}+builtin.vault",
                "running_sha256": "",
                "seal_wrap": True,
                "type": "system",
                "uuid": self._cluster_id,
            }
            # sys/mounts is served with Vault's "injector": data keys are repeated at the top level.
            body = self._envelope(mounts, mount_type="system")
            return _Response(200, {**mounts, **body})
        raise _VaultError(404, [UNSUPPORTED_PATH])

    # ------------------------------------------------------------------ token store

    def _token_store(self, req: _Request, sub: str) -> _Response:
        op = req.op
        if sub in ("create", "create-orphan"):
            if op not in ("update", "create"):
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            return self._token_create(req, orphan=sub == "create-orphan")
        if sub == "lookup-self":
            if op not in ("read", "update"):
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            assert req.token is not None and req.client_token is not None
            return self._ok(self._token_lookup_data(req.token, req.client_token), mount_type="token")
        if sub == "lookup":
            if op not in ("read", "update"):
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            token_id = str(req.data.get("token") or "") or req.client_token or ""
            entry = self._live_token(token_id)
            if entry is None:
                raise _VaultError(403, ["bad token"])
            return self._ok(self._token_lookup_data(entry, token_id), mount_type="token")
        if sub == "revoke":
            if op not in ("update", "create"):
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            token_id = str(req.data.get("token") or "")
            if not token_id:
                raise _VaultError(400, ["missing token ID"])
            entry = self._live_token(token_id)
            if entry is not None:
                self._revoke_tree(entry.accessor)
            return _Response(204)
        if sub == "revoke-self":
            if op not in ("update", "create"):
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            assert req.token is not None
            self._revoke_tree(req.token.accessor)
            return _Response(204)
        if sub in ("renew-self", "renew"):
            if op not in ("update", "create"):
                raise _VaultError(405, [UNSUPPORTED_OPERATION])
            if sub == "renew":
                token_id = str(req.data.get("token") or "")
                if not token_id:
                    raise _VaultError(400, ["missing token ID"])
                entry = self._live_token(token_id)
                if entry is None:
                    raise _VaultError(400, ["token not found"])
            else:
                assert req.token is not None and req.client_token is not None
                entry, token_id = req.token, req.client_token
            return self._token_renew(entry, token_id, _parse_duration(req.data.get("increment"), "increment"))
        raise _VaultError(404, [UNSUPPORTED_PATH])

    def _token_create(self, req: _Request, orphan: bool) -> _Response:
        parent = req.token
        assert parent is not None
        d = req.data
        if parent.limited_uses:
            raise _VaultError(400, ["restricted use token cannot generate child tokens"])
        is_sudo = self._is_sudo(req)
        token_type = str(d.get("type") or "")
        if token_type not in ("", "service"):
            if token_type == "batch":
                raise _VaultError(400, ["batch tokens are not implemented by the Vault double"])
            raise _VaultError(400, ["invalid 'token_type' value"])
        num_uses = _to_int(d.get("num_uses", 0), "num_uses")
        if num_uses < 0:
            raise _VaultError(400, ["number of uses cannot be negative"])
        renewable = _to_bool(d["renewable"]) if d.get("renewable") is not None else True
        display_name = self._token_display_name(str(d.get("display_name") or ""))
        token_id = str(d.get("id") or "") or None
        if token_id is not None:
            if not is_sudo:
                raise _VaultError(400, ["root or sudo privileges required to specify token id"])
            if req.ns.path:
                raise _VaultError(400, ["token IDs can only be manually specified in the root namespace"])
        no_default = _to_bool(d.get("no_default_policy", False))
        requested = _str_list(d.get("policies"))
        if req.ns.path != parent.namespace:
            if not is_sudo:
                raise _VaultError(
                    400, ["root or sudo privileges required to directly generate a token in a child namespace"]
                )
            if "root" in requested:
                raise _VaultError(400, ["root tokens may not be created from a parent namespace"])
            add_default = not no_default
        elif not requested:
            requested = _sanitize_policies(parent.policies, False)
            add_default = False
        elif not is_sudo:
            if not set(_sanitize_policies(requested, False)) <= set(_sanitize_policies(parent.policies, False)):
                raise _VaultError(400, ["child policies must be subset of parent"])
            add_default = not no_default and "default" in parent.policies
        else:
            add_default = not no_default
        policies = _sanitize_policies(requested, add_default)
        if no_default and "default" in policies:
            policies.remove("default")
        if "root" in policies and "root" not in parent.policies:
            raise _VaultError(400, ["root tokens may not be created without parent token being root"])

        if orphan:
            parent_accessor = None
        elif _to_bool(d.get("no_parent", False)):
            if not is_sudo:
                raise _VaultError(400, ["root or sudo privileges required to create orphan token"])
            parent_accessor = None
        else:
            parent_accessor = parent.accessor

        explicit_max = _parse_duration(d.get("explicit_max_ttl"), "explicit_max_ttl")
        if explicit_max < 0:
            raise _VaultError(400, ["explicit_max_ttl must be positive"])
        period = _parse_duration(d.get("period"), "period")
        if period < 0:
            raise _VaultError(400, ["period must be positive"])
        if period and not is_sudo:
            raise _VaultError(400, ["root or sudo privileges required to create periodic token"])
        ttl = _parse_duration(d.get("ttl") if d.get("ttl") not in (None, "") else d.get("lease"))
        if ttl < 0:
            raise _VaultError(400, ["ttl must be positive"])

        warnings: list[str] = []
        if period > 0 or ttl > 0 or "root" not in policies:
            # framework.CalculateTTL against the system max (768h).
            max_ttl = min(explicit_max, SYSTEM_MAX_TTL) if explicit_max else SYSTEM_MAX_TTL
            if period:
                ttl = min(period, max_ttl) if explicit_max else period
            else:
                wanted = ttl or SYSTEM_MAX_TTL
                if wanted > max_ttl:
                    if ttl:
                        warnings.append(
                            f'TTL of "{_go_duration(wanted)}" exceeded the effective max_ttl of '
                            f'"{_go_duration(max_ttl)}"; TTL value is capped accordingly'
                        )
                    wanted = max_ttl
                ttl = wanted
        if ttl == 0 and explicit_max > 0:
            ttl = explicit_max
        if ttl == 0:
            if parent.ttl != 0:
                raise _VaultError(400, ["expiring root tokens cannot create non-expiring root tokens"])
            renewable = False
        if token_id is not None and _digest(token_id) in self._tokens:
            raise _VaultError(400, ["cannot create a token with a duplicate ID"])

        meta_raw = d.get("meta")
        meta = {str(k): str(v) for k, v in meta_raw.items()} if isinstance(meta_raw, dict) and meta_raw else None
        new_id = self._new_token(
            namespace=req.ns.path,
            policies=policies,
            meta=meta,
            display_name=display_name,
            path="auth/token/" + ("create-orphan" if orphan else "create"),
            ttl=ttl,
            renewable=renewable,
            num_uses=num_uses,
            parent=parent_accessor,
            explicit_max_ttl=explicit_max,
            period=period,
            entity_id=parent.entity_id if parent_accessor else "",
            token_id=token_id,
        )
        if token_id is not None:
            warnings.append(
                "Supplying a custom ID for the token uses the weaker SHA1 hashing instead of the more secure "
                "SHA2-256 HMAC for token obfuscation. SHA1 hashed tokens on the wire leads to less secure lookups."
            )
        for p in policies:
            if p not in ("root", "default") and p not in req.ns.policies:
                warnings.append(f'Policy "{p}" does not exist')
        entry = self._tokens[_digest(new_id)]
        return self._ok(auth=self._auth_block(entry, new_id, ttl), warnings=warnings, mount_type="token")

    def _token_renew(self, entry: _Token, token_id: str, increment: int) -> _Response:
        if not entry.renewable or entry.expire_time is None:
            raise _VaultError(400, ["lease is not renewable"])
        now = self._now()
        ttl = entry.period or increment or entry.ttl
        max_life = min(entry.explicit_max_ttl, SYSTEM_MAX_TTL) if entry.explicit_max_ttl else SYSTEM_MAX_TTL
        expire = min(now + ttl, entry.issue_time + max_life) if not entry.period else now + ttl
        warnings = []
        if expire < now + ttl:
            warnings.append(
                f'TTL of "{_go_duration(ttl)}" exceeded the effective max_ttl of '
                f'"{_go_duration(int(expire - now))}"; TTL value is capped accordingly'
            )
        entry.expire_time = expire
        entry.last_renewal = now
        return self._ok(
            auth=self._auth_block(entry, token_id, int(expire - now)), warnings=warnings, mount_type="token"
        )

    # ------------------------------------------------------------------ logins

    def _login(self, req: _Request, kind: str, mount: str) -> _Response:
        if req.op not in ("update", "create"):
            raise _VaultError(405, [UNSUPPORTED_OPERATION])
        ns = req.ns
        # core.handleLoginRequest: the token's display name is the mount (slashes as dashes) + the method's name.
        source = mount.replace("/", "-") + "-"
        if kind == "approle":
            role_id = str(req.data.get("role_id") or "").strip()
            if not role_id:
                raise _VaultError(400, ["missing role_id"])
            secret_id = str(req.data.get("secret_id") or "")
            roles = ns.approle[mount].values()
            role = next((r for r in roles if hmac.compare_digest(r.role_id, role_id)), None)
            if role is None or not any(hmac.compare_digest(_digest(secret_id), s) for s in role.secret_ids):
                raise _VaultError(400, ["invalid role or secret ID"])
            ttl = min(role.token_ttl or SYSTEM_MAX_TTL, SYSTEM_MAX_TTL)
            token_id = self._new_token(
                namespace=ns.path,
                policies=_sanitize_policies(role.policies, True),
                meta={"role_name": role.name},
                display_name=source.rstrip("-"),
                path=f"auth/{mount}/login",
                ttl=ttl,
                renewable=True,
                num_uses=0,
                parent=None,
                entity_id=role.entity_id,
            )
            mount_type = "approle"
        else:
            role_name = str(req.data.get("role") or "")
            if not role_name:
                raise _VaultError(400, ["missing role"])
            jwt = str(req.data.get("jwt") or "")
            if not jwt:
                raise _VaultError(400, ["missing jwt"])
            krole = ns.kubernetes[mount].get(role_name)
            if krole is None:
                raise _VaultError(400, [f'invalid role name "{role_name}"'])
            if not hmac.compare_digest(_digest(jwt), krole.jwt_digest):
                raise _VaultError(403, [PERMISSION_DENIED])
            claims = _jwt_claims(jwt)
            k8s = _as_dict(claims.get("kubernetes.io"))
            sa = _as_dict(k8s.get("serviceaccount"))
            sa_name = str(
                sa.get("name") or claims.get("kubernetes.io/serviceaccount/service-account.name") or "default"
            )
            sa_ns = str(k8s.get("namespace") or claims.get("kubernetes.io/serviceaccount/namespace") or "default")
            sa_uid = str(sa.get("uid") or claims.get("kubernetes.io/serviceaccount/service-account.uid") or "")
            secret_name = str(claims.get("kubernetes.io/serviceaccount/secret.name") or "")
            ttl = min(krole.token_ttl or SYSTEM_MAX_TTL, SYSTEM_MAX_TTL)
            token_id = self._new_token(
                namespace=ns.path,
                policies=_sanitize_policies(krole.policies, True),
                meta={
                    "role": role_name,
                    "service_account_name": sa_name,
                    "service_account_namespace": sa_ns,
                    "service_account_secret_name": secret_name,
                    "service_account_uid": sa_uid,
                },
                display_name=f"{source}{sa_ns}-{sa_name}",
                path=f"auth/{mount}/login",
                ttl=ttl,
                renewable=True,
                num_uses=0,
                parent=None,
                entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"k8s:{ns.path}:{sa_uid or sa_ns + '/' + sa_name}")),
            )
            mount_type = "kubernetes"
        entry = self._tokens[_digest(token_id)]
        return self._ok(auth=self._auth_block(entry, token_id, ttl), mount_type=mount_type)

    # ------------------------------------------------------------------ KV v2

    def _kv_effective_max(self, kv: _KVMount, meta: _KeyMeta) -> int:
        m = max(meta.max_versions, kv.max_versions)
        return m if m > 0 else KV_DEFAULT_MAX_VERSIONS

    def _kv_deletion_time(self, kv: _KVMount, meta: _KeyMeta, start: float) -> float | None:
        values = [v for v in (kv.delete_version_after, meta.delete_version_after) if v > 0]
        return start + min(values) if values else None

    def _kv_add_version(self, kv: _KVMount, meta: _KeyMeta, data: dict[str, Any]) -> int:
        """KeyMetadata.AddVersion, including the max_versions sliding window."""
        now = self._now()
        meta.current_version += 1
        meta.versions[meta.current_version] = _Version(
            created=now, data=data, deletion_time=self._kv_deletion_time(kv, meta, now)
        )
        meta.updated = now
        max_versions = self._kv_effective_max(kv, meta)
        if meta.current_version - meta.oldest_version >= max_versions:
            to_delete = meta.current_version - max_versions
            for i in range(meta.oldest_version, to_delete + 1):
                meta.versions.pop(i, None)
            meta.oldest_version = to_delete + 1
        return meta.current_version

    def _kv_version_md(self, meta: _KeyMeta, number: int, vm: _Version) -> dict[str, Any]:
        return {
            "created_time": _rfc3339(vm.created),
            "custom_metadata": meta.custom_metadata,
            "deletion_time": _rfc3339(vm.deletion_time),
            "destroyed": vm.destroyed,
            "version": number,
        }

    def _kv_gone(self, vm: _Version) -> bool:
        return vm.destroyed or (vm.deletion_time is not None and vm.deletion_time <= self._now())

    def _kv(self, req: _Request, kv: _KVMount, sub: str) -> _Response:
        op = req.op
        if sub == "config":
            return self._kv_config(req, kv)
        if sub.startswith("data/") and len(sub) > len("data/") and not sub.endswith("/"):
            key = sub[len("data/") :]
            if op == "read":
                return self._kv_read(req, kv, key)
            if op in ("create", "update"):
                return self._kv_write(req, kv, key)
            if op == "patch":
                return self._kv_patch(req, kv, key)
            if op == "delete":
                meta = kv.keys.get(key)
                vm = meta.versions.get(meta.current_version) if meta else None
                if vm is not None and not self._kv_gone(vm):
                    vm.deletion_time = self._now()
                return _Response(204)
            raise _VaultError(405, [UNSUPPORTED_OPERATION])
        if sub.startswith("metadata/"):
            return self._kv_metadata(req, kv, sub[len("metadata/") :])
        for action in ("delete", "undelete", "destroy"):
            if sub.startswith(action + "/"):
                if op not in ("update", "create"):
                    raise _VaultError(405, [UNSUPPORTED_OPERATION])
                return self._kv_versions_action(req, kv, action, sub[len(action) + 1 :])
        verb = {"read": "get", "list": "list", "delete": "delete", "patch": "patch"}.get(op, "put")
        raise _VaultError(404, body=self._envelope(warnings=[KV_INVALID_PATH.format(verb=verb)]), raw=True)

    def _kv_config(self, req: _Request, kv: _KVMount) -> _Response:
        if req.op == "read":
            return self._ok(
                {
                    "cas_required": kv.cas_required,
                    "delete_version_after": _go_duration(kv.delete_version_after),
                    "max_versions": kv.max_versions,
                },
                mount_type="kv",
            )
        if req.op in ("update", "create"):
            d = req.data
            if d.get("max_versions") is not None:
                kv.max_versions = _to_int(d["max_versions"], "max_versions")
            if d.get("cas_required") is not None:
                kv.cas_required = _to_bool(d["cas_required"])
            if d.get("delete_version_after") is not None:
                dva = _parse_duration(d["delete_version_after"], "delete_version_after")
                if dva < 0:
                    raise _VaultError(400, ["delete_version_after cannot be negative"])
                kv.delete_version_after = dva
            return _Response(204)
        raise _VaultError(405, [UNSUPPORTED_OPERATION])

    def _kv_read(self, req: _Request, kv: _KVMount, key: str) -> _Response:
        meta = kv.keys.get(key)
        if meta is None:
            raise _VaultError(404)
        version = _to_int(req.data.get("version", 0), "version")
        number = version if version > 0 else meta.current_version
        vm = meta.versions.get(number)
        if vm is None:
            raise _VaultError(404)
        md = self._kv_version_md(meta, number, vm)
        if self._kv_gone(vm):
            # logical.RespondWithStatusCode(resp, req, 404): the whole envelope, data.data null.
            raise _VaultError(404, body=self._envelope({"data": None, "metadata": md}), raw=True)
        return self._ok({"data": copy.deepcopy(vm.data), "metadata": md}, mount_type="kv")

    def _kv_check_cas(self, kv: _KVMount, meta: _KeyMeta | None, options: Any) -> None:
        cas_set = isinstance(options, dict) and "cas" in options
        if cas_set:
            try:
                cas = _to_int(options["cas"], "cas")
            except _VaultError:
                raise _VaultError(400, ["error parsing check-and-set parameter"]) from None
            if cas != (meta.current_version if meta else 0):
                raise _VaultError(400, ["check-and-set parameter did not match the current version"])
        elif kv.cas_required or (meta is not None and meta.cas_required):
            raise _VaultError(400, ["check-and-set parameter required for this call"])

    def _kv_write(self, req: _Request, kv: _KVMount, key: str) -> _Response:
        if "data" not in req.data or req.data["data"] is None:
            raise _VaultError(400, ["no data provided"])
        payload = req.data["data"]
        if not isinstance(payload, dict):
            raise _VaultError(400, [f'error converting input for field "data": {type(payload).__name__} is not a map'])
        meta = kv.keys.get(key)
        self._kv_check_cas(kv, meta, req.data.get("options"))
        if meta is None:
            now = self._now()
            meta = kv.keys[key] = _KeyMeta(created=now, updated=now)
        number = self._kv_add_version(kv, meta, copy.deepcopy(payload))
        vm = meta.versions[number]
        md = self._kv_version_md(meta, number, vm)
        md.pop("version")
        return self._ok({**md, "version": number}, mount_type="kv")

    def _kv_patch(self, req: _Request, kv: _KVMount, key: str) -> _Response:
        if "data" not in req.data:
            raise _VaultError(400, ["no data provided"])
        meta = kv.keys.get(key)
        if meta is None:
            raise _VaultError(404, body=None, raw=True)
        self._kv_check_cas(kv, meta, req.data.get("options"))
        vm = meta.versions.get(meta.current_version)
        if vm is None:
            raise _VaultError(404, body=None, raw=True)
        if self._kv_gone(vm):
            md = self._kv_version_md(meta, meta.current_version, vm)
            raise _VaultError(404, body=self._envelope(md), raw=True)
        patched = _merge_patch(vm.data or {}, req.data["data"])
        number = self._kv_add_version(kv, meta, patched)
        md = self._kv_version_md(meta, number, meta.versions[number])
        return self._ok(md, mount_type="kv")

    def _kv_metadata(self, req: _Request, kv: _KVMount, key: str) -> _Response:
        op = req.op
        if op == "list":
            prefix = key
            names: set[str] = set()
            for k in kv.keys:
                if k.startswith(prefix) and k != prefix:
                    rest = k[len(prefix) :]
                    names.add(rest.split("/", 1)[0] + "/" if "/" in rest else rest)
            if not names:
                raise _VaultError(404)
            return self._ok({"keys": sorted(names)}, mount_type="kv")
        meta = kv.keys.get(key)
        if op == "read":
            if meta is None:
                raise _VaultError(404)
            versions = {
                str(n): {
                    "created_time": _rfc3339(v.created),
                    "deletion_time": _rfc3339(v.deletion_time),
                    "destroyed": v.destroyed,
                }
                for n, v in sorted(meta.versions.items())
            }
            return self._ok(
                {
                    "cas_required": meta.cas_required,
                    "created_time": _rfc3339(meta.created),
                    "current_version": meta.current_version,
                    "custom_metadata": meta.custom_metadata,
                    "delete_version_after": _go_duration(meta.delete_version_after),
                    "max_versions": meta.max_versions,
                    "oldest_version": meta.oldest_version,
                    "updated_time": _rfc3339(meta.updated),
                    "versions": versions,
                },
                mount_type="kv",
            )
        if op == "delete":
            kv.keys.pop(key, None)
            return _Response(204)
        if op in ("create", "update", "patch"):
            if not key:
                raise _VaultError(400, ["missing path"])
            d = req.data
            fields = {
                f: d[f] for f in ("max_versions", "cas_required", "delete_version_after", "custom_metadata") if f in d
            }
            custom = fields.get("custom_metadata")
            if custom is not None and not isinstance(custom, dict):
                raise _VaultError(400, ["custom_metadata validation failed: expected a map"])
            if op == "patch" and meta is None:
                raise _VaultError(404, body=None, raw=True)
            if not fields:
                return _Response(204)
            warnings = []
            if fields.get("cas_required") is not None and kv.cas_required and not _to_bool(fields["cas_required"]):
                warnings.append(
                    '"cas_required" set to false, but is mandated by backend config. This value will be ignored.'
                )
            if meta is None:
                now = self._now()
                meta = kv.keys[key] = _KeyMeta(created=now, updated=now)
            if fields.get("max_versions") is not None:
                meta.max_versions = _to_int(fields["max_versions"], "max_versions")
            if fields.get("cas_required") is not None:
                meta.cas_required = _to_bool(fields["cas_required"])
            if fields.get("delete_version_after") is not None:
                dva = _parse_duration(fields["delete_version_after"], "delete_version_after")
                if dva < 0:
                    raise _VaultError(400, ["delete_version_after cannot be negative"])
                meta.delete_version_after = dva
            if "custom_metadata" in fields:
                if op == "patch":
                    merged = _merge_patch(meta.custom_metadata or {}, custom or {})
                    meta.custom_metadata = {str(k): str(v) for k, v in merged.items()} or None
                else:
                    meta.custom_metadata = {str(k): str(v) for k, v in (custom or {}).items()}
            if warnings:
                return self._ok(None, warnings=warnings, mount_type="kv")
            return _Response(204)
        raise _VaultError(405, [UNSUPPORTED_OPERATION])

    def _kv_versions_action(self, req: _Request, kv: _KVMount, action: str, key: str) -> _Response:
        versions = _int_list(req.data.get("versions"), "versions")
        if not versions:
            message = "no version number provided" if action == "destroy" else "No version number provided"
            raise _VaultError(400, [message])
        meta = kv.keys.get(key)
        if meta is None:
            return _Response(204)
        now = self._now()
        for number in versions:
            vm = meta.versions.get(number)
            if vm is None or vm.destroyed:
                continue
            if action == "delete":
                if vm.deletion_time is not None and vm.deletion_time <= now:
                    continue
                vm.deletion_time = now
            elif action == "undelete":
                vm.deletion_time = self._kv_deletion_time(kv, meta, now)
            else:
                vm.destroyed, vm.data = True, None
        return _Response(204)


# --------------------------------------------------------------------------- HTTP plumbing


class _Handler(http.server.BaseHTTPRequestHandler):
    double: VaultDouble  # set on the per-instance subclass
    protocol_version = "HTTP/1.1"
    server_version = "VaultDouble"
    sys_version = ""
    timeout = 5  # idle keep-alive connections end instead of pinning a thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence: nothing is ever logged
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.double.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method reaches the double too, which answers 405 like Vault (not http.server's 501).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)
