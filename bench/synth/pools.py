"""Shared pools of text and bytes, made once per seed and sampled by every file.

Why pools: calling the random generator per line or per byte would make the 2 GB image take
minutes; sampling ready-made identifiers, snippets, log lines, CSV rows and byte blocks costs joins
and slices instead. The pools are built from random.Random seeded with (seed, "pools") only.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .params import KiB, MiB
from .values import hexstr, ip, uuid4
from .vocab import JS_MIN_TEMPLATES, JS_TEMPLATES, NODE_PACKAGES, PY_TEMPLATES, WORDS


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
