"""Predicates that drop candidates which are not secrets: placeholders, templates, ids.

``is_placeholder`` runs on every candidate; the detect-secrets heuristics (reused, not rewritten)
run on rules that opt into ``filters: [heuristic]`` — the generic, name-based rules whose pattern
alone cannot tell a secret from code.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from types import ModuleType

_PLACEHOLDER_WORDS = re.compile(
    r"(?i)(example|placeholder|redacted|changeme|change[_-]me|replace[_-]?me|your[ _-]|[_ -]here$|"
    r"insert[_-]|dummy|(?:some|your|my|test)[_-]?(?:pass(?:word)?|secret|token)|xxxx|\*\*\*\*|\.\.\.\.)"
)
_TEMPLATE = re.compile(
    r"\$\{[ \t]{0,3}[A-Za-z_][\w.]{0,80}(?:[:?+=-][^{}]{0,80})?(?:[ \t]{0,3}\}|$)"
    r"|\$\([ \t]{0,3}[A-Za-z_][\w.-]{0,80}(?:[ \t][^()]{0,200})?(?:\)|$)"
    r"|\{\{[ \t]{0,3}[-.$A-Za-z_][^{}]{0,200}(?:\}\}|$)"
    r"|%\([A-Za-z_]\w{0,80}\)"
)
"""A template marker inside a value: ``${VAR}``, ``${VAR:-x}``, ``$(cat /run/secrets/x)``,
``{{ .Values.x }}``, ``%(name)s``, closed or cut off at the value's end. Only a name after the
opening: generated secrets (Django keys, WordPress salts) hold ``$(``, ``{{`` or ``%(`` by chance."""
_PLACEHOLDER_WHOLE = re.compile(
    r"<[^<>]*>|\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%|%s"
    r"|[#%$@]?\{[A-Za-z_][\w .:-]{0,80}\}#?|\[[A-Za-z_][\w .:-]{0,80}\]|@[A-Za-z_][\w.-]{0,80}@"
    r"|__[A-Za-z][A-Za-z0-9_]{0,80}__"
    r"|\$?\{[A-Za-z_][\w.]{0,80}(?:\[[^\[\]{}]{1,40}\][\w.]{0,40})+(?:![rsa])?\}",
    re.S,
)
"""Values that are entirely a reference: ``<token>``, ``$TOKEN``, ``%TOKEN%``, ``[PASSWORD]``,
``{SumoAccessKey}``, ``#{REDIS_PASSWORD}`` (Octopus, Azure DevOps replace-tokens), ``@DB_PASS@``
(autoconf), ``__API_KEY__``, and an f-string or format field that indexes (``{pw[0]}``,
``{cfg['db'].password}``, ``${creds[1]}``): code that builds a command line or a config."""
_BRACKET_FRAGMENT = re.compile(r"[<\[{(#$%@]*[A-Za-z_][A-Za-z_.:-]*[>\]})#%@]*")
_BRACKETS = frozenset("<>[]{}()#%@")
_EMBEDDED_REFERENCE = re.compile(
    r"<[A-Za-z_][\w .:-]{0,40}>|#\{[^{}]{1,80}\}|\{[A-Za-z_][\w.:-]{0,40}\}|\[[A-Z_]{3,40}\]"
)
"""A reference inside a value: ``https://<user>:<password>@…``, ``key-{env}-…``."""
_HASH_SCHEME = re.compile(r"\{[A-Z0-9][A-Z0-9.-]{1,15}\}(?=[A-Za-z0-9+/$.])")
"""An LDAP/Dovecot password scheme (``{SSHA}…``, ``{PBKDF2-SHA512}…``) in front of a hash: not a reference."""
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}")
_ARN = re.compile(r"arn:aws(?:-[a-z]{2,10}){0,3}:[A-Za-z0-9-]{1,64}:[^\s\"'<>,;]*")
"""An AWS resource name: it names a secret (``…:secret:prod/db-AbCdEf``), it is not one."""
_FIXTURE_PASSWORD = re.compile(
    r"(?i)(?:p[a@]ss(?:w[o0]rd|wd)?|secret|s3cr3t|testing|test|admin|changeme|letmein|qwerty|welcome"
    r"|default|demo|sample|foo|bar|baz|foobar|hello|guest|user|root|mysecret|topsecret|abc|xyz)"
    r"[-_.!@#]?[0-9]{0,6}[!.]?"
)
"""A dictionary word and a few digits (``password123``, ``testing123``): a test fixture's value,
not a credential anyone generated."""
_PLACEHOLDER_EXACT = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "null",
        "none",
        "nil",
        "true",
        "false",
        "undefined",
        "test",
        "testing",
        "admin",
        "root",
        "default",
        "empty",
        "string",
        "value",
        "changeit",
        "pass",
        "foobar",
        "hunter2",
        "foobared",  # redis.conf's example requirepass
        "todo",
        "tbd",
        "fixme",
    }
)
_LONG_RUN = re.compile(r"(.)\1{5,}")
_FILLER_RUN = re.compile(r"([xX*0.#_=-])\1{5,}")
"""Filler characters people type in placeholders. Other runs occur in real tokens: STS session
tokens hold ``//////////``, OpenSSH key bodies ``AAAAAAAAAAAB``, X bearer tokens lead with As."""


def is_placeholder(value: str, *, strict: bool = False, test_fixture: bool = False) -> bool:
    """True for values that stand for a secret rather than being one.

    A real credential never is a bare reference (``$TOKEN``, ``<token>``), never contains a
    template marker or a word like ``example``, is not made of one repeated character, and never
    has six filler characters (``x``, ``*``, ``0``…) in a row. ``strict`` (generic name=value rules,
    which see human-typed values) rejects a run of any six equal characters; with ``test_fixture``
    (a file of a test suite) also a word and a few digits (``password123``): a weak password in an
    application's ``.env`` is still a leak, the same in ``tests/test_db.py`` is a fixture.
    """
    v = value.strip().strip("'\"").strip()
    low = v.lower()
    if len(v) < 4 or low in _PLACEHOLDER_EXACT or len(set(low) - set("-_. ")) <= 1:
        return True
    if _PLACEHOLDER_WHOLE.fullmatch(v) or _PLACEHOLDER_WORDS.search(v) or _TEMPLATE.search(v):
        return True
    scheme = _HASH_SCHEME.match(v)
    if _EMBEDDED_REFERENCE.search(v, scheme.end() if scheme else 0) and not _looks_generated(v):
        return True
    if _is_bracket_fragment(v) or _EMAIL.fullmatch(v) or _ARN.match(v):
        return True
    if _is_degenerate(v) or (len(v) >= 12 and _is_sequential_runs(v)):
        return True
    if strict and test_fixture and _FIXTURE_PASSWORD.fullmatch(v):
        return True
    return bool((_LONG_RUN if strict else _FILLER_RUN).search(v))


def _looks_generated(value: str) -> bool:
    """A long random string over a large alphabet with many symbols (a WordPress salt, a
    generated password): where ``<ab>`` or ``{cd}`` occurs by chance, not as a reference. A
    template with a reference in it is mostly letters and a few separators, or a URL."""
    if len(value) < 40 or "://" in value:
        return False
    symbols = {ch for ch in value if not ch.isalnum()}
    return len(symbols) >= 6 and shannon_entropy(value) >= 4.5


def _is_bracket_fragment(value: str) -> bool:
    """``password>``, ``<user``, ``REDIS_PASSWORD}``: the part of a bracketed placeholder a value's
    character class let through, a name without digits with a bracket left at one end."""
    return (value[0] in _BRACKETS or value[-1] in _BRACKETS) and bool(_BRACKET_FRAGMENT.fullmatch(value))


_SEPARATORS = "_-.:/|"


def _is_degenerate(value: str) -> bool:
    """A value whose random part is not random: ``glc_1111…``, ``sntryu_aaaa…``, ``abcabcabc…``,
    ``0123456789abcdef0123…``. Checked on the whole value and on what follows its last separator
    (the prefix of ``glc_`` or ``sntryu_`` is not part of the random body)."""
    cut = max(value.rfind(ch) for ch in _SEPARATORS) + 1
    bodies = [value] if cut <= 0 or len(value) - cut < 12 else [value, value[cut:]]
    return any(_degenerate_body(body) for body in bodies)


def _degenerate_body(body: str) -> bool:
    n = len(body)
    if n < 12:
        return False
    counts = Counter(body)
    if len(counts) <= 3 or max(counts.values()) * 5 >= n * 3:
        return True
    # periodic: a short unit repeated at least three times (``abcabcabc…``, ``0123…ef0123…ef``)
    return any(body[p:] == body[:-p] for p in range(1, min(16, n // 3) + 1))


def _detect_secrets() -> ModuleType:
    """detect-secrets' heuristics, imported the first time one is asked: the package (and
    ``requests``, which it imports) takes a tenth of a second to load, which a scan of local
    layers spends while their headers are surveyed (``Scanner._pieces``), not before."""
    from detect_secrets.filters import heuristic

    return heuristic


def is_heuristic_non_secret(secret: str, line: str, name: str | None = None) -> bool:
    """detect-secrets' heuristic filters, and ours, for generic rules. ``name`` is what the value
    is assigned to (``assignment_before``)."""
    ds_heuristic = _detect_secrets()
    return (
        ds_heuristic.is_templated_secret(secret)
        or ds_heuristic.is_sequential_string(secret)
        or ds_heuristic.is_potential_uuid(secret)
        or ds_heuristic.is_prefixed_with_dollar_sign(secret)
        or ds_heuristic.is_indirect_reference(line)
        or _is_hash_like(secret)
        or _CONTROL.search(secret) is not None
        or _is_sequential_runs(secret)
        or _names_itself(secret, name)
        or _is_dotted_attribute(secret)
        or _in_arn(secret, line)
    )


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_ATTRIBUTE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z]+(?:[A-Z][a-z0-9]+)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def _is_dotted_attribute(secret: str) -> bool:
    """``X25519.secret_length``, ``config.apiToken``, ``Settings.DB_PASSWORD``: an expression that
    reads an attribute or constant (snake_case, camelCase or UPPER_CASE words), not a value."""
    return bool(_DOTTED.fullmatch(secret)) and bool(_ATTRIBUTE.fullmatch(secret.rsplit(".", 1)[1]))


def _in_arn(secret: str, line: str) -> bool:
    """The value is part of an ARN on its line (``arn:aws:secretsmanager:…:secret:db-password-AbCdEf``)."""
    return "arn:aws" in line and any(secret in arn.group() for arn in _ARN.finditer(line))


def _is_sequential_runs(secret: str) -> bool:
    """Two or three runs of consecutive characters (``ABC12345``, ``abcd-1234``): typed by a person
    filling in a test fixture. detect-secrets' check sees only one run."""
    runs: list[int] = []
    previous = ""
    for ch in secret.lower():
        if ch in "-_.":
            previous = ""
            continue
        if previous and ch.isalnum() and ord(ch) == ord(previous) + 1:
            runs[-1] += 1
        else:
            runs.append(1)
        previous = ch
    return 2 <= len(runs) <= 3 and min(runs) >= 3


_ASSIGNED = re.compile(
    rb"(?:\b(?:ENV|ARG)\s+|(--?)|([?&])|(?<![/\w.-]))([A-Za-z_][A-Za-z0-9_.-]{0,80})[\"'\]]{0,2}"
    rb"(?:\s{0,3}:\s{0,3}&?[A-Za-z_][\w.<>\[\]]{0,40}(?=\s{0,3}=))?\s*(?:=|:=|=>|:|\s)\s*[\"'`]?$"
)
"""``NAME = ``, ``"name": "``, ``ENV NAME ``, ``--name=``, ``?name=``, ``name: str = `` at the end of
the text before a value."""
_QUOTES = b"\"'`"


@dataclass(frozen=True, slots=True)
class Assignment:
    name: str
    flag: bool
    """``--password=…``: a command-line option."""
    query: bool
    """``?api_key=…``: a URL query parameter."""


def assignment_before(data: bytes, start: int) -> Assignment | None:
    """What the value at ``start`` is assigned to on its line, read from the text before it only
    (so it never contains the value)."""
    line_start = data.rfind(b"\n", max(0, start - 200), start) + 1
    found = _ASSIGNED.search(data, line_start if line_start > 0 else max(0, start - 200), start)
    if found is None:
        return None
    return Assignment(found.group(3).decode("ascii", "replace"), bool(found.group(1)), bool(found.group(2)))


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _names_itself(secret: str, name: str | None) -> bool:
    """``X_AWS_EC2_METADATA_TOKEN = "x-aws-ec2-metadata-token"``, ``"token": "my_token"``: a name
    spelled as its own value (a header name, a documentation placeholder), not a credential."""
    if name is None or len(secret) < 8:
        return False
    name, value = _alnum(name), _alnum(secret)
    return value in (name, "my" + name, "your" + name, "some" + name)


def is_bare_code_value(data: bytes, start: int, end: int) -> bool:
    """In source code a hardcoded secret is a string literal, so ``NAME = value`` with a bare value
    is an expression (``token = this.getToken()``, ``apiKey: SensitiveString``). Inside a string
    literal (an odd number of quotes before it on the line) ``NAME=value`` is text that may hold a
    secret: a connection string, a command line, a URL."""
    if start > 0 and data[start - 1] in _QUOTES:
        # "…Credential="+e.accessKeyId+"/" is a concatenation; "+Xo-uIN=g…" closed by its quote is a literal
        closed = data[end : end + 1] == data[start - 1 : start] and data[end - 1 : end] != b"+"
        return data[start : start + 1] == b"+" and not closed
    line = data[data.rfind(b"\n", max(0, start - 400), start) + 1 : start].replace(b"\\\\", b"")
    embedded = line.rfind(b"\\n")  # code held in a JSON string (source maps, bundles): its own lines
    if embedded >= 0:
        line = line[embedded + 2 :]
    # in JSON only the double quote is escaped; elsewhere an escaped quote does not end a string
    escaped = line.count(b'\\"')
    quotes = (escaped if embedded >= 0 else line.count(b'"') - escaped, line.count(b"'"), line.count(b"`"))
    if any(n % 2 for n in quotes):
        return False  # inside a string literal: "Server=db;Password=…;", "--password=…", "…?api_key=…"
    assignment = assignment_before(data, start)
    return assignment is None or not (assignment.flag or assignment.query)


_HUMP = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_IDENTIFIER = re.compile(r"\.?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_VOWELS = frozenset("aeiouy")


def is_code_identifier(secret: str) -> bool:
    """``'secret': 'V1SecretVolumeSource'``, ``token = ".models.V1Secret"``, ``"OAuth2Session"``: in
    source code, a string that names a type or module rather than holding a value. It reads as
    words: PascalCase, camelCase or snake_case humps that read as words (one of five letters or
    more), at most one acronym (HTTP, V, SHA) and one short hump (Db, Io) per segment, a few
    digits. A random value's humps are one or two letters long, or read as no word."""
    if not _IDENTIFIER.fullmatch(secret):
        return False
    words: list[str] = []
    for segment in secret.lstrip(".").split("."):
        found = _words(segment)
        if found is None:
            return False
        words.extend(found)
    return len(words) >= 2 and max(map(len, words)) >= 5


def _words(segment: str) -> list[str] | None:
    """The words of one dotted segment, or None if it does not read as words."""
    words: list[str] = []
    letters = short = acronyms = digit_groups = digits = 0
    for part in segment.split("_"):
        humps = _HUMP.findall(part)
        if sum(map(len, humps)) != len(part):
            return None
        for position, hump in enumerate(humps):
            if hump.isdigit():
                digit_groups, digits = digit_groups + 1, digits + len(hump)
                continue
            letters += len(hump)
            if hump.isupper():
                acronyms += 1
            elif len(hump) >= 3 and (hump[0].isupper() or position == 0) and _reads_as_word(hump.lower()):
                words.append(hump)
            else:
                short += 1
    fits = sum(map(len, words)) * 3 >= letters * 2 and short <= 1 and acronyms <= 1
    return words if fits and digit_groups <= 2 and digits <= 3 else None


_CONSONANT_RUN = re.compile(r"[^aeiouy]{4}")


def _reads_as_word(hump: str) -> bool:
    """Vowels as often as in words (random letters have one in four) and no four consonants in a row."""
    vowels = sum(ch in _VOWELS for ch in hump)
    return vowels * 10 >= len(hump) * 3 and not _CONSONANT_RUN.search(hump)


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")
"""A NUL or other control byte inside a value: binary data (a .mo catalogue, bytecode) around a
secret-looking name, not a credential someone typed."""


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _is_hash_like(secret: str) -> bool:
    """A bare hex string of a digest length (md5/sha1/sha256/sha512) is a checksum far more often than a key."""
    return bool(_HEX.match(secret)) and len(secret) in (32, 40, 64, 128)


def shannon_entropy(value: str) -> float:
    """Bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def is_lock_file(path: str) -> bool:
    """Lock files are full of integrity hashes; detect-secrets' list of them, reused."""
    return bool(_detect_secrets().is_lock_file(path))


_TEST_PATH = re.compile(
    r"(?i)(?:^|/)(?:tests?|testing|__tests__|spec|fixtures?|testdata)/|(?:^|/)test_[^/]*$|_test\.[a-z]+$|\.(?:spec|test)\.[a-z]+$"
)


def is_test_file(path: str | None) -> bool:
    """A file of a test suite (``tests/``, ``fixtures/``, ``test_*.py``, ``*_test.go``, ``*.spec.ts``)."""
    return path is not None and _TEST_PATH.search(path) is not None
