"""Structured parsers for well-known credential files found inside image layers.

A regex over raw bytes cannot tell ``password=${DB_PASS}`` from a real value, cannot decode a docker
``auth`` blob and cannot say which registry, profile or server a secret belongs to. So each of these
files is parsed in its own format. Every parser is total and bounded: hostile content gives fewer
matches, never an exception, and the work stays linear in the input (plus at most ``MAX_MATCHES``
bounded look-ups).

Offsets are always byte offsets into the scanned ``data``. Line-oriented formats are read as bytes for
that reason; only keys and values are decoded (UTF-8, ``errors="replace"``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from html import escape as html_escape  # quote=False: XML text escapes; xml.sax.saxutils loads http.client, ssl
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import unquote

import yaml

from secretscan.detect.filters import is_placeholder
from secretscan.detect.match import Match

Parser = Callable[[bytes], list[Match]]
Span = tuple[int, int] | None

MAX_MATCHES = 1000
"""Per file. Bounds the cost of value look-ups that fall back to searching the whole file."""
MAX_YAML_BYTES = 5 * 1024 * 1024
"""PyYAML builds the whole document in memory; bigger "kubeconfigs" are not worth that."""
_CONTEXT_PART_MAX = 80

SECRET_NAME_RE = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|auth)"
)
# Secret-looking names that point *at* a secret or describe it (DB_PASSWORD_FILE, token-uri, AUTH_TYPE).
_NOT_SECRET_KEY_RE = re.compile(
    r"(?i)[._-](url|uri|host|port|path|file|dir|endpoint|enabled|type|name|user(name)?|id|ttl|timeout|expiry)$"
)
_HTPASSWD_HASH_RE = re.compile(r"\$[0-9a-z]{1,6}\$\S{8,}|\{S?SHA\}\S{20,}|[./0-9A-Za-z]{13}")
_USERINFO_RE = re.compile(rb"([^:@/\s]*):([^@/\s]*)@([^/\s?#@]*)")
_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)
_DOTENV_RE = re.compile(rb"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=")
_KUBECONFIG_USERS_RE = re.compile(rb'(?m)^(?:users[ \t]*:|[ \t]*"users"[ \t]*:)')
"""A kubeconfig's top-level ``users:`` (YAML, at the start of a line) or ``"users":`` (JSON)."""
_CRYPT_HASH_RE = re.compile(r"\$[0-9a-z]{1,6}\$[^\s:]{8,}|[./0-9A-Za-z]{13}|_[./0-9A-Za-z]{19}")
"""crypt(5) hashes: ``$id$[params$]salt$hash`` (MD5, bcrypt, SHA-256/512, yescrypt, scrypt, ...),
traditional DES (13 characters) and BSDi extended DES (``_`` + 19)."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _q(s: str) -> str:
    """Quote an attacker-controlled name for a context string, bounded in length."""
    s = s if len(s) <= _CONTEXT_PART_MAX else s[:_CONTEXT_PART_MAX] + "…"
    return json.dumps(s, ensure_ascii=False)


def _b64_text(value: str) -> str | None:
    """Decode standard or URL-safe base64 (padding optional) to text; None if it is not base64."""
    v = "".join(value.split())
    v += "=" * (-len(v) % 4)
    for alt in (None, b"-_"):
        with contextlib.suppress(binascii.Error, ValueError):
            return _text(base64.b64decode(v, altchars=alt, validate=True))
    return None


def _match(rule: str, secret: str, span: Span, line: int | None, context: str, conf: str = "high") -> Match:
    """Build a Match; an unlocatable value keeps offset 0 and no line rather than being dropped."""
    # Lone surrogates (JSON "\udXXX" escapes) would make every downstream encoder choke.
    secret, context = (s.encode("utf-8", "replace").decode("utf-8") for s in (secret, context))
    if secret in context:
        context = context.replace(secret, "<redacted>")
    start, end = span if span else (0, 0)
    return Match(rule, secret, start, end, line if span else None, context, conf)


def _lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield (1-based line, byte offset, content without EOL), using find() so it stays linear."""
    pos, lineno = 0, 1
    while True:
        nl = data.find(b"\n", pos)
        line = data[pos : len(data) if nl < 0 else nl]
        yield lineno, pos, line[:-1] if line.endswith(b"\r") else line
        if nl < 0:
            return
        pos, lineno = nl + 1, lineno + 1


