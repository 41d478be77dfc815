#!/usr/bin/env python3
"""Build the synthetic image that `make bench` scans: realistic, large, offline and deterministic.

    python bench/make_image.py OUT.tar --size-mb 500 [--seed N]

Why synthetic: a benchmark has to run offline and scan the same bytes every time, and a real image
of 0.5-2 GB can be neither committed nor downloaded in CI. So this script imitates what secretscan
meets in practice, by uncompressed bytes (roughly):

* ~25% ELF-like executables and shared libraries (skewed "machine code", string tables, padding);
* ~15% Python site-packages (.py from templates, .pyc-like binaries, dist-info METADATA/RECORD);
* ~15% node_modules (package.json, many small .js files, minified bundles with very long lines);
* ~10% files that are already compressed (.gz changelogs, .whl, .jar with nested jars, .tgz);
* ~35% a few big logs and data files (50-200 MB each in the 500 MB image: log lines, a CSV, a
  binary data file), which is where a scanner's per-byte cost and memory show;

plus near-misses that must not be reported (UUIDs, sha256 digests, lockfile integrity hashes,
`password = os.environ[...]`, certificates and public keys) and sixteen planted secrets of
varied kinds in hard places: deep inside the big files (one straddling secretscan's 8 MiB chunk
boundary), in a jar nested in a jar, in a .tgz, in an ELF string table, a PEM private key, a file
a later layer deletes, the config Env and a history ARG. `OUT.tar.planted.json` lists them by the
sha256 of their value, with where they are; bench/run.py checks the scan report against it.

Why streamed: the 2 GB variant must not be built in memory (tests/imagebuilder.py builds whole
layers as bytes). Each layer is written by `tarfile` in stream mode through a sha256 (the diff_id)
into a gzip compressor (isal's igzip when installed, which is several times faster than zlib)
through a second sha256 (the blob digest) into a temporary file next to the output; big files are
produced in ~1 MiB blocks. The output is the Docker 25+ `docker save` layout (an OCI layout with
`index.json` and `oci-layout`, plus `manifest.json` pointing at `blobs/sha256/...`), but with
gzip-compressed layer blobs, as pulled from a registry: that is what makes the gzip floor of
bench/run.py meaningful.

Why deterministic: every file's content comes from random.Random seeded with (seed, path), shared
pools from (seed, pool name); mtimes are fixed, members sorted, gzip headers carry no time or name.
The same seed and size give the same uncompressed layers (diff_ids); with the same compressor they
give the same archive byte for byte. Big files repeat sampled lines and byte pools rather than
calling the random generator per line: the 500 MB image takes about 11 s to build on one core.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import math
import os
import random
import struct
import sys
import tarfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import secretgen as gen  # noqa: E402
from imagebuilder import EPOCH, MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER, MT_OCI_MANIFEST  # noqa: E402

_igzip: ModuleType | None
try:
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - the venv has it; plain gzip is the documented fallback
    _igzip = None

KiB, MiB = 1 << 10, 1 << 20
MTIME = 1_700_000_000  # fixed member mtime (2023-11-14), so the same seed and size give the same bytes
ZIP_TIME = (2023, 11, 14, 22, 13, 20)
CHUNK_BOUNDARY = 8 * MiB  # secretscan's default chunk size (Config.chunk_bytes): one secret straddles it
BIG_FILE_MAX = 200 * MiB
BIG_FILE_MIN = 10 * MiB  # room for the plant across the 8 MiB boundary even in small test images
SHARES = {"binaries": 0.25, "python": 0.15, "node": 0.15, "compressed": 0.10, "bigdata": 0.35}
COMPRESSED_SPLIT = {"changelog": 0.15, "wheels": 0.30, "tgz": 0.25, "jars": 0.30}  # of the compressed share
SITE = "usr/local/lib/python3.11/site-packages"
REPO_TAG = "secretscan/bench"

# ----------------------------------------------------------------------------- vocabulary


def split_words(text: str) -> list[str]:
    return text.split()


# Words chosen to never form secret-looking names (no token/secret/password/key/auth): the
# generated code must contain only the near-misses we put there on purpose.
WORDS = split_words(
    """
able access account action active adapter address admin agent alias align allow amount anchor
answer apply archive array asset async attach attempt audit backend badge balance banner base
batch before begin binary bind block board body border bound branch bridge buffer build bundle
button cache calendar call canvas capture card cart catalog cell center chain change channel
chart check child choice chunk circle class clean clear click client clock clone close cloud
cluster code collect color column command comment commit common compare compile complete config
connect console constant contact container content context control convert copy count counter
cover create cursor custom cycle daemon data date debug decode default delay delete delta deploy
depth detail device dialog digest direct display document domain double draft draw driver
dynamic edge editor effect element email empty encode engine entity entry error event exact
export extend extra factor failure feature fetch field figure filter final finder first flag
float folder follow format forward frame function gateway general global graph group guard
handle handler header height helper hidden history holder hook host image import index inline
input insert install instance integer internal invoice issue item job join journal label layer
layout leader length level library limit line link list listener loader local locale lock logger
lookup loop manager manual map margin marker master match matrix member memory menu merge
message method metric middle mirror mode model module monitor mount native network node notice
number object offset option order origin output owner package page panel param parent parse
partial path pattern payload peer pending period picker pipeline pixel placeholder plugin point
policy pool popup port position post prefix preview price primary print priority process product
profile program project promise property provider proxy publish query queue quota radius random
range reader record redirect reduce region register release remote render replace reply report
request reset resolve resource response result retry return review route router rule runner
runtime sample scale schema scope screen script search section select sender sequence server
service session setting shadow shape share sheet shift signal simple single size slice slot
socket sort source space span split stack stage state static status storage store stream string
style submit suffix summary switch symbol sync table tablet target task template tenant test
text theme thread ticket timer title toggle tool topic total trace track transfer tree trigger
type unit update upload usage user util valid value vector version view viewer visit volume
wallet watch widget width window worker wrapper write writer zone
"""
)

BIN_NAMES = split_words(
    """
bash sh dash ls cp mv rm ln cat chmod chown chgrp date dd df dir du echo env expr false grep
egrep fgrep gzip gunzip zcat head hostname id kill less login mkdir mknod mktemp more mount nice
nohup ps pwd readlink rmdir sed sleep stat stty su sync tail tar tee touch tr true umount uname
uniq wc which whoami xargs yes apt apt-get apt-cache apt-config apt-key dpkg dpkg-query dpkg-deb
dpkg-split dpkg-divert curl wget openssl perl python3.11 pip3 gpgv find locate awk mawk diff cmp
patch install base64 basename dirname sort split cut join paste comm tsort fold fmt nl od pr ptx
shuf seq printf test timeout nproc numfmt sha1sum sha256sum sha512sum md5sum b2sum cksum sum
truncate tac rev column getent groups useradd userdel usermod groupadd passwd chsh chfn newgrp
runuser setpriv start-stop-daemon update-alternatives ldconfig ldd iconv locale localedef
tzselect zdump zic getconf catchsegv pldd sotruss sprof
"""
)

LIB_NAMES = split_words(
    """
c m pthread dl rt resolv nss_files nss_dns crypt util anl gcc_s stdc++ z bz2 lzma zstd lz4 ssl
crypto ffi expat sqlite3 readline ncursesw tinfo uuid blkid mount smartcols selinux pcre2-8 acl
attr cap audit systemd udev gmp nettle hogweed gnutls tasn1 p11-kit idn2 unistring psl curl
nghttp2 ssh2 rtmp gssapi_krb5 krb5 k5crypto com_err krb5support keyutils ldap lber sasl2 xml2
xslt yaml-0 jpeg png16 tiff webp freetype fontconfig harfbuzz pq mariadb gdbm db-5.3 edit
event-2.1 sodium argon2 brotlidec brotlienc brotlicommon icuuc icui18n icudata
"""
)

PY_PACKAGES = split_words(
    """
requests urllib3 certifi idna charset_normalizer yaml jinja2 markupsafe click flask werkzeug
itsdangerous sqlalchemy alembic psycopg2 redis celery kombu billiard vine amqp pytz dateutil six
attr attrs pydantic pydantic_core typing_extensions botocore boto3 s3transfer jmespath numpy
pandas google protobuf grpc cryptography cffi pycparser gunicorn uvicorn starlette fastapi anyio
sniffio h11 httpx httpcore rich pygments tqdm packaging setuptools pip wheel lxml pillow
"""
)

NODE_PACKAGES = split_words(
    """
react react-dom lodash express debug ms qs body-parser axios moment chalk commander semver uuid
@babel/core @babel/parser @babel/traverse @babel/types @babel/generator @types/node typescript
webpack webpack-cli terser acorn ajv ansi-styles supports-color has-flag color-convert color-
name escape-string-regexp js-tokens loose-envify object-assign scheduler prop-types react-is
mime mime-types mime-db send serve-static finalize-handler cookie cookie-signature path-to-
regexp accepts negotiator content-type content-disposition etag fresh range-parser vary on-
finished ee-first statuses http-errors inherits setprototypeof toidentifier depd destroy
encodeurl escape-html merge-descriptors methods utils-merge parseurl proxy-addr forwarded
ipaddr.js raw-body iconv-lite safer-buffer bytes type-is media-typer rxjs tslib zone.js
@angular/core @angular/common yargs yargs-parser cliui wrap-ansi string-width strip-ansi ansi-
regex emoji-regex glob minimatch brace-expansion balanced-match once wrappy
"""
)

DEB_PACKAGES = split_words(
    """
