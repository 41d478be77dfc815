"""Which bytes of a Python source file are documentation: docstrings and prose comments.

A library's docstrings are full of examples (RFC 6749's ``access_token=2YotnFZFEjr1zCsicMWpAA``,
``password: s3cr3t`` in a module's usage text) that a name = value guess cannot tell from a real
credential. Where no package record vouches for the file, knowing the value sits in documentation
is what is left to tell them apart.

This is a scanner, not a parser: one pass over the bytes, driven by a regex that jumps to the next
character that matters (quote, ``#``, bracket, newline), so hostile input costs linear time and
never raises. It tracks bracket depth (a newline inside brackets does not end a statement) and
whether a string is the first token of its statement. Python 3.12's nested f-string quotes are
not followed; a file they confuse is merely read with fewer spans.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from secretscan.models import Documentation

_NEXT = re.compile(rb"[#'\"\n\r()\[\]{}\\]")
_PREFIX = re.compile(rb"(?i:[rbuf]|br|rb|fr|rf)\Z")
_DOC_ASSIGNMENT = re.compile(rb"(?:__doc__|DOCUMENTATION|EXAMPLES?|USAGE)[ \t]*=[ \t]*(?i:[rbuf]|br|rb|fr|rf)?\Z")
"""``EXAMPLES = r'''…'''``: module-level documentation kept in a variable (Ansible modules, CLIs)."""
_COMMENTED_CODE = re.compile(
    rb"#+[ \t]*(?:(?:export[ \t]+)?[A-Za-z_][\w.\[\]'\"-]*[ \t]*:?=|['\"][\w.-]+['\"][ \t]*:)[ \t]*\S"
)
"""``# DB_PASSWORD = "…"``, ``# "token": "…",``: a line of code switched off, whose value was once
live; not prose."""
_AFTER_STATEMENT = re.compile(rb"[ \t]*(?:[\r\n#;]|\Z)")


@dataclass(frozen=True, slots=True)
class DocumentationSpans:
    """Sorted, disjoint byte ranges of a file that are documentation, and what kind."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    kinds: tuple[Documentation, ...]

    def at(self, offset: int) -> Documentation | None:
        i = bisect.bisect_right(self.starts, offset) - 1
        return self.kinds[i] if i >= 0 and offset < self.ends[i] else None


def documentation_spans(data: bytes) -> DocumentationSpans:
    """Docstrings (a string literal that is a statement of its own, or assigned to ``__doc__``,
    ``DOCUMENTATION``, ``EXAMPLES``, ``USAGE``) and comments that are prose, not code switched off."""
    spans: list[tuple[int, int, Documentation]] = []
    n = len(data)
    depth = 0
    statement = 0  # where the current logical line's text began
    tokens_before = False  # a string, bracket or comment already seen on this logical line
    i = 0
    while i < n:
        found = _NEXT.search(data, i)
        if found is None:
            break
        j = found.start()
        c = data[j]
        if c == 0x23:  # '#'
            end = data.find(b"\n", j)
            end = n if end < 0 else end
            if not _COMMENTED_CODE.match(data, j, end):
                spans.append((j, end, Documentation.COMMENT))
            i = end
        elif c in (0x0A, 0x0D):
            if depth == 0:
                statement, tokens_before = j + 1, False
            i = j + 1
        elif c == 0x5C:  # a backslash outside a string: a line continuation, or stray
            i = j + 2
        elif c in b"([{":
            depth, tokens_before, i = depth + 1, True, j + 1
        elif c in b")]}":
            depth, tokens_before, i = max(0, depth - 1), True, j + 1
        else:
            end = _string_end(data, j)
            first = False
            if depth == 0 and not tokens_before:  # (once per logical line: the text before it is read once)
                lead = data[statement:j].lstrip(b" \t\f")
                first = not lead or bool(_PREFIX.match(lead) or _DOC_ASSIGNMENT.match(lead))
            if first and _AFTER_STATEMENT.match(data, end):
                spans.append((j, end, Documentation.DOCSTRING))
            tokens_before, i = True, end
    return DocumentationSpans(
        tuple(s for s, _, _ in spans), tuple(e for _, e, _ in spans), tuple(k for _, _, k in spans)
    )


def _string_end(data: bytes, start: int) -> int:
    """Just past the string literal whose opening quote is at ``start`` (or where an unterminated
    one gives up: the line's end for a one-line string, the file's end for a triple-quoted one)."""
    quote = data[start : start + 1]
    triple = data[start : start + 3] == quote * 3
    i = start + (3 if triple else 1)
    pattern = _TRIPLE_STOPS[quote] if triple else _SINGLE_STOPS[quote]
    while True:
        found = pattern.search(data, i)
        if found is None:
            return len(data)
        k = found.start()
        if data[k] == 0x5C:  # a backslash hides the next byte, even in a raw string's quote
            i = k + 2
            continue
        if data[k] in (0x0A, 0x0D):  # a one-line string ends with its line
            return k
        return found.end()


_SINGLE_STOPS = {q: re.compile(rb"[\\\n\r]|" + re.escape(q)) for q in (b"'", b'"')}
_TRIPLE_STOPS = {q: re.compile(rb"\\|" + re.escape(q * 3)) for q in (b"'", b'"')}
