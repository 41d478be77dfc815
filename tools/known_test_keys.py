#!/usr/bin/env python3
"""Fingerprints for known public test/example credentials.

secretscan ships ``patterns/known-test-keys.yaml``: a list of fingerprints of
private keys and tokens that are published as examples (vendor documentation,
RFCs) or test fixtures (library test suites). Images routinely carry these in
site-packages, node_modules, /usr/share, ...; a match against this list is
reported as informational instead of as a leak.

The list holds fingerprints only, never the values. A fingerprint is::

    "sha256:" + sha256(normalise(value).encode()).hexdigest()

where ``normalise`` is:

* PEM blocks (``-----BEGIN ... -----`` ... ``-----END ... -----``): the base64
  body only -- the BEGIN/END lines and any header lines containing ``:``
  (``Proc-Type:``, ``DEK-Info:``, ...) are dropped, then all whitespace is
  removed.  Line wrapping, CRLF line ends and indentation therefore do not
  change the fingerprint.
* any other token: the value with surrounding whitespace and quotes stripped.

CLI, for maintainers adding entries::

    python tools/known_test_keys.py [--pem-only] FILE...      # '-' reads stdin

prints one line per PEM block found in each file (PEM blocks embedded in JSON
or source code are decoded first, see ``clean_embedded_pem``), and one line per
remaining non-blank line, treated as a token (lines starting with '#' are
skipped; ``--pem-only`` skips tokens altogether).
"""

from __future__ import annotations

import argparse
import re
import string
import sys
from collections.abc import Iterator

from secretscan.detect.knownkeys import known_key_fingerprint as fingerprint
from secretscan.detect.knownkeys import normalise  # noqa: F401  (re-exported for maintainers)

PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----(?P<body>.*?)-----END (?P=label)-----",
    re.DOTALL,
)
_TOKEN_STRIP = string.whitespace + "\"'"
_WS = re.compile(r"\s+")


_QUOTED = re.compile(r"""["']([^"']*)["']""")
# String-literal syntax that can surround or split a PEM body embedded in source code.
_STRING_SYNTAX = re.compile(r"""[\\"'`,;()]""")


def clean_embedded_pem(block: str) -> str:
    """Rebuild a PEM block that is embedded in source code or JSON.

    Handles literal ``\\n`` escapes (JSON, Python/Go/Rust strings), one string
    literal per line (``"MIIE..."`` / ``b"MIIE..."`` concatenations) and
    string-literal punctuation (quotes, backslashes, commas, parentheses).
    Nothing else is removed, so the result is what the decoded string holds.
    Header lines (containing ':') are kept so that ``normalise`` drops them.
    A clean PEM block comes back with the same body.
    """
    m = PEM_BLOCK.search(block)
    assert m is not None
    label = m.group("label")
    lines = []
    for raw in m.group("body").splitlines():
        quoted = _QUOTED.findall(raw)
        content = "".join(quoted) if quoted else raw
        for line in content.replace("\\r", "\n").replace("\\n", "\n").splitlines():
            lines.append(line.strip() if ":" in line else _STRING_SYNTAX.sub("", line).strip())
    body = "\n".join(x for x in lines if x)
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def iter_values(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(description, value)`` for each PEM block and each other non-blank line.

    PEM blocks embedded in source code or JSON (escaped newlines, quoted lines)
    are cleaned first, see ``clean_embedded_pem``.
    """
    rest = []
    pos = 0
    for m in PEM_BLOCK.finditer(text):
        rest.append(text[pos : m.start()])
        pos = m.end()
        yield m.group("label"), clean_embedded_pem(m.group(0))
    rest.append(text[pos:])
    for chunk in rest:
        for line in chunk.splitlines():
            token = line.strip(_TOKEN_STRIP)
            if token and not token.startswith("#"):
                yield "token", line


def _short(label: str, value: str) -> str:
    if label != "token":
        return label
    token = normalise(value)
    return "token " + (token[:8] + "..." if len(token) > 12 else token[:4] + "...")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Print the known-test-keys fingerprint of each PEM block / token in FILEs.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="file to read ('-' for stdin)")
    parser.add_argument(
        "--pem-only",
        action="store_true",
        help="print PEM blocks only, not the remaining lines as tokens (for JSON/source files)",
    )
    args = parser.parse_args(argv)
    for name in args.files:
        if name == "-":
            text = sys.stdin.read()
        else:
            with open(name, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        for label, value in iter_values(text):
            if args.pem_only and label == "token":
                continue
            print(f"{fingerprint(value)}  {name}  {_short(label, value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