base-files base-passwd bash bsdutils coreutils dash debconf debian-archive-keyring debianutils
diffutils dpkg e2fsprogs findutils gcc-12-base gpgv grep gzip hostname init-system-helpers
libacl1 libapt-pkg6.0 libattr1 libaudit1 libblkid1 libbz2-1.0 libc-bin libc6 libcap-ng0 libcap2
libcom-err2 libcrypt1 libdb5.3 libdebconfclient0 libext2fs2 libffi8 libgcc-s1 libgcrypt20
libgmp10 libgnutls30 libgpg-error0 libhogweed6 libidn2-0 liblz4-1 liblzma5 libmd0 libmount1
libnettle8 libp11-kit0 libpam-modules libpam-runtime libpam0g libpcre2-8-0 libseccomp2
libselinux1 libsemanage2 libsepol2 libsmartcols1 libss2 libssl3 libstdc++6 libsystemd0
libtasn1-6 libtinfo6 libudev1 libunistring2 libuuid1 libxxhash0 libzstd1 login logsave mawk
mount ncurses-base ncurses-bin passwd perl-base sed sysvinit-utils tar tzdata usr-is-merged
util-linux zlib1g ca-certificates curl libcurl4 libpq5 openssl libsqlite3-0 libexpat1
libreadline8 readline-common netbase libkrb5-3 libgssapi-krb5-2 libldap-2.5-0 libsasl2-2
libnghttp2-14 libpsl5 librtmp1 libssh2-1 libbrotli1 libjpeg62-turbo libpng16-16
"""
)


# ----------------------------------------------------------------------------- small helpers


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hexstr(rng: random.Random, nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def lognormal(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, rng.lognormvariate(math.log(median), sigma))))


def version(rng: random.Random) -> str:
    return f"{rng.randrange(0, 9)}.{rng.randrange(0, 30)}.{rng.randrange(0, 20)}"


def ssh_public_key(rng: random.Random, comment: str) -> bytes:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + rng.randbytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}\n".encode()


def pem_block(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- shared pools


class Pools:
    """Everything that is expensive to make once per file: word-built identifiers and sentences,
    code/JS snippets, log lines, CSV rows and byte pools. Files sample from these, so generating
    hundreds of MB costs joins and slices rather than millions of random calls."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = random.Random(f"{seed}/pools")
        syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sa", "do", "fu", "gri", "bel", "tor", "quin"]
        made_up = ["".join(rng.choices(syll, k=rng.randint(2, 3))) for _ in range(600)]
        self.words = sorted(set(WORDS + made_up))
        self.idents = ["_".join(rng.choices(self.words, k=rng.randint(1, 3))) for _ in range(6000)]
        self.classes = [
            "".join(w.capitalize() for w in rng.choices(self.words, k=rng.randint(1, 3))) for _ in range(2000)
        ]
        self.sentences = [self._sentence(rng) for _ in range(4000)]
        self.strings = self._elf_strings(rng)
        self.code = self._code_pool(rng, 8 * MiB)
        self.noise = rng.randbytes(8 * MiB)
        self.py_snippets = [self._py_snippet(rng) for _ in range(3000)]
        self.js_snippets = [self._js_snippet(rng) for _ in range(3000)]
        self.js_min = [self._js_min(rng) for _ in range(4000)]
        self.log_msgs = [self._log_msg(rng) for _ in range(12000)]
        self.csv_rows = [self._csv_row(rng) for _ in range(12000)]

    # -- text
    def _sentence(self, rng: random.Random) -> str:
        s = " ".join(rng.choices(self.words, k=rng.randint(5, 14)))
        return s[0].upper() + s[1:] + "."

    def sentence(self, rng: random.Random) -> str:
        return rng.choice(self.sentences)

    def paragraph(self, rng: random.Random, n: int = 4) -> str:
        return " ".join(rng.choices(self.sentences, k=n))

    def text(self, rng: random.Random, size: int, width: int = 72) -> str:
        """Prose of about `size` chars, wrapped into lines (READMEs, changelogs, copyright files)."""
        out, n = [], 0
        while n < size:
            p = self.paragraph(rng, rng.randint(2, 6))
            lines = [p[i : i + width] for i in range(0, len(p), width)]
            out.append("\n".join(lines) + "\n\n")
            n += len(p) + len(lines) + 1
        return "".join(out)

    # -- ELF
    def _elf_strings(self, rng: random.Random) -> list[bytes]:
        out: list[bytes] = []
        for _ in range(20000):
            r = rng.random()
            a, b = rng.choice(self.idents), rng.choice(self.idents)
            if r < 0.35:
                out.append(f"_ZN{len(a)}{a}{len(b)}{b}Ev".encode())
            elif r < 0.5:
                out.append(f"{a}_{b}".encode())
            elif r < 0.6:
                out.append(f"GLIBC_2.{rng.randint(2, 38)}".encode())
            elif r < 0.75:
                out.append(f"%s: cannot {rng.choice(self.words)} '%s': %m ({a})".encode())
            elif r < 0.85:
                out.append(f"/usr/share/{a}/{b}.conf".encode())
            else:
                out.append(rng.choice(self.sentences).encode())
        return out

    def _code_pool(self, rng: random.Random, size: int) -> bytes:
        """Skewed byte 'instructions' (zero-heavy, a few frequent opcodes) drawn Zipf-like, so the
        result compresses like machine code (~1.5-2x) rather than like random bytes."""
        hot = [0x00, 0x48, 0x89, 0x8B, 0xE8, 0x0F, 0xFF, 0x83, 0xC3, 0x74, 0x75, 0x31]
        instrs = []
        for _ in range(4096):
            n = rng.randint(1, 7)
            instrs.append(bytes(rng.choice(hot) if rng.random() < 0.55 else rng.randrange(256) for _ in range(n)))
        cum, acc = [], 0.0
        for i in range(len(instrs)):
            acc += 1.0 / (i + 1)
            cum.append(acc)
        parts, n = [], 0
        while n < size:
            block = b"".join(rng.choices(instrs, cum_weights=cum, k=20000))
            parts.append(block)
            n += len(block)
        return b"".join(parts)[:size]

    def slices(self, rng: random.Random, pool: bytes, size: int, piece: int = 64 * KiB) -> bytes:
        """`size` bytes made of pieces of `pool` from random offsets (varied, never a whole copy)."""
        out, n = [], 0
        while n < size:
            k = min(piece, size - n)
            off = rng.randrange(0, len(pool) - k)
            out.append(pool[off : off + k])
            n += k
        return b"".join(out)

    def string_table(self, rng: random.Random, size: int, extra: list[bytes] | None = None) -> bytes:
        strings = []
        n = 0
        while n < size:
            s = rng.choice(self.strings)
            strings.append(s)
            n += len(s) + 1
        if extra:
            at = len(strings) // 2
            strings[at:at] = extra
        return b"\0".join(strings) + b"\0"

    # -- Python
    def _py_snippet(self, rng: random.Random) -> str:
        i = self.idents
        v = {
            "f": rng.choice(i), "g": rng.choice(i), "h": rng.choice(i), "a": rng.choice(i), "b": rng.choice(i),
            "c": rng.choice(i), "d": rng.choice(i), "x": rng.choice(i), "C": rng.choice(self.classes),
            "C2": rng.choice(self.classes), "X": rng.choice(i).upper(), "Y": rng.choice(i).upper(),
            "n": rng.randint(0, 4096), "n2": rng.randint(0, 64), "w": rng.choice(self.words),
            "S": rng.choice(self.sentences), "s": rng.choice(self.sentences).rstrip(".").lower(),
        }  # fmt: skip
        return rng.choice(PY_TEMPLATES).format(**v)

    def python_source(self, rng: random.Random, size: int, module: str) -> str:
        head = f'"""{self.sentence(rng)}\n\n{self.paragraph(rng, 3)}\n"""\n\nimport logging\nimport os\n'
        head += "".join(f"from .{rng.choice(self.idents)} import {rng.choice(self.classes)}\n" for _ in range(3))
        head += "\nlogger = logging.getLogger(__name__)\n\n"
        parts = [head]
        n = len(head)
        while n < size:
            s = rng.choice(self.py_snippets)
            if rng.random() < 0.03:
                s = near_miss_python(rng) + s
            parts.append(s)
            n += len(s)
        return "".join(parts)

    # -- JavaScript
    def _js_snippet(self, rng: random.Random) -> str:
        i = self.idents
        camel = [self._camel(rng.choice(i)) for _ in range(8)]
        v = {
            "f": camel[0], "g": camel[1], "a": camel[2], "b": camel[3], "c": camel[4], "d": camel[5],
            "p": camel[6], "v": camel[7], "C": rng.choice(self.classes), "C2": rng.choice(self.classes),
            "m": rng.choice(NODE_PACKAGES), "n": rng.randint(0, 4096), "S": rng.choice(self.sentences),
        }  # fmt: skip
        return rng.choice(JS_TEMPLATES).format(**v)

    def _js_min(self, rng: random.Random) -> str:
        short = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$"
        s = [rng.choice(short) + (rng.choice(short) if rng.random() < 0.5 else "") for _ in range(6)]
        v = {
            "f": s[0], "a": s[1], "b": s[2], "c": s[3], "d": s[4], "o": s[5],
            "p": self._camel(rng.choice(self.idents)), "p2": rng.choice(self.words), "p3": rng.choice(self.words),
            "w": rng.choice(self.words), "n": rng.randint(0, 9999), "n2": rng.randint(0, 99), "n3": rng.randint(0, 9),
            "s": rng.choice(self.sentences)[:40].replace('"', ""),
        }  # fmt: skip
        return rng.choice(JS_MIN_TEMPLATES).format(**v)

    @staticmethod
    def _camel(ident: str) -> str:
        head, *rest = ident.split("_")
        return head + "".join(w.capitalize() for w in rest)

    def js_source(self, rng: random.Random, size: int) -> str:
        parts = ['"use strict";\n\n']
        n = 0
        while n < size:
            s = rng.choice(self.js_snippets)
            if rng.random() < 0.02:
                s = "const config = {\n  API_KEY: process.env.API_KEY,\n  region: process.env.REGION,\n};\n\n" + s
            parts.append(s)
            n += len(s)
        return "".join(parts)

    def js_bundle_chunks(self, rng: random.Random) -> Iterator[bytes]:
        """A minified bundle in ~64 KiB chunks; most chunks continue the same line, so lines run
        to hundreds of KB as in real webpack output."""
        yield b"/*! For license information please see LICENSES.txt */\n!function(){"
        while True:
            chunk = "".join(rng.choices(self.js_min, k=900))
            if rng.random() < 0.1:
                chunk += "\n"
            yield chunk.encode()

    # -- logs and CSV
    def _log_msg(self, rng: random.Random) -> str:
        comp = rng.choice(["api", "worker", "scheduler", "billing", "auth-proxy", "cache", "db", "mailer", "search"])
        lvl = rng.choices(["INFO", "DEBUG", "WARN", "ERROR"], weights=[60, 25, 10, 5])[0]
        word, cls = rng.choice(self.words), rng.choice(self.classes)
        r = rng.random()
        if r < 0.3:
            method = rng.choice(["GET", "GET", "POST", "PUT", "DELETE"])
            path = f"/api/v{rng.randint(1, 3)}/{word}s/{uuid4(rng)}"
            return (
                f'{lvl} [{comp}] {ip(rng)} "{method} {path} HTTP/1.1" {rng.choice([200, 200, 201, 204, 304, 404, 500])} '
                f"{rng.randint(80, 90000)} rt={rng.randint(1, 2500)}ms req_id={uuid4(rng)}\n"
            )
        if r < 0.45:
            return f"{lvl} [{comp}] trace_id={hexstr(rng, 16)} span_id={hexstr(rng, 8)} parent={hexstr(rng, 8)} duration={rng.randint(1, 900)}ms\n"
        if r < 0.55:
            return f"{lvl} [{comp}] {word} {uuid4(rng)} state={rng.choice(['pending', 'paid', 'shipped', 'failed'])} amount={rng.randint(100, 99999)} currency=EUR\n"
        if r < 0.62:
            return f"{lvl} [{comp}] layer digest sha256:{hexstr(rng, 32)} verified ({rng.randint(1, 900)} MB)\n"
        if r < 0.68:
            return (
                f"{lvl} [{comp}] deployed commit {hexstr(rng, 20)} to {rng.choice(['prod', 'staging', 'eu-west-1'])}\n"
            )
        if r < 0.76:
            return f"{lvl} [{comp}] slow query ({rng.randint(200, 9000)} ms): SELECT * FROM {word}s WHERE id = '{uuid4(rng)}'\n"
        if r < 0.82:
            return f"{lvl} [{comp}] user {uuid4(rng)} signed in from {ip(rng)} (session {hexstr(rng, 8)})\n"
        if r < 0.88:
            return f"\tat com.example.{word}.{cls}.{self._camel(rng.choice(self.idents))}({cls}.java:{rng.randint(10, 2000)})\n"
        return f"{lvl} [{comp}] {rng.choice(self.sentences)}\n"

    def _csv_row(self, rng: random.Random) -> str:
        ua = rng.choice(
            [
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
                "okhttp/4.12.0",
                "python-requests/2.31.0",
            ]
        )
        return (
            f"{uuid4(rng)},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z,{uuid4(rng)},{hexstr(rng, 8)},{ip(rng)},"
            f"{rng.choice(['DE', 'FR', 'US', 'NL', 'BR', 'JP'])},{rng.randint(0, 500000)},EUR,"
            f"SKU-{rng.randint(10000, 99999)},{rng.choice(['ok', 'refunded', 'pending'])},{hexstr(rng, 32)},"
            f'"{ua}"\n'
        )


