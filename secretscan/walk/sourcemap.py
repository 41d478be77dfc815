"""Source maps (``*.js.map``): the original sources they embed, as files of their own.

A bundler's source map carries every original source file as one JSON string with escaped
newlines (``sourcesContent``), and the position table as base64 VLQ (``mappings``). Scanned as it
is, a 5 MB map is one 5 MB line: a secret in it gets no useful line number, and the name = value
rules read megabytes per keyword. Split, each embedded source is scanned as the file it was
(``bundle.js.map!/webpack://app/src/config.ts``, with its own lines), and the rest of the map as it
is, minus a ``mappings`` made only of VLQ characters (a position table, nothing else).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_SOURCE_MAP_BYTES = 64 * 1024 * 1024
"""Read whole and parsed (JSON needs the whole document); a larger map is scanned as plain bytes."""
MAX_NAME = 1024
_VLQ = re.compile(r"[A-Za-z0-9+/,;]*")


@dataclass(frozen=True, slots=True)
class SourceMap:
    sources: list[tuple[str, bytes]]
    """(the source's name as the map gives it, its content)."""
    rest: bytes
    """The map without the embedded sources (and without a pure-VLQ ``mappings``)."""


def is_candidate(path: str, head: bytes) -> bool:
    return path.endswith(".map") and head.lstrip()[:1] == b"{"


def split(data: bytes) -> SourceMap | None:
    """None when ``data`` is not a source map with embedded sources (it is then scanned as is)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    contents, names = doc.get("sourcesContent"), doc.get("sources")
    if not isinstance(contents, list) or not contents:
        return None
    names = names if isinstance(names, list) else []
    sources = []
    leftover = []
    for i, content in enumerate(contents):
        if content is None:
            continue
        if not isinstance(content, str):
            leftover.append(content)
            continue
        name = names[i] if i < len(names) and isinstance(names[i], str) and names[i] else f"sourcesContent[{i}]"
        sources.append((name.lstrip("/")[:MAX_NAME], content.encode("utf-8", "surrogatepass")))
    rest = {k: v for k, v in doc.items() if k != "sourcesContent"}
    if leftover:
        rest["sourcesContent"] = leftover
    mappings = rest.get("mappings")
    if isinstance(mappings, str) and _VLQ.fullmatch(mappings):
        del rest["mappings"]
    return SourceMap(sources, json.dumps(rest, ensure_ascii=False).encode("utf-8", "surrogatepass"))
