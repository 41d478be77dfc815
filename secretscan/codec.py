"""Dataclasses to JSON and back, driven by their type hints: one encoding for everything the
sweep database stores (layer results, locations, findings), so a new field needs no new code.

Fields marked ``metadata={"transient": True}`` (the plaintext map of a layer result) are never
encoded: what this module writes is safe to store.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
import zlib
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.metadata.get("transient")
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(encode(v) for v in value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(tp: Any, data: Any) -> Any:
    """``data`` (from ``encode``) as an instance of ``tp``; a ValueError for data of another shape."""
    origin = get_origin(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            if len(options) < len(get_args(tp)):
                return None
            raise ValueError(f"null where {tp} was expected")
        return decode(options[0], data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{tp.__name__}: expected an object")
        hints = _hints(tp)
        return tp(**{f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if origin in (list, tuple, set, frozenset):
        if not isinstance(data, list):
            raise ValueError(f"expected a list for {tp}")
        args = get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(decode(a, d) for a, d in zip(args, data, strict=True))
        items = [decode(args[0], d) for d in data]
        return items if origin is list else origin(items)
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {tp}")
        value_type = get_args(tp)[1]
        return {k: decode(value_type, v) for k, v in data.items()}
    if tp in (str, int, float, bool, bytes):
        if not isinstance(data, tp) and not (tp is float and isinstance(data, int)):
            raise ValueError(f"expected {tp.__name__}, got {type(data).__name__}")
        return data
    raise ValueError(f"cannot decode {tp}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def pack(value: Any) -> bytes:
    """Compact stored form: compressed JSON (layer path lists compress about tenfold)."""
    return zlib.compress(json.dumps(encode(value), separators=(",", ":")).encode(), 6)


def unpack(tp: type[T], blob: bytes) -> T:
    try:
        return typing.cast(T, decode(tp, json.loads(zlib.decompress(blob))))
    except (zlib.error, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"stored {tp.__name__} is unreadable ({exc})") from None
