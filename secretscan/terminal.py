"""Text from images and servers made safe for a terminal line.

A file name, tag, build step or registry error is attacker-controlled. Printed raw, ``ESC]0;…BEL``
retitles the terminal, ``ESC[2J`` clears it, a newline forges a report line of the attacker's
choosing and a bidi override (U+202E) shows ``gpj.exe`` as ``exe.jpg``. Every such character is
therefore shown as a Python-style escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\U000e0041``), and
printable text, non-ASCII letters included, is left as it is.

Escaped: the C0 controls, DEL and the C1 controls (Unicode category Cc); format characters (Cf:
bidi embeddings, overrides and isolates, zero-width spaces and joiners, soft hyphen, word joiner,
BOM, interlinear annotations, tag characters); line and paragraph separators (Zl, Zp); lone
surrogates (Cs, from undecodable bytes); and the Hangul fillers, which are letters that render as
nothing. A backslash is left alone, so an escape is not distinguishable from a file name that
spells one out with a literal backslash: this is for reading, not for round-tripping. The list
follows the Unicode database of the running Python (``tests/test_output_safety.py`` checks it
against ``unicodedata``).

Deliberately imports nothing from secretscan: every layer that prints may use it.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from types import TracebackType

_INVISIBLE = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"  # soft hyphen, Arabic/Syriac/Mongolian format
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers: letters that show as nothing
    "\u200b-\u200f"  # zero-width space/non-joiner/joiner, LRM, RLM
    "\u2028-\u202e"  # line/paragraph separators, bidi embeddings and overrides
    "\u2060-\u2064\u2066-\u206f"  # word joiner, invisible operators, bidi isolates, deprecated format
    "\ud800-\udfff"  # lone surrogates
    "\ufeff\ufff9-\ufffb"  # BOM / zero-width no-break space, interlinear annotations
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"  # language tag and tag characters (invisible ASCII)
)
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]")  # C0, DEL, C1 and the above
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_INVISIBLE}]")  # json.dumps escapes C0 itself
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control, format and invisible character shown as an escape (one pass)."""
    return _UNSAFE.sub(_escape, text)


def terminal_lines(lines: Iterable[str]) -> str:
    """Lines joined with newlines, each escaped whole: a line break inside one cannot start another."""
    return "\n".join(terminal_safe(line) for line in lines)


def json_terminal_safe(document: str) -> str:
    """A JSON document (``json.dumps(..., ensure_ascii=False)``) with the characters above written as
    ``\\uXXXX`` escapes: the same value for a JSON reader, nothing live for a terminal showing it.
    (Outside strings a JSON document holds only ASCII punctuation and whitespace, so every match is
    inside a string.)"""
    return _UNSAFE_IN_JSON.sub(_json_escape, document)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def traceback_safe(exc: BaseException) -> str:
    """The traceback Python would print for ``exc``, for a terminal: frames keep their lines, and
    each exception message (which may quote an image or a server) is escaped whole, so a line break
    in it cannot start a line of its own."""
    pieces = []
    for chunk in traceback.TracebackException.from_exception(exc).format():
        if chunk.startswith(("  File ", "  [Previous line repeated")):  # our code: file, line, source
            pieces.append("\n".join(terminal_safe(line) for line in chunk.split("\n")))
            continue
        core = chunk.strip("\n")  # a header, or an exception's "Type: message" or note
        lead, trail = len(chunk) - len(chunk.lstrip("\n")), len(chunk) - len(chunk.rstrip("\n"))
        pieces.append("\n" * lead + terminal_safe(core) + "\n" * trail if core else chunk)
    return "".join(pieces)


class TerminalSafeFormatter(logging.Formatter):
    """Log lines whose message (which may quote an image or a server) cannot drive the terminal or
    forge another line. A traceback keeps its line breaks, its messages escaped (``traceback_safe``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return terminal_safe(super().formatMessage(record))

    def formatException(  # noqa: N802 - logging's name
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        return traceback_safe(ei[1]).rstrip("\n") if ei[1] is not None else super().formatException(ei)

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return "\n".join(terminal_safe(line) for line in super().formatStack(stack_info).split("\n"))
