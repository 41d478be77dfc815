"""Run settings: one frozen ``ScanConfig`` built once (flags > environment > ``secretscan.yaml`` >
defaults) and passed down. No module-level mutable settings."""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from secretscan.errors import ConfigError
from secretscan.limits import Limits, MiB
from secretscan.redact import DEFAULT_FINGERPRINT_KEY
from secretscan.stores.vault.connect import KvLocation, VaultSettings
from secretscan.verify import VERIFIER_NAMES, VerifyOptions

CONFIG_FILENAME = "secretscan.yaml"


@dataclass(frozen=True, slots=True)
class Allowlist:
    paths: tuple[str, ...] = ()
    """Globs over the location path (``/usr/share/doc/*``, ``*/test/fixtures/*``)."""
    rules: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    regexes: tuple[re.Pattern[str], ...] = ()
    """Matched against the secret value (in memory only)."""

    def allows_path(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, glob) for glob in self.paths)

    def allows_secret(self, rule_id: str, fingerprint: str) -> bool:
        """By rule or fingerprint; ``regexes`` are applied where the value is still in memory
        (``detect.seal``)."""
        return rule_id in self.rules or fingerprint in self.fingerprints


@dataclass(frozen=True, slots=True)
class ScanConfig:
    rule_dirs: tuple[Path, ...] = ()
    """Extra rule directories, loaded after the built-in pack."""
    limits: Limits = field(default_factory=Limits)
    allowlist: Allowlist = field(default_factory=Allowlist)
    fingerprint_key: bytes = DEFAULT_FINGERPRINT_KEY
    show_secrets: bool = False
    jobs: int = field(default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)))
    """Worker processes for the layers of local images (``--jobs``)."""
    hyperscan: bool = True
    """Use the Hyperscan pattern prefilter when installed (same findings, faster); off: --no-hyperscan."""
    package_provenance: bool = True
    """Check the files secrets were seen in against the package managers' records; a value seen
    only in pristine package files is listed as published. Off (``--no-package-provenance``):
    for an image whose package databases may be forged (incident response)."""
    search_packages: bool = False
    """Search the files package records vouch for before the scan (``walk.layer.Vouching``), with
    provider-format rules, to list what they publish (``--search-packages``). Off: they are
    verified and counted, not searched; no finding above informational and no exit code changes."""
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    vault: VaultSettings = field(default_factory=VaultSettings)
    cache_dir: Path | None = None
    """Where the compiled Hyperscan database and other rebuildable caches live (``--cache-dir``,
    ``SECRETSCAN_CACHE_DIR``); None: ``$XDG_CACHE_HOME/secretscan`` or ``~/.cache/secretscan``."""


def load_config(path: Path | str | None, *, required: bool = False) -> ScanConfig:
    """Read ``secretscan.yaml``; ``SECRETSCAN_FINGERPRINT_KEY`` overrides the file's key. A missing
    file means the defaults unless ``required`` (the user named it)."""
    config = ScanConfig()
    path = Path(path) if path is not None else None
    if path is not None and path.is_file():
        config = _from_file(path)
    elif required and path is not None:
        raise ConfigError(f"{path}: {'not a file' if path.exists() else 'config file not found'}")
    key = os.environ.get("SECRETSCAN_FINGERPRINT_KEY")
    if key:
        config = replace(config, fingerprint_key=key.encode())
    return config


_TOP_KEYS = ("rules", "allowlist", "limits", "fingerprint_key", "search_packages", "verify", "vault")
_ALLOWLIST_KEYS = ("paths", "rules", "fingerprints", "regexes")
_VERIFY_KEYS = ("providers", "endpoints", "rate_per_second", "timeout_seconds")
_VAULT_AUTH = ("token", "approle", "kubernetes")
LIMIT_NAMES = tuple(f.name for f in fields(Limits))
_UNITS = {
    "": 1,
    "k": 1024,
    "kib": 1024,
    "m": MiB,
    "mib": MiB,
    "g": 1024 * MiB,
    "gib": 1024 * MiB,
    "t": 1024 * 1024 * MiB,
    "tib": 1024 * 1024 * MiB,
}
_SIZE = re.compile(r"\s*(\d{1,20})\s*([a-zA-Z]{0,3})\s*")
_UNLIKE_VALUES = ("x", "0", "-----BEGIN", "AKIAIOSFODNN7EXAMPLE", "postgres://u:p@db/app", "~!{}")
"""Values with nothing in common: an allowlist regex that finds all of them would hide every finding."""
LIMIT_VALUE_HELP = "a whole number, optionally with a unit (K/KiB, M/MiB, G/GiB, T/TiB)"