def _strip_span(raw: bytes, lo: int, hi: int, unquote_: bool = True) -> tuple[int, int]:
    """Narrow raw[lo:hi] past surrounding whitespace and one pair of matching quotes."""
    seg = raw[lo:hi]
    if not seg.strip():
        return lo, lo
    lo, hi = lo + len(seg) - len(seg.lstrip()), hi - len(seg) + len(seg.rstrip())
    quote = raw[lo : lo + 1]
    if unquote_ and hi - lo >= 2 and quote in (b'"', b"'") and raw[hi - 1 : hi] == quote:
        lo, hi = lo + 1, hi - 1
    return lo, hi


def _kv(raw: bytes, seps: bytes) -> tuple[str, int, int] | None:
    """Split ``key<sep>value`` at the first separator: (key, value start, value end) within the line."""
    cuts = [i for i in (raw.find(bytes([s])) for s in seps) if i > 0]
    if not cuts:
        return None
    i = min(cuts)
    lo, hi = _strip_span(raw, i + 1, len(raw))
    return _text(raw[:i]).strip(), lo, hi


class _LineCounter:
    """Byte offset -> 1-based line, amortised linear when asked in increasing order."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos, self._line = data, 0, 1

    def line_of(self, offset: int) -> int:
        if offset < self._pos:
            self._pos, self._line = 0, 1
        self._line += self._data.count(b"\n", self._pos, offset)
        self._pos = offset
        return self._line


class _Locator:
    """Find a parsed (JSON/YAML/XML) value's bytes in the raw file.

    Values mostly come out in file order, so search from a moving cursor and fall back to the
    whole file; ``MAX_MATCHES`` bounds how often the fallback can run.
    """

    def __init__(self, data: bytes) -> None:
        self._data, self._cursor, self._lines = data, 0, _LineCounter(data)

    def find(self, needles: Iterable[bytes], prefix: bytes = b"", suffix: bytes = b"") -> Span:
        for needle in needles:
            if not needle:
                continue
            for frm in (self._cursor, 0):
                i = self._data.find(prefix + needle + suffix, frm)
                if i >= 0:
                    self._cursor = i + len(prefix) + len(needle)
                    return i + len(prefix), self._cursor
        return None

    def line(self, span: Span) -> int | None:
        return self._lines.line_of(span[0]) if span else None


def _json_needles(value: str) -> list[bytes]:
    """The ways a JSON encoder may have written ``value`` (without the quotes)."""
    return [json.dumps(value, ensure_ascii=a)[1:-1].encode("utf-8", "replace") for a in (False, True)]


def _url_creds(buf: bytes) -> Iterator[tuple[str, str, int, int, str]]:
    """(user, password, pw start, pw end, host) for each ``scheme://user:password@host`` in ``buf``.

    Anchored on ``://`` instead of a scheme regex: a search for ``[a-z]+://`` is quadratic on long
    runs of letters, while every user/password scan here stops at the next ``/``.
    """
    pos = buf.find(b"://")
    while pos >= 0:
        m = _USERINFO_RE.match(buf, pos + 3)
        if m and m[2]:
            yield unquote(_text(m[1])), unquote(_text(m[2])), m.start(2), m.end(2), _text(m[3])
        pos = buf.find(b"://", pos + 3)


class _Entry(NamedTuple):
    section: str
    key: str
    value: str
    start: int
    end: int
    line: int
    continued: bool


def _ini(data: bytes) -> Iterator[_Entry]:
    """Minimal INI reader with byte offsets (configparser has none); indented lines continue a key."""
    section, key = "", ""
    for lineno, off, raw in _lines(data):
        s = raw.strip()
        if not s or s[:1] in (b"#", b";"):
            continue
        if raw[:1] in (b" ", b"\t") and key:
            lo, hi = _strip_span(raw, 0, len(raw), unquote_=False)
            yield _Entry(section, key, _text(raw[lo:hi]), off + lo, off + hi, lineno, True)
        elif s.startswith(b"[") and b"]" in s:
            section, key = _text(s[1 : s.index(b"]")]).strip(), ""
        elif kv := _kv(raw, b"=:"):
            key, lo, hi = kv[0].lower(), kv[1], kv[2]
            yield _Entry(section, key, _text(raw[lo:hi]), off + lo, off + hi, lineno, False)
        else:
            key = ""


def _secret_name(key: str) -> bool:
    return bool(SECRET_NAME_RE.search(key)) and not _NOT_SECRET_KEY_RE.search(key)


def _total(gen: Callable[[bytes], Iterable[Match]]) -> Parser:
    """Make a parser total and bounded: keep what was found before any error, stop at MAX_MATCHES."""

    @functools.wraps(gen)
    def run(data: bytes) -> list[Match]:
        out: list[Match] = []
        with contextlib.suppress(Exception):  # hostile content must never abort a layer scan
            for m in gen(data):
                out.append(m)
                if len(out) >= MAX_MATCHES:
                    break
        return out

    return run


@_total
def _docker_config(data: bytes) -> Iterator[Match]:
    """``auths.<registry>`` (config.json) or top-level registries (legacy .dockercfg)."""
    rule, doc = "file.docker-config.auth", json.loads(_text(data).lstrip("\ufeff"))
    if not isinstance(doc, dict):
        return
    auths, prefix = (doc["auths"], "auths.") if isinstance(doc.get("auths"), dict) else (doc, "")
    loc = _Locator(data)
    for reg, entry in auths.items():
        if not isinstance(entry, dict):
            continue
        where = f"{prefix}{_q(reg)}"
        user = entry.get("username")
        user = user if isinstance(user, str) else ""
        for field, value in entry.items():
            if not isinstance(value, str):
                continue
            secret, ctx = value, f"{where}.{field}"
            if field == "auth":
                decoded = _b64_text(value)
                if decoded is None or ":" not in decoded:
                    continue
                dec_user, _, secret = decoded.partition(":")
                ctx += f" (user {_q(dec_user)})"
            elif field == "password":
                ctx += f" (user {_q(user)})"
            elif field.lower() not in ("identitytoken", "registrytoken"):
                continue
            if not is_placeholder(secret):
                span = loc.find(_json_needles(value), b'"', b'"')
                yield _match(rule, secret, span, loc.line(span), ctx)


@_total
def _npmrc(data: bytes) -> Iterator[Match]:
    """``[//registry/:]_authToken``, ``_auth`` (base64 user:pass) and ``_password`` (base64)."""
    for lineno, off, raw in _lines(data):
        kv = None if raw.lstrip()[:1] in (b"#", b";") else _kv(raw, b"=")
        if not kv:
            continue
        key, lo, hi = kv
        name = key.rsplit(":", 1)[-1] if key.startswith("//") else key
        value, span, confidence = _text(raw[lo:hi]), (off + lo, off + hi), "high"
        if name == "_authToken":
            rule, secret, ctx = "file.npmrc.auth-token", value, key
        elif name == "_auth":
            decoded = _b64_text(value)
            if decoded is None or ":" not in decoded:
                continue
            user, _, secret = decoded.partition(":")
            rule, ctx = "file.npmrc.auth", f"{key} (user {_q(user)})"
        elif name == "_password":
            decoded = _b64_text(value)
            secret, confidence = (decoded, "high") if decoded is not None else (value, "medium")
            rule, ctx = "file.npmrc.auth", key
        else:
            continue
        if not is_placeholder(value) and not is_placeholder(secret):
            yield _match(rule, secret, span, lineno, ctx, confidence)


def _ini_secrets(data: bytes, rules: Mapping[str, str], pair_key: str, owner_fmt: str) -> Iterator[Match]:
    """Secrets by key in any INI section; the section's ``pair_key`` value (not secret) names the owner.

    ``owner_fmt`` gets ``q`` (quoted) and ``v`` (bare, truncated) forms of that value.
    """
    entries = [e for e in _ini(data) if not e.continued]
    owners = {e.section: e.value for e in entries if e.key == pair_key}
    for e in entries:
        if e.key in rules and not is_placeholder(e.value):
            v = owners.get(e.section)
            owner = owner_fmt.format(q=_q(v), v=v[:_CONTEXT_PART_MAX]) if v is not None else ""
            yield _match(rules[e.key], e.value, (e.start, e.end), e.line, f"[{e.section}] {e.key}{owner}")


@_total
def _pypirc(data: bytes) -> Iterator[Match]:
    """``password`` in any section, with the section's ``username``."""
    return _ini_secrets(data, {"password": "file.pypirc.password"}, "username", " (user {q})")


@_total
def _pip_conf(data: bytes) -> Iterator[Match]:
    """Credentials embedded in ``index-url`` / ``extra-index-url`` (possibly multi-line)."""
    for e in _ini(data):
        if e.key.replace("_", "-") not in ("index-url", "extra-index-url"):
            continue
        for user, pw, lo, hi, host in _url_creds(data[e.start : e.end]):
            if not is_placeholder(pw):
                ctx = f"[{e.section}] {e.key} (user {_q(user)}, host {_q(host)})"
                yield _match("file.pip-conf.url-password", pw, (e.start + lo, e.start + hi), e.line, ctx)


@_total
def _netrc(data: bytes) -> Iterator[Match]:
    """``machine/default``, ``login``, ``password`` tokens in any layout; ``macdef`` bodies skipped."""
    lines, machine, login = _LineCounter(data), "default", ""
    pending: list[tuple[str, tuple[int, int]]] = []
    expect, skip_until = b"", 0

    def flush() -> Iterator[Match]:
        for pw, span in pending:
            ctx = f"machine {_q(machine)} (login {_q(login)})"
            yield _match("file.netrc.password", pw, span, lines.line_of(span[0]), ctx)
        pending.clear()

    for tok in re.finditer(rb"\S+", data):
        word = tok.group()
        if tok.start() < skip_until:
            continue
        if expect == b"machine":
            machine = _text(word)
        elif expect == b"login":
            login = _text(word)
        elif expect == b"password" and not is_placeholder(_text(word)):
            pending.append((_text(word), tok.span()))
        elif not expect and word.startswith(b"#"):
            nl = data.find(b"\n", tok.end())
            skip_until = len(data) if nl < 0 else nl
        elif not expect and word == b"macdef":
            ends = [i for i in (data.find(b"\n\n", tok.end()), data.find(b"\n\r\n", tok.end())) if i >= 0]
            skip_until = min(ends) if ends else len(data)
        elif not expect and word in (b"machine", b"default"):
            yield from flush()
            machine, login = "default", ""
        expect = word if not expect and word in (b"machine", b"login", b"password", b"account") else b""
    yield from flush()


@_total
def _git_credentials(data: bytes) -> Iterator[Match]:
    """One ``scheme://user:token@host`` URL per line, as written by git's store helper."""
    for lineno, off, raw in _lines(data):
        for user, pw, lo, hi, host in _url_creds(raw):
            if not is_placeholder(pw):
                ctx = f"{_q(host)} (user {_q(user)})"
                yield _match("file.git-credentials.password", pw, (off + lo, off + hi), lineno, ctx)


@_total
def _aws(data: bytes) -> Iterator[Match]:
    """Secret keys and session tokens per profile, with the profile's (non-secret) access key id."""
    rules = {"aws_secret_access_key": "file.aws.secret-access-key", "aws_session_token": "file.aws.session-token"}
    return _ini_secrets(data, rules, "aws_access_key_id", " (key id {v})")


@_total
def _kubeconfig(data: bytes) -> Iterator[Match]:
    """Tokens, passwords, client keys and auth-provider secrets under ``users[].user``.

    Also chosen for YAML files of any name (a kubeconfig copied to ``deploy/prod.yaml``): only a
    document with a top-level ``users`` key is parsed, so the YAML parser runs on kubeconfigs, not
    on every chart and compose file."""
    if len(data) > MAX_YAML_BYTES or not _KUBECONFIG_USERS_RE.search(data):
        return
    # Pure-Python safe_load on purpose: libyaml's composer recurses in C and segfaults on deep nesting.
    doc = yaml.safe_load(_text(data))
    users = doc.get("users") if isinstance(doc, dict) else None
    loc = _Locator(data)
    for item in users if isinstance(users, list) else ():
        user = item.get("user") if isinstance(item, dict) else None
        if not isinstance(user, dict):
            continue
        name = item.get("name")
        where = f"users.{_q(name if isinstance(name, str) else '')}.user"
        fields: list[tuple[str, object]] = list(user.items())
        provider = user.get("auth-provider")
        config = provider.get("config") if isinstance(provider, dict) else None
        if isinstance(config, dict):
            names = ("id-token", "refresh-token", "client-secret")
            fields += [(f"auth-provider.config.{k}", config.get(k)) for k in names]
        for field, value in fields:
            if not isinstance(field, str) or not isinstance(value, str):
                continue
            secret: str | None = value
            if field == "client-key-data":
                rule, secret = "file.kubeconfig.client-key", _b64_text(value)
            elif field == "password":
                rule = "file.kubeconfig.password"
            elif field == "token" or field.startswith("auth-provider."):
                rule = "file.kubeconfig.token"
            else:
                continue
            if secret is not None and not is_placeholder(secret):
                span = loc.find([value.encode("utf-8", "replace"), *_json_needles(value)])
                yield _match(rule, secret, span, loc.line(span), f"{where}.{field}")


@_total
def _dotenv(data: bytes) -> Iterator[Match]:
    """Values of secret-looking variables (optionally quoted); a name heuristic, so medium confidence."""
    for lineno, off, raw in _lines(data):
        m = _DOTENV_RE.match(raw)
        if not m or not _secret_name(_text(m[1])):
            continue
        lo, hi = _strip_span(raw, m.end(), len(raw), unquote_=False)
        quote = raw[lo : lo + 1]
        if quote in (b'"', b"'"):
            close = raw.find(quote, lo + 1)
            while quote == b'"' and close > 0 and raw[close - 1 : close] == b"\\":
                close = raw.find(quote, close + 1)
            lo, hi = lo + 1, (close if close > 0 else hi)
        elif (hash_at := raw.find(b" #", lo, hi)) >= 0:
            lo, hi = _strip_span(raw, lo, hash_at, unquote_=False)
        if not is_placeholder(value := _text(raw[lo:hi])):
            yield _match("file.dotenv.secret", value, (off + lo, off + hi), lineno, _text(m[1]), "medium")


@_total
def _htpasswd(data: bytes) -> Iterator[Match]:
    """``user:hash`` lines; offline-crackable, so the hash itself is the finding."""
    for lineno, off, raw in _lines(data):
        user, sep, _ = raw.partition(b":")
        if not sep or raw.lstrip()[:1] == b"#":
            continue
        lo, hi = _strip_span(raw, len(user) + 1, len(raw), unquote_=False)
        value = _text(raw[lo:hi])
        if _HTPASSWD_HASH_RE.fullmatch(value) and not is_placeholder(value):
            ctx = f"user {_q(_text(user).strip())}"
            yield _match("file.htpasswd.hash", value, (off + lo, off + hi), lineno, ctx)


def _logical_lines(data: bytes) -> Iterator[tuple[int, int, bytes, list[tuple[int, bytes]]]]:
    """Java properties logical lines: (line, offset, first physical line, continuation lines)."""
    cont: list[tuple[int, bytes]] | None = None
    first: tuple[int, int, bytes] = (0, 0, b"")
    for lineno, off, raw in _lines(data):
        if cont is not None:
            cont.append((off, raw))
        else:
            first, cont = (lineno, off, raw), []
        comment = not cont and raw.lstrip()[:1] in (b"#", b"!")  # comments never continue
        if comment or (len(raw) - len(raw.rstrip(b"\\"))) % 2 == 0:  # odd count of trailing \ continues
            yield *first, cont
            cont = None
    if cont is not None:
        yield *first, cont


@_total
def _properties(data: bytes) -> Iterator[Match]:
    """``key=value`` / ``key: value`` with secret-looking keys; continuations joined simply."""
    for lineno, off, raw, cont in _logical_lines(data):
        if raw.lstrip()[:1] in (b"#", b"!") or not (kv := _kv(raw, b"=:")):
            continue
        key, lo, hi = kv
        parts, start, end = [raw[lo:hi]], off + lo, off + hi
        for c_off, c_raw in cont:
            c_lo, c_hi = _strip_span(c_raw, 0, len(c_raw), unquote_=False)
            parts.append(c_raw[c_lo:c_hi])
            end = c_off + c_hi
        value = "".join(_text(p[:-1] if i < len(parts) - 1 else p) for i, p in enumerate(parts))
        if _secret_property(key, value) and not is_placeholder(value):
            yield _match("file.properties.secret", value, (start, end), lineno, key, "medium")


_GENERIC_LAST_PART = frozenset({"key", "value", "b64", "base64"})
_SETTING_WORDS_RE = re.compile(r"[A-Za-z]{1,19}(?:[-, ]{1,2}[A-Za-z]{1,19}){0,4}")


def _secret_property(key: str, value: str) -> bool:
    """Property keys are namespaces (``jdk.http.auth.tunneling.disabledSchemes``): the last part
    says what the value is (``datasource.password``; ``secret.key`` when the last part is generic).
    JDK and framework settings under credential-sounding names take words (``Basic``,
    ``always-impersonate``, ``NTLM,Negotiate``), which a credential is not."""
    parts = key.rsplit(".", 2)
    name = ".".join(parts[-2:]) if parts[-1].lower() in _GENERIC_LAST_PART else parts[-1]
    return _secret_name(name) and not (len(value) < 40 and _SETTING_WORDS_RE.fullmatch(value))


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


@_total
def _maven_settings(data: bytes) -> Iterator[Match]:
    """``<server>``/``<proxy>`` passwords and passphrases, and the settings-security master password.

    Any DTD is refused outright: settings files never need one, and it is how entity bombs get in.
    """
    if _DTD_RE.search(data):
        return
    root, loc = ET.fromstring(_text(data)), _Locator(data)
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "master" and _local(root.tag) == "settingsSecurity":
            fields, where = [el], "settingsSecurity"
        elif tag in ("server", "proxy"):
            ident = next((c.text or "" for c in el if _local(c.tag) == "id"), "")
            fields = [c for c in el if _local(c.tag) in ("password", "passphrase")]
            where = f"{tag}s.{tag}[id={_q(ident.strip())}]"
        else:
            continue
        for f in fields:
            value = (f.text or "").strip()
            if not is_placeholder(value):
                span = loc.find([html_escape(value, quote=False).encode(), value.encode("utf-8", "replace")])
                ctx = f"{where}.{_local(f.tag)}"
                yield _match("file.maven-settings.password", value, span, loc.line(span), ctx)


def _pgpass_fields(raw: bytes) -> tuple[list[str], int] | None:
    """The first four ``:``-separated fields of a .pgpass line (``\\`` escapes ``:`` and ``\\``), and
    where the password field starts; None for a line with fewer than four separators."""
    fields: list[str] = []
    current = bytearray()
    i, n = 0, len(raw)
    while i < n and len(fields) < 4:
        c = raw[i]
        if c == 0x5C and i + 1 < n:  # backslash: the next byte is literal
            current.append(raw[i + 1])
            i += 2
            continue
        if c == 0x3A:  # ':'
            fields.append(_text(bytes(current)))
            current.clear()
        else:
            current.append(c)
        i += 1
    return (fields, i) if len(fields) == 4 else None


def _pgpass_unescape(raw: bytes) -> str:
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 1 < len(raw):
            i += 1
        out.append(raw[i])
        i += 1
    return _text(bytes(out))


@_total
def _pgpass(data: bytes) -> Iterator[Match]:
    """``hostname:port:database:username:password`` lines (libpq's password file); the password is
    the rest of the line after the fourth unescaped ``:``."""
    for lineno, off, raw in _lines(data):
        if not raw.strip() or raw.lstrip()[:1] == b"#" or not (parsed := _pgpass_fields(raw)):
            continue
        (host, port, db, user), at = parsed
        lo, hi = _strip_span(raw, at, len(raw), unquote_=False)
        secret = _pgpass_unescape(raw[lo:hi])
        if not is_placeholder(secret):
            ctx = f"host {_q(host)} port {_q(port)} database {_q(db)} (user {_q(user)})"
            yield _match("file.pgpass.password", secret, (off + lo, off + hi), lineno, ctx)


_LOCKED = (b"!", b"*")


@_total
def _shadow(data: bytes) -> Iterator[Match]:
    """``name:hash:...`` entries of /etc/shadow (and gshadow, and their backups) whose hash can be
    cracked offline: a crypt(5) hash, not locked (``!``, ``*``, ``!!``, ``!$6$...``) and not empty.
    ``root``'s hash has a rule of its own (a higher severity)."""
    for lineno, off, raw in _lines(data):
        name, sep, rest = raw.partition(b":")
        if not sep or not name.strip() or name.lstrip()[:1] == b"#":
            continue
        field = rest.split(b":", 1)[0]
        if not field or field.startswith(_LOCKED):
            continue
        value = _text(field)
        if not _CRYPT_HASH_RE.fullmatch(value):
            continue
        account = _text(name).strip()
        rule = "os.shadow-root-password-hash" if account == "root" else "os.shadow-password-hash"
        lo = len(name) + 1
        yield _match(rule, value, (off + lo, off + lo + len(field)), lineno, f"account {_q(account)}")


PARSERS: Mapping[str, Parser] = MappingProxyType(
    {
        "docker-config": _docker_config,
        "npmrc": _npmrc,
        "pypirc": _pypirc,
        "pip-conf": _pip_conf,
        "netrc": _netrc,
        "git-credentials": _git_credentials,
        "aws": _aws,
        "kubeconfig": _kubeconfig,
        "dotenv": _dotenv,
        "htpasswd": _htpasswd,
        "properties": _properties,
        "maven-settings": _maven_settings,
        "pgpass": _pgpass,
        "shadow": _shadow,
    }
)

_BY_NAME: Mapping[str, str] = MappingProxyType(
    {
        ".dockercfg": "docker-config",
        ".npmrc": "npmrc",
        "npmrc": "npmrc",
        ".pypirc": "pypirc",
        "pip.conf": "pip-conf",
        "pip.ini": "pip-conf",
        ".netrc": "netrc",
        "_netrc": "netrc",
        ".git-credentials": "git-credentials",
        ".htpasswd": "htpasswd",
        "htpasswd": "htpasswd",
        "settings.xml": "maven-settings",
        "settings-security.xml": "maven-settings",
        "kubeconfig": "kubeconfig",
        # kubeconfigs that k3s, RKE2 and kubeadm write, wherever they were copied to
        "k3s.yaml": "kubeconfig",
        "rke2.yaml": "kubeconfig",
        "admin.conf": "kubeconfig",
        "super-admin.conf": "kubeconfig",
        "kubelet.conf": "kubeconfig",
        "controller-manager.conf": "kubeconfig",
        "scheduler.conf": "kubeconfig",
        ".pgpass": "pgpass",
        "pgpass": "pgpass",
        "pgpass.conf": "pgpass",
    }
)

_SHADOW_NAMES = frozenset(
    {"shadow", "shadow-", "shadow~", "shadow.bak", "shadow.old", "gshadow", "gshadow-", "gshadow~", "gshadow.bak"}
)
"""/etc/shadow, its backups (``shadow-`` by shadow-utils, ``/var/backups/shadow.bak`` by Debian's
daily cron job) and the group equivalent."""
_SHADOW_DIRS = frozenset({"etc", "backups"})
_YAML_SUFFIXES = (".yaml", ".yml")
_EXAMPLE_PARTS = frozenset({"example", "examples", "sample", "template", "tmpl", "tpl", "dist", "default", "defaults"})
"""``.env.example`` and friends hold what a variable should look like, not what it is."""
_NOT_DOTENV_PARTS = frozenset(
    {
        *("py", "pyc", "rb", "js", "mjs", "cjs", "ts", "mts", "cts", "tsx", "jsx", "go", "java", "kt", "php", "cs"),
        *("sh", "bash", "zsh", "fish", "ps1", "bat", "cmd"),
        *("json", "yaml", "yml", "toml", "xml", "html", "md", "rst", "j2", "jinja", "jinja2", "erb", "map"),
        *("gz", "zip", "gpg", "enc", "age", "asc", "vault", "swp"),
    }
)
"""Extensions after an ``env`` part that make the file code or another format (``env.py``,
``env.d.ts``, ``env.sh``, ``.env.json``) or encrypted (``.env.gpg``, ``.env.vault``): the
pattern rules read those."""


def _is_env_file(name: str) -> bool:
    """``.env``, ``.env.local``, ``.env.production.local``, ``production.env``, ``env.production``,
    ``app.env.staging``: a name with an ``env`` part, not a code file, not an example."""
    parts = name.split(".")
    if "env" not in parts[:-1] and not (len(parts) > 1 and parts[-1] == "env"):
        return False
    after = parts[len(parts) - 1 - parts[::-1].index("env") + 1 :]
    return not any(p in _EXAMPLE_PARTS or p in _NOT_DOTENV_PARTS for p in after)


_DECIDING_PARENTS = frozenset({".docker", ".aws", ".kube", "kubernetes", "git", "etc", *_SHADOW_DIRS})
"""The parent directories ``_parser_name_for`` looks at."""


@functools.lru_cache(maxsize=8192)
def _parser_name_for(name: str, parent: str) -> str | None:
    """Rules that need the parent directory (one of ``_DECIDING_PARENTS``) or a suffix; plain
    basenames come from ``_BY_NAME``."""
    if name == "config.json" and parent == ".docker":
        return "docker-config"
    if parent == ".aws" and name in ("credentials", "config"):
        return "aws"
    if parent == ".kube" and (name.startswith("config") or name.endswith(_YAML_SUFFIXES)):
        return "kubeconfig"
    if name.startswith("kubeconfig") or name.endswith(".kubeconfig"):  # kubeconfig-prod.yaml, ci.kubeconfig
        return "kubeconfig"
    if parent == "kubernetes" and name.endswith(".conf"):  # /etc/kubernetes/admin.conf and friends
        return "kubeconfig"
    if parent == "git" and name == "credentials":  # ~/.config/git/credentials
        return "git-credentials"
    if parent in _SHADOW_DIRS and name in _SHADOW_NAMES:
        return "shadow"
    if _is_env_file(name) or (parent == "etc" and name == "environment"):
        return "dotenv"
    if name.endswith(".properties"):
        return "properties"
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.endswith(_YAML_SUFFIXES):  # a kubeconfig under any other name: the parser checks for users:
        return "kubeconfig"
    return None


def parser_name_for(path: str) -> str | None:
    """The ``PARSERS`` key for a path inside the image, for callers that filter by parser name."""
    # a member of a nested archive is "outer.tar!etc/shadow": its own path is what follows the "!"
    if "!" in path:
        path = path.rsplit("!", 1)[-1]
    # the last two components, as PurePosixPath would give them, without building one per file
    # (a normalised path's last two are its last two pieces; others are cleaned whole)
    cut = path.rfind("/")
    name = path[cut + 1 :]
    parent = path[path.rfind("/", 0, cut) + 1 : cut] if cut > 0 else ""
    if "\\" in path or not name or name == "." or (cut > 0 and parent in ("", ".")):
        parts = [c for c in path.replace("\\", "/").split("/") if c and c != "."]
        name, parent = (parts[-1] if parts else ""), (parts[-2] if len(parts) > 1 else "")
    parent = parent.lower()
    # any other parent decides nothing: left out, the answers for index.js or README.md are cached once
    return _parser_name_for(name.lower(), parent if parent in _DECIDING_PARENTS else "")


def parser_for(path: str) -> Parser | None:
    """Pick the parser from the file's path inside the image (basename / suffix / parent dir), or None."""
    key = parser_name_for(path)
    return PARSERS[key] if key else None


def parse(parser_name: str, data: bytes) -> list[Match]:
    """Run one parser by name. Unknown names are a caller bug and raise KeyError; content never raises."""
    return PARSERS[parser_name](data)
