"""Fresh, real-format test secrets, made at test time.

Nothing here is a real credential: values are random, so no fixture ever
carries a live-looking secret that a push-protection or scanner in the
repository's own pipeline would (rightly) flag. Each function returns a new
value per call; pass `seed` for a reproducible one. Formats follow the
providers' published shapes, including GitHub/npm's CRC32 checksum, and
values never contain long runs of one character or placeholder words, so
scanners do not dismiss them as examples. Key functions ignore `seed`
(the key generators they call cannot be seeded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import string
import struct
import subprocess
import tempfile
import zlib

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = DIGITS + UPPER + LOWER  # also the base62 alphabet GitHub/npm checksums use
B64URL = UPPER + LOWER + DIGITS + "_-"
_PLACEHOLDER = re.compile(r"(.)\1\1|(?i:example|xxxx|1234|abcd|test|dummy|fake)")
"""In any case: scanners drop ``xXxX`` as a placeholder just as they drop ``xxxx``."""


def _rng(seed: int | None) -> random.Random:
    return random.Random(seed) if seed is not None else secrets.SystemRandom()


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    """n chars from alphabet: no triple runs, no placeholder words, and every
    letter/digit class of the alphabet present when n is long enough."""
    classes = [c for c in (UPPER, LOWER, DIGITS) if set(c) & set(alphabet)]
    while True:
        s = "".join(rng.choice(alphabet) for _ in range(n))
        if _PLACEHOLDER.search(s):
            continue
        if n >= 12 and not all(set(s) & set(c) for c in classes):
            continue
        if alphabet == B64URL and (s[0] in "_-" or s[-1] in "_-"):
            continue  # keep word boundaries where regexes expect them
        return s


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = ALNUM[r] + out
    return out.rjust(width, "0")


def _checksummed(prefix: str, rng: random.Random) -> str:
    """prefix + 30 random base62 + 6-char base62 CRC32 of the random part (GitHub/npm); the
    checksum is checked for placeholder words too (``…zJ3Dxx`` + ``xX…`` would be one)."""
    while True:
        body = _rand(rng, ALNUM, 30)
        value = body + _base62(zlib.crc32(body.encode()), 6)
        if not _PLACEHOLDER.search(value):
            return prefix + value


def aws_access_key_id(seed: int | None = None) -> str:
    return "AKIA" + _rand(_rng(seed), UPPER + "234567", 16)


def aws_secret_access_key(seed: int | None = None) -> str:
    return _rand(_rng(seed), UPPER + LOWER + DIGITS + "/+", 40)


def github_pat(seed: int | None = None) -> str:
    return _checksummed("ghp_", _rng(seed))


def github_fine_grained(seed: int | None = None) -> str:
    rng = _rng(seed)
    return "github_pat_11" + _rand(rng, UPPER + DIGITS, 20) + "_" + _rand(rng, ALNUM, 59)


def gitlab_pat(seed: int | None = None) -> str:
    return "glpat-" + _rand(_rng(seed), B64URL, 20)


def slack_bot_token(seed: int | None = None) -> str:
    rng = _rng(seed)
    team = str(rng.randint(1, 9)) + _rand(rng, DIGITS, 10)
    bot = str(rng.randint(1, 9)) + _rand(rng, DIGITS, 12)
    return f"xoxb-{team}-{bot}-{_rand(rng, ALNUM, 24)}"


def slack_webhook(seed: int | None = None) -> str:
    rng = _rng(seed)
    return (
        f"https://hooks.slack.com/services/T{_rand(rng, UPPER + DIGITS, 10)}"
        f"/B{_rand(rng, UPPER + DIGITS, 10)}/{_rand(rng, ALNUM, 24)}"
    )


def stripe_live_secret(seed: int | None = None) -> str:
    rng = _rng(seed)
    return "sk_live_" + _rand(rng, ALNUM, rng.choice((24, 99)))


def openai_key(seed: int | None = None) -> str:
    """Project key: sk-proj- + 74 + "T3BlbkFJ" (base64 of "OpenAI") + 74."""
    rng = _rng(seed)
    return "sk-proj-" + _rand(rng, B64URL, 74) + "T3BlbkFJ" + _rand(rng, B64URL, 74)


def npm_token(seed: int | None = None) -> str:
    return _checksummed("npm_", _rng(seed))


def pypi_token(seed: int | None = None) -> str:
    """ "pypi-AgEIcHlwaS5vcmc" is base64 of the macaroon header naming pypi.org."""
    return "pypi-AgEIcHlwaS5vcmc" + _rand(_rng(seed), B64URL, 160)


def vault_token(seed: int | None = None) -> str:
    """Current service-token shape: hvs. + ~90 base64url chars (CAES... protobuf)."""
    return "hvs.CAESI" + _rand(_rng(seed), B64URL, 86)


def openbao_token(seed: int | None = None, namespace_id: str | None = None) -> str:
    """OpenBao's service token (Vault's before 1.10): s. + 24 base62; a token made in a namespace
    ends in "." + the namespace's ID (OpenBao's are 6 base62 characters)."""
    return "s." + _rand(_rng(seed), ALNUM, 24) + (f".{namespace_id}" if namespace_id else "")


def openbao_namespace_id(seed: int | None = None) -> str:
    return _rand(_rng(seed), ALNUM, 6)


def openbao_batch_token(seed: int | None = None) -> str:
    """b. + "AAAAAQ" (the format version) + base64url, about 150 characters as OpenBao makes them."""
    return "b.AAAAAQ" + _rand(_rng(seed), B64URL, 138)


def jwt(seed: int | None = None) -> str:
    """A genuinely HS256-signed JWT over a random payload."""
    rng = _rng(seed)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    iat = rng.randint(1_600_000_000, 1_800_000_000)
    payload = {"sub": _rand(rng, ALNUM, 16), "name": _rand(rng, LOWER, 8), "iat": iat, "exp": iat + 3600}
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(b64(json.dumps(p, separators=(",", ":")).encode()) for p in (header, payload))
    key = _rand(rng, ALNUM, 32).encode()
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def password(seed: int | None = None) -> str:
    rng = _rng(seed)
    symbols = "!#%&*+-=?@^_~"
    while True:
        s = _rand(rng, UPPER + LOWER + DIGITS + symbols, 20)
        if any(c in symbols for c in s):
            return s


def _run(*cmd: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True).stdout


def rsa_private_key_pem(seed: int | None = None, traditional: bool = False) -> str:
    """A real RSA-2048 key (PKCS#8 "PRIVATE KEY", or "RSA PRIVATE KEY" if traditional)."""
    pem = _run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    if traditional:
        pem = _run("openssl", "rsa", "-traditional", stdin=pem)
    return pem.decode()


def ec_private_key_pem(seed: int | None = None) -> str:
    """A real P-256 key in SEC1 form ("EC PRIVATE KEY")."""
    return _run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout").decode()


def openssh_private_key(seed: int | None = None) -> str:
    """A real unencrypted ed25519 key in OpenSSH format ("OPENSSH PRIVATE KEY")."""
    if shutil.which("ssh-keygen"):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "id")
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path)
            with open(path) as f:
                return f.read()
    # No ssh-keygen: let openssl make the key and write the openssh-key-v1 container ourselves.
    der = _run("openssl", "genpkey", "-algorithm", "ed25519", "-outform", "DER")
    seed32 = der[-32:]
    pub32 = _run("openssl", "pkey", "-inform", "DER", "-pubout", "-outform", "DER", stdin=der)[-32:]

    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    pub_blob = s(b"ssh-ed25519") + s(pub32)
    check = struct.pack(">I", secrets.randbits(32)) * 2
    priv = check + pub_blob + s(seed32 + pub32) + s(b"")
    priv += bytes(range(1, 1 + (-len(priv) % 8)))
    blob = b"openssh-key-v1\0" + s(b"none") + s(b"none") + s(b"")  # cipher, kdf, kdf options
    blob += struct.pack(">I", 1) + s(pub_blob) + s(priv)
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    body = "\n".join(lines)
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"