def near_miss_python(rng: random.Random) -> str:
    """Lines shaped like secrets that a good scanner must leave alone (the generic rule's own
    negative examples, with fresh random values)."""
    return rng.choice(
        [
            'password = os.environ["DB_PASSWORD"]\n',
            'DB_PASSWORD = os.environ.get("DB_PASSWORD")\n',
            "api_key = get_key()\n",
            f'api_key = "{uuid4(rng)}"\n',
            f'token = "{hexstr(rng, 32)}"\n',
            f'REQUEST_ID = "{uuid4(rng)}"\n',
            f'CHECKSUM = "sha256:{hexstr(rng, 32)}"\n',
            'PASSWORD_FILE = "/run/secrets/db_password"\n',
        ]
    )


PY_TEMPLATES = [
    'def {f}({a}, {b}=None):\n    """{S}"""\n    if {a} is None:\n        raise ValueError("{s}")\n'
    "    {c} = {b} or {{}}\n    for {d} in {a}:\n        {c}[{d}] = {g}({d}, {n})\n    return {c}\n\n\n",
    'class {C}({C2}):\n    """{S}"""\n\n    {x} = {n}\n\n    def __init__(self, {a}, {b}={n2}):\n'
    "        super().__init__()\n        self.{a} = {a}\n        self._{b} = {b}\n\n"
    '    def {f}(self) -> "{C}":\n        return self.{a}.{g}(self._{b})\n\n'
    '    def __repr__(self) -> str:\n        return f"{C}({{self.{a}!r}})"\n\n\n',
    '{X} = {n}\n{Y} = "{w}"\n',
    'def {f}(self, {a}: int, *, {b}: str = "{w}") -> bool:\n    # {s}\n    try:\n        {c} = self._{g}[{a}]\n'
    '    except KeyError:\n        logger.debug("{s} %s", {a})\n        return False\n    return {c}.{h}({b})\n\n\n',
    "@property\ndef {f}(self):\n    return self._{a}\n\n\n",
    "if {a} > {n}:\n    {b} = [{c} for {c} in {d} if {c}.{f}()]\nelse:\n    {b} = []\n",
    "async def {f}({a}, {b}):\n    async with {a}.{g}() as {c}:\n        await {c}.{h}({b}, timeout={n2})\n\n\n",
]

JS_TEMPLATES = [
    "function {f}({a}, {b}) {{\n  if (!{a}) {{\n    return null;\n  }}\n  const {c} = {a}.{p} || {b};\n"
    "  return {c}.map(({d}) => {d} * {n});\n}}\n\n",
    "module.exports.{f} = {f};\n",
    'const {v} = require("{m}");\n',
    "class {C} extends {C2} {{\n  constructor({a}) {{\n    super();\n    this.{p} = {a};\n  }}\n\n"
    "  {f}() {{\n    return this.{p}.{g}({n});\n  }}\n}}\n\n",
    "/**\n * {S}\n * @param {{string}} {a}\n * @returns {{boolean}}\n */\n",
    "{C}.prototype.{f} = function ({a}) {{\n  this._{p} = {a};\n  return this;\n}};\n\n",
    "exports.{f} = async function {f}({a}) {{\n  const {b} = await {a}.{g}();\n  return {b}.{p};\n}};\n\n",
]

JS_MIN_TEMPLATES = [
    "function {f}({a},{b}){{if(!{a})return null;var {c}={a}.{p}||{b};return {c}.map(function({d}){{return {d}*{n}}})}}",
    'var {o}={{{p}:"{w}",{p2}:{n},{p3}:[{n},{n2},{n3}]}};',
    "{o}.prototype.{p}=function({a}){{this._{p2}={a};return this}};",
    "case {n}:return {a}.{p}({b});",
    '"string"==typeof {a}&&({b}={a}.split("{w}"));',
    "for(var {a}=0;{a}<{b}.length;{a}++){c}.push({b}[{a}]);",
    '{o}.{p}=function({a},{b}){{return new Error("{s}: "+{a}+" "+{b})}};',
    "{a}=Object.assign({{}},{b},{{{p}:!0,{p2}:{n2}}});",
]


# ----------------------------------------------------------------------------- file specs


@dataclass
class Streamed:
    """A file too big to hold: its exact size and its content in chunks."""

    size: int
    chunks: Iterator[bytes]


Content = bytes | Streamed


@dataclass
class FileSpec:
    """One tar member of a layer; `produce` runs only when the member is written (streaming)."""

    path: str
    produce: Callable[[], Content]
    mode: int = 0o644
    kind: str = "other"  # content category, for the composition summary
    whiteout: bool = False