def limit_value(value: object) -> int | None:
    """A limit as the config file or ``--limit`` gives it: a whole number (``4``, ``268435456``) or
    one with a binary unit (``8GiB``, ``256M``); None for anything else (``lots``, ``2.5``,
    ``true``, ``8GB``). Both places accept exactly the same values."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    match = _SIZE.fullmatch(value)
    if match is None or match.group(2).lower() not in _UNITS:
        return None
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'paths'?)`` for a close match, else `` (known: a, b, c)``."""
    choices = sorted(known)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"


def parse_limit(text: str) -> tuple[str, int]:
    """``NAME=VALUE`` for one limit (``max_nested_depth=2``, ``max_layer_bytes=4GiB``)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise ConfigError(f"--limit {text!r}: expected NAME=VALUE, e.g. max_layer_bytes=8GiB")
    if name not in LIMIT_NAMES:
        raise ConfigError(f"--limit {text!r}: unknown limit {name!r}{did_you_mean(name, LIMIT_NAMES)}")
    number = limit_value(value)
    if number is None:
        raise ConfigError(f"--limit {text!r}: expected {LIMIT_VALUE_HELP}, not {_show(value)}")
    if number <= 0:
        raise ConfigError(f"--limit {text!r}: must be positive")
    return name, number


def with_limits(config: ScanConfig, overrides: Mapping[str, object]) -> ScanConfig:
    """``config`` with some limits replaced, validated like those of the config file (the Python
    API passes them straight through: ``{"max_layer_bytes": "8GiB"}`` works as on the CLI)."""
    values: dict[str, int] = {}
    for name, value in overrides.items():
        if name not in LIMIT_NAMES:
            raise ConfigError(f"limits: unknown limit {name!r}{did_you_mean(str(name), LIMIT_NAMES)}")
        number = limit_value(value)
        if number is None:
            raise ConfigError(f"limits.{name}: expected {LIMIT_VALUE_HELP}, not {_show(value)}")
        values[name] = number
    return replace(config, limits=replace(config.limits, **values)) if values else config


# ---- reading secretscan.yaml: every value checked, every error names the file, line and key


_Key = tuple[str | int, ...]
"""Where a value sits in the document: ``("allowlist", "paths", 2)``."""


@dataclass(frozen=True, slots=True)
class _Marks:
    """Line and column of every key and value of the file, so an error points at what to fix."""

    path: Path
    keys: dict[_Key, yaml.Mark] = field(default_factory=dict)
    values: dict[_Key, yaml.Mark] = field(default_factory=dict)

    def error(self, at: _Key, message: str, *, on_key: bool = False) -> ConfigError:
        """``secretscan.yaml:3:5: limits.max_nested_depth: <message>``, at the nearest mark known.
        ``on_key``: the message is about the key itself (unknown, written twice): it points at the
        key and names the section it is in."""
        marks = self.keys if on_key else self.values
        probe = at
        while probe and probe not in marks:
            probe = probe[:-1]
        mark = marks.get(probe) or self.values.get(probe)
        where = f"{self.path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(self.path)
        name = _dotted(at[:-1] if on_key else at)
        return ConfigError(f"{where}: {name}: {message}" if name else f"{where}: {message}")


def _dotted(at: _Key) -> str:
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _read_yaml(path: Path) -> tuple[Any, _Marks]:
    """The document and the marks of its nodes; a syntax error names its line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "invalid"
        context = ""
        if exc.context and exc.problem:
            started = exc.context_mark
            at = f" at {started.line + 1}:{started.column + 1}" if started is not None and started != mark else ""
            context = f" ({exc.context}{at})"
        raise ConfigError(f"{where}: not valid YAML: {problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0] if str(exc) else 'invalid'}") from None
    finally:
        loader.dispose()
    marks = _Marks(path)
    if node is not None:
        _collect_marks(node, (), marks, set())
    return doc, marks