HEX = DIGITS + "abcdef"
B64 = ALNUM + "+/"


def putty_private_key(seed: int | None = None) -> str:
    """An unencrypted ed25519 key in PuTTY's PPK 3 layout: the public and private blobs in
    base64 lines of 64, then the MAC (random bytes of the right lengths: no tool makes PPK here)."""
    rng = _rng(seed)

    def lines(data: bytes) -> list[str]:
        text = base64.b64encode(data).decode()
        return [text[i : i + 64] for i in range(0, len(text), 64)]

    public = lines(b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + bytes(rng.getrandbits(8) for _ in range(32)))
    private = lines(b"\0\0\0\x20" + bytes(rng.getrandbits(8) for _ in range(32)))
    return "\n".join(
        [
            "PuTTY-User-Key-File-3: ssh-ed25519",
            "Encryption: none",
            "Comment: ed25519-key-build",
            f"Public-Lines: {len(public)}",
            *public,
            f"Private-Lines: {len(private)}",
            *private,
            f"Private-MAC: {_rand(rng, HEX, 64)}",
        ]
    ) + "\n"


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID from ``rng``, with the same placeholder checks as every other value."""
    while True:
        h = _rand(rng, HEX, 32)
        value = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}"
        if not _PLACEHOLDER.search(value):
            return value


def telegram_bot_token(seed: int | None = None) -> str:
    """<bot id>:AA + 33 base64url: the secret of current bot tokens starts with AA."""
    rng = _rng(seed)
    return f"{rng.randint(10**8, 10**10 - 1)}:AA{_rand(rng, B64URL, 33)}"


def nuget_api_key(seed: int | None = None) -> str:
    return "oy2" + _rand(_rng(seed), LOWER + DIGITS, 43)


def sonarqube_legacy_token(seed: int | None = None) -> str:
    """Tokens from before SonarQube 9.5: 40 hex, no sq?_ prefix."""
    return _rand(_rng(seed), HEX, 40)


def slack_refresh_token(seed: int | None = None) -> str:
    """Rotating-token refresh token: xoxe-1- + about 146 base62."""
    return "xoxe-1-" + _rand(_rng(seed), ALNUM, 146)


def npm_legacy_token(seed: int | None = None) -> str:
    """npm tokens before 2021 (and Nexus NpmTokens) are UUIDs."""
    return _uuid(_rng(seed))


def vault_unseal_key(seed: int | None = None) -> str:
    """A Shamir share as vault operator init prints it: base64 of 33 bytes, 44 characters."""
    return _rand(_rng(seed), B64, 44)


def rails_secret_key_base(seed: int | None = None) -> str:
    """bin/rails secret: 128 hex."""
    return _rand(_rng(seed), HEX, 128)


def kubeadm_token(seed: int | None = None) -> str:
    """[a-z0-9]{6}.[a-z0-9]{16}, as kubeadm token create prints it."""
    rng = _rng(seed)
    return _rand(rng, LOWER + DIGITS, 6) + "." + _rand(rng, LOWER + DIGITS, 16)


def mailgun_api_key(seed: int | None = None) -> str:
    """<32 hex>-<8 hex>-<8 hex>."""
    rng = _rng(seed)
    return f"{_rand(rng, HEX, 32)}-{_rand(rng, HEX, 8)}-{_rand(rng, HEX, 8)}"


def postmark_server_token(seed: int | None = None) -> str:
    return _uuid(_rng(seed))


def facebook_app_token(seed: int | None = None) -> str:
    """<app id>|<app secret>: the app access token form that holds the app secret."""
    rng = _rng(seed)
    return f"{rng.randint(10**14, 10**15 - 1)}|{_rand(rng, HEX, 32)}"


def mongodb_atlas_sa_secret(seed: int | None = None) -> str:
    return "mdb_sa_sk_" + _rand(_rng(seed), ALNUM, 40)


def tailscale_auth_key(seed: int | None = None) -> str:
    rng = _rng(seed)
    return f"tskey-auth-k{_rand(rng, ALNUM, 11)}CNTRL-{_rand(rng, ALNUM, 33)}"


def twitch_stream_key(seed: int | None = None) -> str:
    rng = _rng(seed)
    return f"live_{rng.randint(10**8, 10**9 - 1)}_{_rand(rng, ALNUM, 30)}"


def easypost_api_key(seed: int | None = None) -> str:
    return "EZAK" + _rand(_rng(seed), ALNUM, 54)


def kerberos_asrep_hash(seed: int | None = None, user: str = "svc-backup@CORP.ACME.LOCAL") -> str:
    """hashcat mode 18200: $krb5asrep$23$<user>:<32-hex checksum>$<hex encrypted part>."""
    rng = _rng(seed)
    return f"$krb5asrep$23${user}:{_rand(rng, HEX, 32)}${_rand(rng, HEX, 256)}"


def cloudflare_api_token(seed: int | None = None) -> str:
    """40 base64url characters (never all hex: that would read as a SHA-1)."""
    rng = _rng(seed)
    while True:
        value = _rand(rng, B64URL, 40)
        if set(value) - set(HEX):
            return value


def twilio_account_sid(seed: int | None = None) -> str:
    return "AC" + _rand(_rng(seed), HEX, 32)


def twilio_auth_token(seed: int | None = None) -> str:
    return _rand(_rng(seed), HEX, 32)


def datadog_api_key(seed: int | None = None) -> str:
    return _rand(_rng(seed), HEX, 32)


def datadog_app_key(seed: int | None = None) -> str:
    return _rand(_rng(seed), HEX, 40)


def telegram_bot_token_legacy(seed: int | None = None) -> str:
    """<bot id>:<35 base64url>, from before the secret part started with AA."""
    rng = _rng(seed)
    while True:
        secret = _rand(rng, B64URL, 35)
        if not secret.startswith("AA"):
            return f"{rng.randint(10**8, 10**10 - 1)}:{secret}"


DJANGO_KEY_ALPHABET = LOWER + DIGITS + "!@#$%^&*(-_=+)"
_TEMPLATE_LOOKALIKE = re.compile(r"[$%]\(|\$\{|\{\{")


def django_secret_key(seed: int | None = None, insecure: bool = False) -> str:
    """get_random_secret_key(): 50 characters of Django's alphabet; startproject puts
    django-insecure- in front. No ``$(`` / ``%(``: tests that need one build it on purpose."""
    rng = _rng(seed)
    while True:
        value = _rand(rng, DJANGO_KEY_ALPHABET, 50)
        if not _TEMPLATE_LOOKALIKE.search(value):
            return ("django-insecure-" if insecure else "") + value


WORDPRESS_SALT_ALPHABET = UPPER + LOWER + DIGITS + "!@#$%^&*()-_ []{}<>~`+=,.;:/?|"


def wordpress_salt(seed: int | None = None) -> str:
    """64 characters as api.wordpress.org/secret-key/1.1/salt/ makes them (no quote, no
    backslash), at least six kinds of symbol, no template look-alike, no leading or trailing space."""
    rng = _rng(seed)
    while True:
        value = _rand(rng, WORDPRESS_SALT_ALPHABET, 64)
        symbols = {c for c in value if not c.isalnum()}
        if len(symbols) >= 6 and not _TEMPLATE_LOOKALIKE.search(value) and value.strip() == value:
            return value


CRYPT64 = "./" + DIGITS + UPPER + LOWER


def shadow_hash(seed: int | None = None, scheme: str = "6") -> str:
    """A crypt(5) hash as /etc/shadow holds it: $1$, $5$, $6$ made by openssl passwd from a random
    password; $y$ (yescrypt) and $2b$ (bcrypt) shaped from random characters."""
    rng = _rng(seed)
    if scheme in ("1", "5", "6"):
        salt = _rand(rng, ALNUM, 8 if scheme == "1" else 16)
        secret = password(seed).encode() + b"\n"
        return _run("openssl", "passwd", f"-{scheme}", "-salt", salt, "-stdin", stdin=secret).decode().strip()
    if scheme == "y":
        return f"$y$j9T${_rand(rng, CRYPT64, 22)}${_rand(rng, CRYPT64, 43)}"
    if scheme == "2b":
        return f"$2b$12${_rand(rng, CRYPT64, 53)}"
    raise ValueError(f"unknown crypt scheme {scheme!r}")