@dataclass
class LayerPlan:
    created_by: str
    files: list[FileSpec]


@dataclass
class Planted:
    value: str
    kind: str
    where: str

    def record(self) -> dict[str, str]:
        return {"sha256": sha256_hex(self.value.encode()), "kind": self.kind, "where": self.where}


@dataclass
class LayerResult:
    created_by: str
    blob: Path
    diff_id: str
    digest: str
    size: int
    uncompressed_size: int
    files: int
    seconds: float


@dataclass
class Build:
    """State shared by the layer planners: the target, what has been written, what was planted."""

    pools: Pools
    seed: int
    target: int
    layer: int = 0  # index of the layer being planned
    written: int = 0  # uncompressed bytes of the layers written so far
    planted: list[Planted] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    gh_token: str = ""  # the ARG value, which docker also records in the next RUN line
    big: list[tuple[str, int]] = field(default_factory=list)  # (kind, size) of the big files

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}/{name}")

    def budget(self, share: str, fraction: float = 1.0) -> int:
        return int(self.target * SHARES[share] * fraction)

    def plant(self, value: str, kind: str, where: str) -> str:
        """Record a planted secret; `where` is prefixed with the current layer unless it names one."""
        self.planted.append(
            Planted(value, kind, where if where.startswith("config") else f"layer {self.layer}: {where}")
        )
        return value

    def secret_seed(self, n: int) -> int:
        return self.seed * 1000 + n


class Files:
    """Collects the members of one layer.

    `add` stores small content as is. `gen` defers generation to the moment the member is
    written, with a random.Random seeded from (seed, key), the key being the path unless given:
    content does not depend on generation order, and only one big file is in memory at a time."""

    def __init__(self, build: Build, kind: str) -> None:
        self.build, self.kind, self.specs = build, kind, list[FileSpec]()

    def add(self, path: str, data: bytes | str, mode: int = 0o644, kind: str | None = None) -> None:
        blob = data.encode() if isinstance(data, str) else data
        self.specs.append(FileSpec(path, lambda: blob, mode, kind or self.kind))

    def gen(
        self,
        path: str,
        make: Callable[[random.Random], Content],
        mode: int = 0o644,
        kind: str | None = None,
        key: str = "",
    ) -> None:
        rng_name = "file/" + (key or path)
        build = self.build
        self.specs.append(FileSpec(path, lambda: make(build.rng(rng_name)), mode, kind or self.kind))

    def whiteout(self, path: str) -> None:
        self.specs.append(FileSpec(path, lambda: b"", whiteout=True))

    def __contains__(self, path: str) -> bool:
        return any(f.path == path for f in self.specs)

    def __iadd__(self, other: Files) -> Files:
        self.specs += other.specs
        return self


def big_file(
    blocks: Callable[[Pools, random.Random], Iterator[bytes]],
    pools: Pools,
    size: int,
    plants: list[tuple[int, bytes]],
    text: bool,
) -> Callable[[random.Random], Content]:
    """A streamed file of exactly `size` bytes from a block generator, with plants (see planted_stream)."""
    return lambda rng: Streamed(size, planted_stream(size, blocks(pools, rng), plants, text))


# ----------------------------------------------------------------------------- ELF


def elf_bytes(pools: Pools, rng: random.Random, size: int, shared: bool, extra: list[bytes] | None = None) -> bytes:
    """An ELF64 x86-64 header, then skewed 'code', a NUL-separated string table (where `extra`
    strings are placed), zero padding and high-entropy data (like .eh_frame/.debug sections)."""
    fields = (3 if shared else 2, 0x3E, 1, 0x1000 + rng.randrange(1 << 16), 64, size - 4096, 0, 64, 56, 13, 64, 30, 29)
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", *fields)
    code = pools.slices(rng, pools.code, int(size * 0.6))
    strtab = pools.string_table(rng, int(size * 0.22), extra)
    pad = bytes(int(size * 0.06))
    rest = max(0, size - len(header) - len(code) - len(strtab) - len(pad))
    out = header + code + strtab + pad + pools.slices(rng, pools.noise, rest)
    return out[:size] if not extra else out  # never cut off a planted string


def plan_binaries(build: Build, tag: str, budget: int) -> Files:
    """Executables in bin dirs and shared libraries in the multiarch lib dir, lognormal sizes."""
    rng, idents = build.rng(f"plan/{tag}"), build.pools.idents
    names = list(BIN_NAMES) if tag == "base" else []
    libs = list(LIB_NAMES) if tag == "base" else []
    files = Files(build, "binaries")
    total = 0
    while total < budget:
        size = min(lognormal(rng, 56 * KiB, 1.4, 6 * KiB, 7 * MiB), budget - total + 8 * KiB)
        if rng.random() < 0.45:
            stem = libs.pop(0) if libs else idents[rng.randrange(len(idents))].replace("_", "-")
            path, shared = f"usr/lib/x86_64-linux-gnu/lib{stem}.so.{rng.randint(0, 9)}", True
        else:
            stem = names.pop(0) if names else idents[rng.randrange(len(idents))].replace("_", "-")
            path, shared = f"{rng.choice(['usr/bin', 'usr/bin', 'usr/sbin', 'usr/libexec/' + tag])}/{stem}", False
        if path in files:
            continue
        files.gen(path, partial(elf_bytes, build.pools, size=size, shared=shared), mode=0o755)
        total += size
    return files


# ----------------------------------------------------------------------------- compressed files