def _collect_marks(node: yaml.Node, at: _Key, marks: _Marks, seen: set[int]) -> None:
    """Each node once (aliases point back at nodes already seen: no blow-up); a key written twice
    in one mapping is an error, as YAML says, rather than the last one silently winning."""
    marks.values.setdefault(at, node.start_mark)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            here = (*at, key)
            if here in marks.keys and key != "<<":
                first = marks.keys[here]
                marks.keys[here] = key_node.start_mark
                raise marks.error(
                    here, f"key {key!r} written twice (first at {first.line + 1}:{first.column + 1})", on_key=True
                )
            marks.keys[here] = key_node.start_mark
            _collect_marks(value_node, here, marks, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_marks(item, (*at, index), marks, seen)


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a " + type(value).__name__


def _show(value: object) -> str:
    """A short quotation of a value the user wrote (strings and numbers), else its kind."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return _kind(value)


def _section(doc: Any, at: _Key, known: Sequence[str], marks: _Marks) -> dict[str, Any]:
    """A mapping with only ``known`` keys (absent or null: empty)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise marks.error(at, f"expected a mapping, not {_kind(doc)}")
    for key in doc:
        if key not in known:
            raise marks.error((*at, str(key)), f"unknown key {str(key)!r}{did_you_mean(str(key), known)}", on_key=True)
    return doc


def _strings(value: Any, at: _Key, marks: _Marks) -> tuple[str, ...]:
    """A list of strings; a single string is a list of one (``paths: /docs/*``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise marks.error(at, f"expected a list of strings, not {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise marks.error((*at, index), f"expected a string, not {_show(item)} (quote it)")
    return tuple(value)


def _string(value: Any, at: _Key, marks: _Marks) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise marks.error(at, f"expected a string, not {_kind(value)}")
    return value


def _flag(value: Any, at: _Key, marks: _Marks) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise marks.error(at, f"expected true or false, not {_show(value)}")
    return value


def _number(value: Any, at: _Key, marks: _Marks, *, default: float, zero_ok: bool) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise marks.error(at, f"expected a number, not {_show(value)}")
    if value < 0 or (value == 0 and not zero_ok):
        raise marks.error(at, f"must be {'zero or more' if zero_ok else 'positive'}, not {value!r}")
    return float(value)


def _choice(value: str, at: _Key, known: Iterable[str], marks: _Marks) -> str:
    if value not in known:
        raise marks.error(at, f"unknown value {_show(value)}{did_you_mean(value, known)}")
    return value


def _from_file(path: Path) -> ScanConfig:
    doc, marks = _read_yaml(path)
    top = _section(doc, (), _TOP_KEYS, marks)
    rules = _section(top.get("rules"), ("rules",), ("dirs",), marks)
    base = path.parent
    rule_dirs = []
    for index, name in enumerate(_strings(rules.get("dirs"), ("rules", "dirs"), marks)):
        directory = (base / name).resolve()
        if not directory.is_dir():
            raise marks.error(("rules", "dirs", index), f"no such directory: {directory}")
        rule_dirs.append(directory)
    return ScanConfig(
        rule_dirs=tuple(rule_dirs),
        limits=_limits(top.get("limits"), marks),
        allowlist=_allowlist(top.get("allowlist"), marks),
        fingerprint_key=_fingerprint_key(top.get("fingerprint_key"), marks),
        search_packages=_flag(top.get("search_packages"), ("search_packages",), marks),
        verify=_verify_options(top.get("verify"), marks),
        vault=_vault_settings(top.get("vault"), marks),
    )


def _limits(doc: Any, marks: _Marks) -> Limits:
    section = _section(doc, ("limits",), LIMIT_NAMES, marks)
    values: dict[str, int] = {}
    for name, value in section.items():
        number = limit_value(value)
        if number is None:
            raise marks.error(("limits", name), f"expected {LIMIT_VALUE_HELP}, not {_show(value)}")
        if number <= 0:
            raise marks.error(("limits", name), f"must be positive, not {value!r}")
        values[name] = number
    try:
        return Limits(**values)
    except ConfigError as exc:  # the rules between limits (overlap_bytes against chunk_bytes)
        raise marks.error(("limits",), str(exc).removeprefix("limits: ")) from None


def _allowlist(doc: Any, marks: _Marks) -> Allowlist:
    allow = _section(doc, ("allowlist",), _ALLOWLIST_KEYS, marks)
    paths = _strings(allow.get("paths"), ("allowlist", "paths"), marks)
    for index, glob in enumerate(paths):
        if glob.strip("*/") == "":
            raise marks.error(
                ("allowlist", "paths", index), f"{glob!r} matches every path: it would hide every finding"
            )
    regexes = []
    for index, text in enumerate(_strings(allow.get("regexes"), ("allowlist", "regexes"), marks)):
        try:
            regex = re.compile(text)
        except re.error as exc:
            raise marks.error(("allowlist", "regexes", index), f"does not compile: {exc}") from None
        if all(regex.search(sample) for sample in _UNLIKE_VALUES):
            raise marks.error(
                ("allowlist", "regexes", index), f"{text!r} matches every value: it would hide every finding"
            )
        regexes.append(regex)
    return Allowlist(
        paths=paths,
        rules=_strings(allow.get("rules"), ("allowlist", "rules"), marks),
        fingerprints=_strings(allow.get("fingerprints"), ("allowlist", "fingerprints"), marks),
        regexes=tuple(regexes),
    )


def _fingerprint_key(value: Any, marks: _Marks) -> bytes:
    """The key is a secret of the user's: an error names where it is, never what it is."""
    if value is None:
        return DEFAULT_FINGERPRINT_KEY
    if not isinstance(value, str):
        raise marks.error(("fingerprint_key",), f"expected a string, not {_kind(value)}")
    if not value:
        raise marks.error(("fingerprint_key",), "is empty (leave it out for the default key)")
    return value.encode()


def _verify_options(doc: Any, marks: _Marks) -> VerifyOptions:
    section = _section(doc, ("verify",), _VERIFY_KEYS, marks)
    providers = _strings(section.get("providers"), ("verify", "providers"), marks)
    for index, name in enumerate(providers):
        _choice(name, ("verify", "providers", index), VERIFIER_NAMES, marks)
    endpoints = _section(section.get("endpoints"), ("verify", "endpoints"), sorted(VERIFIER_NAMES), marks)
    for name, url in endpoints.items():
        if not isinstance(url, str) or not url:
            raise marks.error(("verify", "endpoints", name), f"expected a URL, not {_kind(url)}")
    return VerifyOptions(
        frozenset(providers) or VERIFIER_NAMES,
        {str(k): v for k, v in endpoints.items()},
        _number(section.get("rate_per_second"), ("verify", "rate_per_second"), marks, default=5.0, zero_ok=True),
        _number(section.get("timeout_seconds"), ("verify", "timeout_seconds"), marks, default=10.0, zero_ok=False),
    )


def _vault_settings(doc: Any, marks: _Marks) -> VaultSettings:
    """Checked here so that every error names its line; ``VaultSettings.from_config`` builds it."""
    known = tuple(f.name for f in fields(VaultSettings))
    section = _section(doc, ("vault",), known, marks)
    locations: list[tuple[_Key, str]] = []
    for name, value in section.items():
        if name == "kv":
            kv = _strings(value, ("vault", "kv"), marks)
            section = {**section, "kv": list(kv)}
            locations.extend((("vault", "kv", index), text) for index, text in enumerate(kv))
        else:
            text = _string(value, ("vault", name), marks)
            if name == "migrate_to" and text is not None:
                locations.append((("vault", name), text))
    if section.get("auth") is not None:
        _choice(section["auth"], ("vault", "auth"), _VAULT_AUTH, marks)
    for at, text in locations:
        try:
            KvLocation.parse(text)
        except ConfigError:
            raise marks.error(at, f"expected MOUNT or MOUNT/PREFIX, not {_show(text)}") from None
    try:
        return VaultSettings.from_config(section)
    except ConfigError as exc:
        raise marks.error(("vault",), str(exc)) from None