def deterministic_gzip(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def zip_add(z: zipfile.ZipFile, name: str, data: bytes, stored: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    z.writestr(info, data, compresslevel=None if stored else 6)


def changelog_gz(pools: Pools, rng: random.Random, pkg: str, target: int) -> bytes:
    """A Debian changelog.Debian.gz of about `target` compressed bytes."""
    entries = []
    n = 0
    while n < target * 4:  # prose compresses about 4:1 at level 9
        entry = (
            f"{pkg} ({version(rng)}-{rng.randint(1, 9)}) unstable; urgency=medium\n\n"
            + "".join(f"  * {pools.sentence(rng)}\n" for _ in range(rng.randint(1, 6)))
            + f"\n -- {rng.choice(pools.classes)} <{rng.choice(pools.words)}@debian.org>  Mon, 0{rng.randint(1, 9)} Jan 2024 10:00:00 +0100\n\n"
        )
        entries.append(entry)
        n += len(entry)
    return deterministic_gzip("".join(entries).encode(), 9)


def wheel_bytes(build: Build, rng: random.Random, name: str, target: int, extra: tuple[str, str] | None) -> bytes:
    """A .whl (zip) of generated modules, about `target` bytes; `extra` is (member, text) to include."""
    buf = io.BytesIO()
    ver = version(rng)
    with zipfile.ZipFile(buf, "w") as z:
        if extra:
            zip_add(z, extra[0], extra[1].encode())
        i = 0
        while buf.tell() < target:
            mod = rng.choice(build.pools.idents)
            src = build.pools.python_source(rng, lognormal(rng, 12 * KiB, 1.0, 1 * KiB, 200 * KiB), mod)
            zip_add(z, f"{name}/{mod}_{i}.py", src.encode())
            i += 1
        zip_add(
            z, f"{name}-{ver}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n".encode()
        )
        zip_add(
            z,
            f"{name}-{ver}.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    return buf.getvalue()


def class_file(pools: Pools, rng: random.Random, cls: str) -> bytes:
    body = pools.slices(rng, pools.code, lognormal(rng, 3 * KiB, 1.0, 400, 60 * KiB), piece=2 * KiB)
    consts = b"\x01".join(rng.choices(pools.strings, k=rng.randint(10, 80)))
    return b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + cls.encode() + b"\x00" + consts + body


def jar_bytes(
    build: Build,
    rng: random.Random,
    group: str,
    target: int,
    nested: dict[str, bytes] | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A jar of .class files (deflated) of about `target` bytes; `nested` jars are STORED under
    BOOT-INF/lib/ as in a Spring Boot fat jar."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        zip_add(
            z,
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\nCreated-By: Maven JAR Plugin 3.3.0\nBuild-Jdk-Spec: 17\n",
        )
        for name, data in sorted((extra or {}).items()):
            zip_add(z, name, data)
        for name, data in sorted((nested or {}).items()):
            zip_add(z, f"BOOT-INF/lib/{name}", data, stored=True)
        seen: set[str] = set()
        while buf.tell() < target:
            cls = rng.choice(build.pools.classes)
            name = f"{group.replace('.', '/')}/{rng.choice(build.pools.words)}/{cls}"
            data = class_file(build.pools, rng, cls)
            member, n = f"{name}.class", 0
            while member in seen:  # a name drawn twice: call it an inner class, Name$1.class
                n += 1
                member = f"{name}${n}.class"
            seen.add(member)
            zip_add(z, member, data)
    return buf.getvalue()


def npm_tgz(build: Build, rng: random.Random, name: str, target: int, extra: dict[str, bytes] | None = None) -> bytes:
    """An `npm pack` tarball (package/...) of about `target` compressed bytes."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tf,
    ):
        files = {
            "package/package.json": json.dumps(
                {"name": name, "version": version(rng), "main": "index.js"}, indent=2
            ).encode()
        }
        files.update(extra or {})
        for path, data in sorted(files.items()):
            tf.addfile(tarinfo(path, len(data)), io.BytesIO(data))
        i = 0
        while buf.tell() < target:
            data = build.pools.js_source(rng, lognormal(rng, 8 * KiB, 1.0, 500, 100 * KiB)).encode()
            tf.addfile(tarinfo(f"package/lib/{rng.choice(build.pools.idents)}_{i}.js", len(data)), io.BytesIO(data))
            i += 1
    return buf.getvalue()


# ----------------------------------------------------------------------------- big files


def planted_stream(size: int, blocks: Iterator[bytes], plants: list[tuple[int, bytes]], text: bool) -> Iterator[bytes]:
    """Exactly `size` bytes from `blocks`, with each plant starting exactly at its offset.

    In text mode plants are whole lines: the byte before a plant becomes a newline and the block
    after it resumes at its next line; the file ends with a newline. Plants must not overlap.
    """
    pending = sorted(plants)
    pos = 0
    for block in blocks:
        while block:
            if pending and pending[0][0] < pos + len(block):
                off, data = pending.pop(0)
                cut = off - pos
                if cut < 0:
                    raise AssertionError(f"plant at {off} overlaps the previous one")
                head = block[:cut]
                if head:
                    yield head[:-1] + b"\n" if text else head
                yield data
                pos = off + len(data)
                block = block[cut:]
                if text:
                    block = block[block.find(b"\n") + 1 :] if b"\n" in block else b""
                continue
            if pos + len(block) >= size:
                tail = block[: size - pos]
                yield tail[:-1] + b"\n" if text else tail
                return
            yield block
            pos += len(block)
            break
    raise AssertionError("block source ended early")


def log_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    """~1 MiB blocks of log lines with ascending timestamps (lines sampled from the pool)."""
    t = 1_717_200_000.0
    while True:
        msgs = rng.choices(pools.log_msgs, k=7000)
        lines = []
        for i, m in enumerate(msgs):
            if i % 100 == 0:
                tm = time.gmtime(t)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
                t += rng.random() * 4
            lines.append(f"{stamp}.{i % 1000:03d}Z {m}")
        yield "".join(lines).encode()


def csv_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    yield b"event_id,occurred_at,user_id,session_id,ip,country,amount_cents,currency,sku,status,payload_sha256,user_agent\n"
    while True:
        yield "".join(rng.choices(pools.csv_rows, k=4000)).encode()


def binary_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    """Records of a columnar-ish data file: a header naming columns, then float-like noise,
    code-like skewed bytes and zero runs."""
    yield b"FEAT\x02\x00\x00\x00" + struct.pack("<Q", 0)
    n = 0
    while True:
        cols = b",".join(w.encode() for w in rng.choices(pools.words, k=8))
        header = b"REC\x00" + struct.pack("<QI", n, len(cols)) + cols
        yield (
            header
            + pools.slices(rng, pools.noise, 640 * KiB)
            + pools.slices(rng, pools.code, 256 * KiB)
            + bytes(128 * KiB)
        )
        n += 1


# ----------------------------------------------------------------------------- tar/gzip writing


def tarinfo(name: str, size: int = 0, mode: int = 0o644, type_: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.type = size, mode, type_
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = MTIME, 0, 0, "root", "root"
    return ti


class ChunkReader:
    """A read(n)-able view of an iterator of byte chunks (what tarfile.addfile copies from)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks: Iterator[bytes] = (c for c in chunks if c)
        self._cur, self._pos = b"", 0

    def read(self, n: int) -> bytes:
        out = []
        while n > 0:
            if self._pos >= len(self._cur):
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._cur, self._pos = nxt, 0
            take = self._cur[self._pos : self._pos + n]
            self._pos += len(take)
            n -= len(take)
            out.append(take)
        return b"".join(out)


class HashingWriter:
    """Counts and sha256-hashes what passes through to `sink`."""

    def __init__(self, sink: Any) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def gzip_writer(sink: HashingWriter) -> BinaryIO:
    """gzip without mtime or file name: igzip (ISA-L) when installed, else zlib level 6."""
    if _igzip is not None:
        return _igzip.IGzipFile(filename="", mode="wb", fileobj=sink, compresslevel=2, mtime=0)  # type: ignore[no-any-return]
    return gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=6, mtime=0)  # type: ignore[arg-type,return-value]


def parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def write_layer(plan: LayerPlan, blob_path: Path, build: Build) -> LayerResult:
    """Stream one layer: tar (sorted members, parent dirs first) -> sha256 -> gzip -> sha256 -> file."""
    t0 = time.perf_counter()
    files = sorted(plan.files, key=lambda f: f.path)
    if len({f.path for f in files}) != len(files):
        raise AssertionError(f"duplicate paths in layer {plan.created_by!r}")
    with open(blob_path, "wb") as raw:
        blob = HashingWriter(raw)
        gz = gzip_writer(blob)
        tar_stream = HashingWriter(gz)
        with tarfile.open(
            fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT, bufsize=64 * KiB, copybufsize=MiB
        ) as tf:  # type: ignore[call-overload]
            dirs: set[str] = set()
            for spec in files:
                for d in parents(spec.path):
                    if d not in dirs:
                        dirs.add(d)
                        tf.addfile(tarinfo(d + "/", mode=0o755, type_=tarfile.DIRTYPE))
                if spec.whiteout:
                    head, _, base = spec.path.rpartition("/")
                    tf.addfile(tarinfo(f"{head}/.wh.{base}" if head else f".wh.{base}"))
                    continue
                content = spec.produce()
                if isinstance(content, Streamed):
                    tf.addfile(tarinfo(spec.path, content.size, spec.mode), ChunkReader(content.chunks))
                    size = content.size
                else:
                    tf.addfile(tarinfo(spec.path, len(content), spec.mode), io.BytesIO(content))
                    size = len(content)
                build.by_kind[spec.kind] = build.by_kind.get(spec.kind, 0) + size
        gz.close()
    build.written += tar_stream.size
    return LayerResult(
        created_by=plan.created_by,
        blob=blob_path,
        diff_id=tar_stream.digest(),
        digest=blob.digest(),
        size=blob.size,
        uncompressed_size=tar_stream.size,
        files=len(files),
        seconds=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------- secrets


def safe_password(build: Build, n: int) -> str:
    """secretgen.password() without '&': the generic rule's capture stops at '&' (shell, URLs)."""
    k = 0
    while "&" in (pw := gen.password(build.secret_seed(n) + 7919 * k)):
        k += 1
    return pw


def ec_private_key(build: Build) -> tuple[str, str]:
    """A real P-256 key derived from the seed (openssl's keygen cannot be seeded): PKCS#8 PEM of
    the private key, and the PEM of its public key (a near-miss placed elsewhere)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(build.rng("secret/ec-key").randbytes(32)) % (n - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv.decode(), pub.decode()


# ----------------------------------------------------------------------------- layer planners
# Each planner runs after the previous layers were written (build.written is current), so the
# big-data layers can top the image up to the requested size.

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\n"
)
WHEEL = "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def layer_base(build: Build) -> LayerPlan:
    """A Debian-like root: binaries, libraries, /etc, certificates (near-misses), docs, dpkg data."""
    pools, rng = build.pools, build.rng("plan/base-extra")
    files = plan_binaries(build, "base", build.budget("binaries", 0.6))
    certs = []
    for i in range(140):
        certs.append(pem_block("CERTIFICATE", rng.randbytes(rng.randint(700, 1400))))
        files.add(
            f"usr/share/ca-certificates/mozilla/{rng.choice(pools.classes)}_Root_CA_{i}.crt", certs[-1], kind="os"
        )
    files.add("etc/ssl/certs/ca-certificates.crt", "".join(certs), kind="os")
    files.add("etc/ssh/ssh_host_ed25519_key.pub", ssh_public_key(rng, "root@buildkitsandbox"), kind="os")
    files.add("etc/os-release", OS_RELEASE, kind="os")
    files.add("etc/debian_version", "12.5\n", kind="os")
    files.add("etc/hostname", "buildkitsandbox\n", kind="os")
    files.add("etc/passwd", PASSWD, kind="os")
    files.add("etc/group", "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\napp:x:1000:\n", kind="os")
    files += debian_docs(build, DEB_PACKAGES[: len(DEB_PACKAGES) * 2 // 3], "base")
    return LayerPlan("/bin/sh -c #(nop) ADD file:" + hexstr(rng, 32) + " in / ", files.specs)


def debian_docs(build: Build, packages: list[str], tag: str) -> Files:
    """copyright files, changelog.Debian.gz (the changelog part of the compressed share), dpkg data."""
    pools, rng = build.pools, build.rng(f"plan/docs/{tag}")
    per_pkg = build.budget("compressed", COMPRESSED_SPLIT["changelog"]) // len(DEB_PACKAGES)
    files = Files(build, "os")
    status = []
    for pkg in packages:
        target = lognormal(rng, per_pkg, 0.8, 512, per_pkg * 8)
        doc = f"usr/share/doc/{pkg}"
        files.gen(f"{doc}/changelog.Debian.gz", partial(changelog_gz, pools, pkg=pkg, target=target), kind="compressed", key=f"doc/{pkg}/cl")  # fmt: skip
        files.gen(f"{doc}/copyright", lambda r: pools.text(r, r.randint(1000, 20000)).encode(), key=f"doc/{pkg}/cr")
        files.gen(f"var/lib/dpkg/info/{pkg}.md5sums", partial(md5sums, pools, pkg=pkg), key=f"doc/{pkg}/md5")
        status.append(
            f"Package: {pkg}\nStatus: install ok installed\nPriority: optional\nInstalled-Size: {rng.randint(20, 9000)}\n"
            f"Maintainer: Debian Developers <debian-devel@lists.debian.org>\nArchitecture: amd64\nVersion: {version(rng)}-1\n"
            f"Description: {pools.sentence(rng)}\n {pools.paragraph(rng, 2)}\n\n"
        )
    files.add("var/lib/dpkg/status" if tag == "base" else f"var/lib/dpkg/status-{tag}", "".join(status))
    return files


def md5sums(pools: Pools, rng: random.Random, pkg: str) -> bytes:
    """dpkg's md5sums list: hex digests, near-misses for entropy-based detectors."""
    return "".join(f"{hexstr(rng, 16)}  usr/share/{pkg}/{w}\n" for w in rng.sample(pools.words, 20)).encode()


def layer_apt(build: Build) -> LayerPlan:
    """apt-get install: more libraries and tools. The RUN line shows the ARG value, as docker records it."""
    files = plan_binaries(build, "apt", build.budget("binaries", 0.4))
    files += debian_docs(build, DEB_PACKAGES[len(DEB_PACKAGES) * 2 // 3 :], "apt")
    return LayerPlan(
        f"|1 GH_TOKEN={build.gh_token} /bin/sh -c apt-get update && apt-get install -y --no-install-recommends"
        " ca-certificates curl libpq5 && rm -rf /var/lib/apt/lists/*",
        files.specs,
    )


def layer_python(build: Build) -> LayerPlan:
    """site-packages (sources, .pyc, dist-info), the app's settings (a SECRET_KEY), the pip wheel cache."""
    pools, rng = build.pools, build.rng("plan/python")
    budget = build.budget("python")
    files = Files(build, "python")
    total = 0
    names = list(PY_PACKAGES)
    used = {"shopapp"}
    while total < budget:
        pkg = names.pop(0) if names else rng.choice(pools.idents) + str(rng.randint(0, 99))
        if pkg in used:
            continue
        used.add(pkg)
        ver = version(rng)
        pkg_target = min(lognormal(rng, 500 * KiB, 1.0, 20 * KiB, 12 * MiB), budget - total + 4 * KiB)
        pkg_total = 0
        modules: list[str] = ["__init__"]
        while pkg_total < pkg_target:
            mod = rng.choice(["", "", f"{rng.choice(pools.idents)}/"]) + rng.choice(pools.idents)
            if mod in modules:
                continue
            modules.append(mod)
            size = lognormal(rng, 9 * KiB, 1.1, 300, 400 * KiB)
            head, _, stem = mod.rpartition("/")
            pycache = f"{SITE}/{pkg}/{head + '/' if head else ''}__pycache__"
            files.gen(f"{SITE}/{pkg}/{mod}.py", partial(python_file, pools, size=size, module=mod))
            files.gen(f"{pycache}/{stem}.cpython-311.pyc", partial(pyc_bytes, pools, size=size))
            pkg_total += int(size * 2.1)  # the .py and its .pyc
        files.add(f"{SITE}/{pkg}/__init__.py", f'"""{pkg}."""\n\n__version__ = "{ver}"\n')
        dist = f"{SITE}/{pkg}-{ver}.dist-info"
        files.gen(f"{dist}/METADATA", partial(metadata, pools, pkg=pkg, ver=ver), key=dist + "/M")
        files.gen(f"{dist}/RECORD", partial(record, pkg=pkg, modules=tuple(modules)), key=dist + "/R")
        files.add(f"{dist}/WHEEL", WHEEL)
        files.add(f"{dist}/INSTALLER", "pip\n")
        files.add(f"{dist}/top_level.txt", f"{pkg}\n")
        total += pkg_total
    settings = f"{SITE}/shopapp/settings.py"
    secret_key = build.plant(safe_password(build, 15), "generic.secret-assignment", f"/{settings} (SECRET_KEY = ...)")
    files.add(
        settings,
        '"""Django settings for shopapp."""\n\nimport os\n\nDEBUG = False\nALLOWED_HOSTS = ["shop.example.com"]\n'
        f'SECRET_KEY = "{secret_key}"\n'
        'DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "PASSWORD": os.environ["DB_PASSWORD"]}}\n',
    )
    files += pip_cache(build)
    return LayerPlan("RUN /bin/sh -c pip install -r requirements.txt # buildkit", files.specs)


def python_file(pools: Pools, rng: random.Random, size: int, module: str) -> bytes:
    return pools.python_source(rng, size, module).encode()


def pyc_bytes(pools: Pools, rng: random.Random, size: int) -> bytes:
    body = pools.slices(rng, pools.code, int(size * 0.45), piece=4 * KiB)
    names = b"".join(b"\xda" + bytes([len(s) % 256]) + s for s in rng.choices(pools.strings, k=max(1, size // 60)))
    return b"\xa7\x0d\x0d\x0a" + bytes(4) + struct.pack("<II", MTIME, size) + b"\xe3" + body + names


def metadata(pools: Pools, rng: random.Random, pkg: str, ver: str) -> bytes:
    reqs = "".join(f"Requires-Dist: {rng.choice(PY_PACKAGES)}>={version(rng)}\n" for _ in range(rng.randint(0, 6)))
    return (
        f"Metadata-Version: 2.1\nName: {pkg}\nVersion: {ver}\nSummary: {pools.sentence(rng)}\n"
        f"Home-page: https://github.com/{rng.choice(pools.words)}/{pkg}\nLicense: MIT\n{reqs}\n"
        + pools.text(rng, rng.randint(1000, 12000))
    ).encode()


def record(rng: random.Random, pkg: str, modules: tuple[str, ...]) -> bytes:
    """RECORD lines carry urlsafe-base64 sha256 digests: high-entropy near-misses."""
    lines = []
    for m in modules:
        digest = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
        lines.append(f"{pkg}/{m}.py,sha256={digest},{rng.randint(200, 90000)}\n")
    return "".join(lines).encode()


def pip_cache(build: Build) -> Files:
    """Wheels in pip's cache; the first carries a GitLab token in a module."""
    rng = build.rng("plan/wheels")
    budget = build.budget("compressed", COMPRESSED_SPLIT["wheels"])
    files = Files(build, "compressed")
    glpat = gen.gitlab_pat(build.secret_seed(9))
    total, i = 0, 0
    while total < budget:
        target = min(lognormal(rng, 600 * KiB, 0.9, 40 * KiB, 6 * MiB), budget - total + KiB)
        name = rng.choice(build.pools.idents) + str(i)
        d = hexstr(rng, 28)
        path = f"root/.cache/pip/wheels/{d[:2]}/{d[2:4]}/{d[4:]}/{name}-{version(rng)}-py3-none-any.whl"
        extra = None
        if i == 0:
            build.plant(glpat, "gitlab.personal-access-token", f"/{path}!{name}/_ci.py")
            extra = (f"{name}/_ci.py", f'"""CI helper."""\n\nGITLAB_TOKEN = "{glpat}"\nPROJECT = "{name}"\n')
        files.gen(path, partial(wheel_bytes, build, name=name, target=target, extra=extra))
        total += target
        i += 1
    return files


def layer_env_file(build: Build) -> LayerPlan:
    """A .env with an AWS key pair; a later layer deletes it (it stays in this layer's blob)."""
    key_id = gen.aws_access_key_id(build.secret_seed(1))
    secret = gen.aws_secret_access_key(build.secret_seed(2))
    build.plant(key_id, "aws.access-key-id", "/app/.env line 1 (deleted by a later layer: RUN rm /app/.env)")
    build.plant(secret, "aws.secret-access-key", "/app/.env line 2 (deleted by a later layer: RUN rm /app/.env)")
    files = Files(build, "app")
    files.add("app/.env", f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_REGION=eu-west-1\n")
    files.add("app/README.md", "# shop\n\nCopy .env.example to .env and fill in your values.\n")
    return LayerPlan("COPY .env /app/.env # buildkit", files.specs)


def layer_node(build: Build) -> LayerPlan:
    """node_modules (package.json, small .js, minified bundles), package-lock.json (integrity
    hashes), the app's own bundle (a Slack webhook in a long line) and vendored .tgz tarballs."""
    pools, rng = build.pools, build.rng("plan/node")
    budget = build.budget("node")
    files = Files(build, "node")
    bundle_size = max(MiB, budget // 40)
    webhook = gen.slack_webhook(build.secret_seed(11))
    bundle = f"app/public/static/js/main.{hexstr(rng, 4)}.js"
    at = bundle_size // 2
    stmt = f';var Hk="{webhook}";'
    build.plant(webhook, "slack.webhook-url", f"/{bundle} byte {at + stmt.index(webhook)} (minified, one long line)")
    files.gen(bundle, big_file(js_bundle_blocks, pools, bundle_size, [(at, stmt.encode())], text=False))
    lock: dict[str, Any] = {}
    total = bundle_size
    names = list(NODE_PACKAGES)
    while total < budget:
        name = names.pop(0) if names else "-".join(rng.choices(pools.words, k=rng.randint(1, 2))) + str(rng.randint(0, 99))  # fmt: skip
        if f"node_modules/{name}" in lock:
            continue
        ver, base = version(rng), f"app/node_modules/{name}"
        lock[f"node_modules/{name}"] = {
            "version": ver,
            "resolved": f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{ver}.tgz",
            "integrity": "sha512-" + base64.b64encode(rng.randbytes(64)).decode(),  # a near-miss
        }
        pkg_json = {"name": name, "version": ver, "description": pools.sentence(rng), "main": "index.js", "license": "MIT",
                    "repository": {"type": "git", "url": f"git+https://github.com/{rng.choice(pools.words)}/{name}.git"},
                    "dependencies": {d: "^" + version(rng) for d in rng.sample(NODE_PACKAGES, rng.randint(0, 4))}}  # fmt: skip
        files.add(f"{base}/package.json", json.dumps(pkg_json, indent=2) + "\n")
        files.gen(f"{base}/README.md", lambda r: pools.text(r, r.randint(500, 12000)).encode(), key=base + "/README")
        files.add(
            f"{base}/LICENSE",
            "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy...\n",
        )
        pkg_total = 8 * KiB
        for j in range(rng.randint(1, 25)):
            size = lognormal(rng, 4 * KiB, 1.0, 200, 120 * KiB)
            files.gen(f"{base}/{'index' if j == 0 else 'lib/' + rng.choice(pools.idents) + str(j)}.js", partial(js_file, pools, size=size))  # fmt: skip
            pkg_total += size
        if rng.random() < 0.3:
            size = lognormal(rng, 200 * KiB, 1.2, 10 * KiB, 4 * MiB)
            files.gen(
                f"{base}/dist/{name.split('/')[-1]}.min.js", big_file(js_bundle_blocks, pools, size, [], text=False)
            )
            pkg_total += size
        total += pkg_total
    lockfile = {"name": "shop", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": lock}
    files.add("app/package-lock.json", json.dumps(lockfile, indent=2, sort_keys=True) + "\n")
    files.add(
        "app/package.json",
        json.dumps({"name": "shop", "version": "1.0.0", "private": True, "scripts": {"build": "webpack"}}, indent=2)
        + "\n",
    )
    files += vendored_tgz(build)
    return LayerPlan("RUN /bin/sh -c cd /app && npm ci && npm run build # buildkit", files.specs)


def js_file(pools: Pools, rng: random.Random, size: int) -> bytes:
    return pools.js_source(rng, size).encode()


def js_bundle_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    return pools.js_bundle_chunks(rng)


def vendored_tgz(build: Build) -> Files:
    """`npm pack` tarballs; the first picked up the developer's .npmrc with an npm token."""
    rng = build.rng("plan/tgz")
    budget = build.budget("compressed", COMPRESSED_SPLIT["tgz"])
    files = Files(build, "compressed")
    npm = gen.npm_token(build.secret_seed(10))
    total, i = 0, 0
    while total < budget:
        target = min(lognormal(rng, 400 * KiB, 0.9, 20 * KiB, 5 * MiB), budget - total + KiB)
        name = rng.choice(build.pools.words) + f"-{rng.choice(build.pools.words)}{i}"
        path = f"app/vendor/{name}-{version(rng)}.tgz"
        extra = None
        if i == 0:
            build.plant(npm, "npm.access-token", f"/{path}!package/.npmrc")
            extra = {"package/.npmrc": f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={npm}\n".encode()}  # fmt: skip
        files.gen(path, partial(npm_tgz, build, name=name, target=target, extra=extra))
        total += target
        i += 1
    return files


def layer_app(build: Build) -> LayerPlan:
    """The Java part and deployment bits: a fat jar whose nested jar holds a password, library
    jars, an ELF tool with a Vault token in its string table, a PEM private key, and near-misses
    (a public key, authorized_keys, templated config)."""
    pools, rng = build.pools, build.rng("plan/app")
    files = Files(build, "app")
    budget = build.budget("compressed", COMPRESSED_SPLIT["jars"])
    inner_jar = "shop-config-2.3.1.jar"
    pw = build.plant(safe_password(build, 12), "file.properties.secret", f"/app/app.jar!BOOT-INF/lib/{inner_jar}!application.properties line 3")  # fmt: skip
    props = (
        "# shop configuration\nspring.datasource.url=jdbc:postgresql://db:5432/shop\n"
        f"spring.datasource.password={pw}\nserver.port=8080\n"
    ).encode()
    fat_target = budget // 3

    def fat_jar(r: random.Random) -> bytes:
        inner = jar_bytes(build, r, "com.example.shop.config", 64 * KiB, extra={"application.properties": props})
        libs = {
            f"{w}-{version(r)}.jar": jar_bytes(build, r, f"org.{w}", lognormal(r, 300 * KiB, 0.8, 20 * KiB, 3 * MiB))
            for w in r.sample(pools.words, 6)
        }
        libs[inner_jar] = inner
        return jar_bytes(build, r, "com.example.shop", fat_target, nested=libs)  # the nested jars count

    files.gen("app/app.jar", fat_jar, kind="compressed")
    total = fat_target
    while total < budget:
        target = min(lognormal(rng, 500 * KiB, 1.0, 20 * KiB, 8 * MiB), budget - total + KiB)
        w = rng.choice(pools.words)
        path = f"app/lib/{w}-{rng.choice(pools.words)}-{version(rng)}.jar"
        if path in files:
            continue
        files.gen(path, partial(jar_bytes, build, group=f"org.{w}", target=target), kind="compressed")
        total += target

    vault = build.plant(gen.vault_token(build.secret_seed(13)), "vault.service-token", "/usr/local/bin/deployer (ELF string table)")  # fmt: skip
    strings = [b"VAULT_ADDR=https://vault.internal:8200", vault.encode(), b"deploy: %s"]
    files.gen("usr/local/bin/deployer", partial(elf_bytes, pools, size=3 * MiB, shared=False, extra=strings), mode=0o755, kind="binaries", key="deployer")  # fmt: skip

    app_yaml = (
        "server:\n  port: 8080\ndatabase:\n  host: db\n  password: ${DB_PASSWORD}\nstripe:\n  api_key: ${STRIPE_API_KEY}\n"
        f"build:\n  commit: {hexstr(rng, 20)}\n  image_digest: sha256:{hexstr(rng, 32)}\n  request_id: {uuid4(rng)}\n"
    )
    files.add("root/.ssh/authorized_keys", ssh_public_key(rng, "deploy@ci"))
    priv, pub = ec_private_key(build)
    build.plant(priv.strip(), "private-key.pkcs8", "/etc/ssl/private/shop.key (PEM)")
    files.add("etc/ssl/private/shop.key", priv, mode=0o600)
    files.add("app/config/jwt-public.pem", pub)
    files.add("app/config/application.yaml", app_yaml)
    return LayerPlan("COPY build/ / # buildkit", files.specs)


def layer_cleanup(build: Build) -> LayerPlan:
    files = Files(build, "app")
    files.whiteout("app/.env")
    files.add("app/.env.example", "AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\nAWS_REGION=eu-west-1\n")
    return LayerPlan("RUN /bin/sh -c rm /app/.env && mkdir -p /var/log/app /srv/data # buildkit", files.specs)


def big_files(build: Build) -> list[tuple[str, int]]:
    """(kind, size) of the big files: their share of the target, or what is left of it if more
    (so the image is never smaller than asked), split into 3+ files of at most BIG_FILE_MAX,
    kinds cycling log, csv, bin."""
    remaining = max(3 * BIG_FILE_MIN, int(build.target * SHARES["bigdata"]), build.target - build.written)
    n = max(3, math.ceil(remaining / BIG_FILE_MAX))
    each = max(BIG_FILE_MIN, remaining // n)
    return [(("log", "csv", "bin")[i % 3], each) for i in range(n)]


def layer_logs(build: Build) -> LayerPlan:
    """The big logs, with a secret straddling the 8 MiB chunk boundary and others deep inside."""
    build.big = big_files(build)
    logs = [size for kind, size in build.big if kind == "log"]
    files = Files(build, "bigdata")
    openai = gen.openai_key(build.secret_seed(3))
    ghp = gen.github_pat(build.secret_seed(4))
    token = gen.jwt(build.secret_seed(5))
    for i, size in enumerate(logs):
        path = "var/log/app/app.log" + (f".{i}" if i else "")
        plants: list[tuple[int, bytes]] = []
        if i == 0:
            line = f"2024-06-01T00:00:00.000Z ERROR [llm-client] upstream rejected key {openai} (model=gpt-4o)\n"
            start = CHUNK_BOUNDARY - line.index(openai) - len(openai) // 2
            plants.append((start, line.encode()))
            where = f"/{path} byte {start + line.index(openai)} (straddles the 8 MiB chunk boundary)"
            build.plant(openai, "openai.project-api-key", where)
            at = int(size * 0.61)
            line = f"2024-06-01T03:00:00.000Z DEBUG [sync] cloning with GITHUB_TOKEN={ghp}\n"
            plants.append((at, line.encode()))
            build.plant(ghp, "github.personal-access-token", f"/{path} byte {at + line.index(ghp)}")
        if i == len(logs) - 1:
            at = int(size * 0.87)
            user = uuid4(build.rng("jwt-user"))
            line = f"2024-06-01T09:00:00.000Z INFO [auth-proxy] issued session {token} for user {user}\n"
            plants.append((at, line.encode()))
            build.plant(token, "jwt.token", f"/{path} byte {at + line.index(token)}")
        files.gen(path, big_file(log_blocks, build.pools, size, plants, text=True))
    return LayerPlan("COPY logs/ /var/log/app/ # buildkit", files.specs)


def layer_data(build: Build) -> LayerPlan:
    """CSV exports (a Stripe key in a cell) and binary data files (a Slack token in a record)."""
    files = Files(build, "bigdata")
    stripe = gen.stripe_live_secret(build.secret_seed(6))
    slack = gen.slack_bot_token(build.secret_seed(7))
    csvs = [size for kind, size in build.big if kind == "csv"]
    bins = [size for kind, size in build.big if kind == "bin"]
    for i, size in enumerate(csvs):
        path, plants = f"srv/data/events-{i}.csv", []
        if i == 0:
            at = int(size * 0.45)
            row = f'{uuid4(build.rng("csv"))},2024-02-03T04:05:06Z,,,10.0.0.9,DE,0,EUR,SKU-00000,ok,,"migrated billing key {stripe}"\n'  # fmt: skip
            plants.append((at, row.encode()))
            build.plant(stripe, "stripe.secret-key", f"/{path} byte {at + row.index(stripe)}")
        files.gen(path, big_file(csv_blocks, build.pools, size, plants, text=True))
    for i, size in enumerate(bins):
        path, plants = f"srv/data/features-{i}.bin", []
        if i == 0:
            at = int(size * 0.7)
            rec = b"\x00\x00CFG\x00notify.slack=" + slack.encode() + b"\x00\x00"
            plants.append((at, rec))
            build.plant(slack, "slack.bot-token", f"/{path} byte {at + rec.index(slack.encode())} (binary)")
        files.gen(path, big_file(binary_blocks, build.pools, size, plants, text=False))
    return LayerPlan("COPY data/ /srv/data/ # buildkit", files.specs)


# ----------------------------------------------------------------------------- image assembly


def build_image(out: Path, size_mb: int, seed: int) -> dict[str, Any]:
    """Plan and write the layers one by one, then the archive; return the planted.json content."""
    t0 = time.perf_counter()
    build = Build(pools=Pools(seed), seed=seed, target=size_mb * MiB)
    t_pools = time.perf_counter() - t0
    build.gh_token = gen.github_fine_grained(build.secret_seed(8))
    pypi = gen.pypi_token(build.secret_seed(14))
    arg, env = f"ARG GH_TOKEN={build.gh_token}", f"ENV PYPI_TOKEN={pypi}"
    # the build steps in order: a history entry each; a planner for those that make a layer
    steps: list[str | Callable[[Build], LayerPlan]] = [
        layer_base,
        '/bin/sh -c #(nop)  CMD ["bash"]',
        arg,
        layer_apt,  # its RUN line repeats the ARG value
        "ENV PYTHON_VERSION=3.11.9",
        layer_python,
        layer_env_file,
        layer_node,
        layer_app,
        layer_cleanup,
        env,
        layer_logs,
        layer_data,
        "WORKDIR /app",
        'CMD ["python" "-m" "shopapp"]',
    ]
    env_list = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON_VERSION=3.11.9", env[4:]]
    i_arg, i_env = steps.index(arg), steps.index(env)
    build.plant(build.gh_token, "github.fine-grained-pat", f"config: history[{i_arg}].created_by (ARG) and history[{i_arg + 1}].created_by (RUN)")  # fmt: skip
    build.plant(pypi, "pypi.upload-token", f"config: config.Env[{len(env_list) - 1}] and history[{i_env}].created_by (ENV)")  # fmt: skip
    history: list[dict[str, Any]] = []
    layers: list[LayerResult] = []
    try:
        for step in steps:
            if isinstance(step, str):
                history.append({"created": EPOCH, "created_by": step, "empty_layer": True})
                continue
            build.layer = len(layers)
            plan = step(build)
            blob = out.parent / f".{out.name}.layer{len(layers)}.tmp"
            res = write_layer(plan, blob, build)
            layers.append(res)
            history.append({"created": EPOCH, "created_by": plan.created_by})
            print(
                f"  layer {len(layers) - 1}: {res.files:6d} files  {res.uncompressed_size / 1e6:8.1f} MB -> {res.size / 1e6:7.1f} MB gz  {res.seconds:5.1f} s  {plan.created_by[:60]}",
                flush=True,
            )
        config = json_bytes(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": EPOCH,
                "config": {
                    "Env": env_list,
                    "Cmd": ["python", "-m", "shopapp"],
                    "WorkingDir": "/app",
                },
                "rootfs": {"type": "layers", "diff_ids": [ly.diff_id for ly in layers]},
                "history": history,
            }
        )
        write_archive(out, config, layers, f"{REPO_TAG}:{size_mb}")
    finally:
        for ly in layers:
            ly.blob.unlink(missing_ok=True)
    meta = {
        "image": f"{REPO_TAG}:{size_mb}",
        "seed": seed,
        "size_mb": size_mb,
        "uncompressed_bytes": sum(ly.uncompressed_size for ly in layers),
        "compressed_bytes": sum(ly.size for ly in layers),
        "compressor": "isal.igzip level 2" if _igzip is not None else "zlib level 6",
        "content_bytes": dict(sorted(build.by_kind.items())),
        "layers": [
            {
                "index": i,
                "created_by": ly.created_by,
                "digest": ly.digest,
                "diff_id": ly.diff_id,
                "size": ly.size,
                "uncompressed_size": ly.uncompressed_size,
                "files": ly.files,
            }
            for i, ly in enumerate(layers)
        ],
        "secrets": [p.record() for p in build.planted],
        "generation_seconds": round(time.perf_counter() - t0, 1),
        "pools_seconds": round(t_pools, 1),
    }
    return meta


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_archive(out: Path, config: bytes, layers: list[LayerResult], ref: str) -> None:
    """The Docker 25+ `docker save` layout with gzip blobs, written to OUT.partial then renamed."""
    cfg_digest = "sha256:" + sha256_hex(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
        "layers": [{"mediaType": MT_OCI_LAYER["gzip"], "digest": ly.digest, "size": ly.size} for ly in layers],
    }
    man_bytes = json_bytes(manifest)
    man_digest = "sha256:" + sha256_hex(man_bytes)
    name, tag = ref.rsplit(":", 1)
    index = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [
            {
                "mediaType": MT_OCI_MANIFEST,
                "digest": man_digest,
                "size": len(man_bytes),
                "annotations": {
                    "io.containerd.image.name": f"docker.io/{name}:{tag}",
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    docker_manifest = [
        {
            "Config": "blobs/sha256/" + cfg_digest[7:],
            "RepoTags": [ref],
            "Layers": ["blobs/sha256/" + ly.digest[7:] for ly in layers],
        }
    ]
    members: dict[str, bytes | Path] = {
        "blobs/sha256/" + cfg_digest[7:]: config,
        "blobs/sha256/" + man_digest[7:]: man_bytes,
        "index.json": json_bytes(index),
        "manifest.json": json_bytes(docker_manifest),
        "oci-layout": json_bytes({"imageLayoutVersion": "1.0.0"}),
    }
    for ly in layers:
        members["blobs/sha256/" + ly.digest[7:]] = ly.blob
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tf:
        for d in ("blobs/", "blobs/sha256/"):
            tf.addfile(tarinfo(d, mode=0o755, type_=tarfile.DIRTYPE))
        for member, src in sorted(members.items()):
            if isinstance(src, Path):
                with open(src, "rb") as f:
                    tf.addfile(tarinfo(member, src.stat().st_size), f)
            else:
                tf.addfile(tarinfo(member, len(src)), io.BytesIO(src))
    os.replace(partial, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path, help="docker-archive to write (OUT.tar.planted.json is written next to it)")
    ap.add_argument("--size-mb", type=int, default=500, help="uncompressed size in MiB (default 500; at least 40)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.size_mb < 40:
        ap.error("--size-mb must be at least 40 (the big files need room for their plants)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"building {args.out} ({args.size_mb} MiB uncompressed, seed {args.seed}, gzip by {'isal' if _igzip else 'zlib'})",
        flush=True,
    )
    meta = build_image(args.out, args.size_mb, args.seed)
    planted = args.out.with_name(args.out.name + ".planted.json")
    planted.write_text(json.dumps(meta, indent=2) + "\n")
    total = meta["uncompressed_bytes"]
    print(
        f"wrote {args.out}: {len(meta['layers'])} gzip layers, {total / 1e6:.1f} MB uncompressed, {meta['compressed_bytes'] / 1e6:.1f} MB compressed, in {meta['generation_seconds']} s"
    )
    print(
        "content by kind: "
        + ", ".join(f"{k} {v / total:.1%}" for k, v in sorted(meta["content_bytes"].items(), key=lambda kv: -kv[1]))
    )
    print(f"wrote {planted}: {len(meta['secrets'])} planted secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
