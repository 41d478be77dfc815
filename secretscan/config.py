"""Run settings: one frozen ``ScanConfig`` built once (flags > environment > ``secretscan.yaml`` >
defaults) and passed down. No module-level mutable settings."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from secretscan.detect.rules import VERIFIER_NAMES
from secretscan.errors import ConfigError
from secretscan.redact import DEFAULT_FINGERPRINT_KEY
from secretscan.vault.connect import VaultSettings
from secretscan.verify import VerifyOptions

MiB = 1024 * 1024
CONFIG_FILENAME = "secretscan.yaml"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep a hostile image from exhausting memory or time. Whatever a limit stops is
    listed in the report. There is deliberately no per-file size cap: big files are scanned in
    windows."""

    chunk_bytes: int = 8 * MiB
    overlap_bytes: int = 64 * 1024
    max_nested_depth: int = 4
    max_nested_entries: int = 100_000
    """Per nested archive. SDK bundle jars hold tens of thousands of classes."""
    max_nested_bytes: int = 256 * MiB
    """A nested zip is read into memory (zip needs random access); larger ones are scanned as bytes.
    256 MiB admits the fat jars of Spring Boot images; nested jars inside them are far smaller."""
    max_nested_uncompressed_bytes: int = 1024 * MiB
    """Per nested archive member stream: the decompression-bomb bound."""
    max_layer_bytes: int = 32 * 1024 * MiB
    """Uncompressed bytes read from one layer; the rest is listed as not scanned."""
    max_compression_ratio: int = 500
    """Uncompressed / stored bytes of a layer, checked once it has produced 64 MiB: gzip bombs run
    at about 1000:1, real layers at 2-20:1 (a layer holding a large zero-filled file may need more)."""
    max_xz_memory: int = 256 * MiB
    """Decoder memory one xz stream (layer or nested file) may demand. Its header alone sets the
    dictionary size, so a few crafted bytes could ask liblzma for gigabytes; ``xz -9e`` output
    needs about 65 MiB. A stream over it is not decoded (listed as not scanned; its stored bytes
    are still scanned as plain bytes)."""
    max_package_db_bytes: int = 128 * MiB
    """A package database file (dpkg status, apk installed, pip RECORD, ...) is read whole to
    learn what the packages installed; a larger one is scanned but not read as a database."""
    max_link_locations: int = 10_000
    """Locations one image gains through hard links (each link ships its target's secrets under
    another name): 1,000 links to a file of 1,000 tokens would be a million. Past it the rest of
    the links are listed as not followed."""

    def __post_init__(self) -> None:
        if self.overlap_bytes * 2 > self.chunk_bytes or self.overlap_bytes < 8192:
            raise ConfigError("limits: overlap_bytes must be at least 8192 and at most half of chunk_bytes")
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"limits: {f.name} must be positive")


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
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    vault: VaultSettings = field(default_factory=VaultSettings)


def load_config(path: Path | None, *, required: bool = False) -> ScanConfig:
    """Read ``secretscan.yaml``; ``SECRETSCAN_FINGERPRINT_KEY`` overrides the file's key."""
    config = ScanConfig()
    if path is not None and path.is_file():
        config = _from_file(path)
    elif required and path is not None:
        raise ConfigError(f"{path}: config file not found")
    key = os.environ.get("SECRETSCAN_FINGERPRINT_KEY")
    if key:
        config = replace(config, fingerprint_key=key.encode())
    return config


_TOP_KEYS = {"rules", "allowlist", "limits", "fingerprint_key", "verify", "vault"}
_UNITS = {"": 1, "k": 1024, "kib": 1024, "m": MiB, "mib": MiB, "g": 1024 * MiB, "gib": 1024 * MiB}


def parse_limit(text: str) -> tuple[str, int]:
    """``NAME=VALUE`` for one limit (``max_nested_depth=2``, ``max_layer_bytes=4GiB``)."""
    name, sep, value = text.partition("=")
    known = [f.name for f in fields(Limits)]
    if not sep or name.strip() not in known:
        raise ConfigError(f"--limit {text!r}: expected NAME=VALUE with NAME one of {', '.join(known)}")
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", value)
    if not match or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"--limit {text!r}: VALUE is a whole number, optionally with K/KiB, M/MiB or G/GiB")
    return name.strip(), int(match.group(1)) * _UNITS[match.group(2).lower()]


def with_limits(config: ScanConfig, overrides: dict[str, int]) -> ScanConfig:
    """``config`` with some limits replaced (validated like those of the config file)."""
    unknown = set(overrides) - {f.name for f in fields(Limits)}
    if unknown:
        raise ConfigError(f"unknown limits {sorted(unknown)} (known: {', '.join(f.name for f in fields(Limits))})")
    return replace(config, limits=replace(config.limits, **overrides)) if overrides else config


def _from_file(path: Path) -> ScanConfig:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: config must be a mapping")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(_TOP_KEYS)})")
    rules = _mapping(doc.get("rules"), "rules", path)
    allow = _mapping(doc.get("allowlist"), "allowlist", path)
    limits_doc = _mapping(doc.get("limits"), "limits", path)
    limit_names = {f.name for f in fields(Limits)}
    if set(limits_doc) - limit_names:
        raise ConfigError(f"{path}: unknown limits {sorted(set(limits_doc) - limit_names)}")
    try:
        regexes = tuple(re.compile(str(r)) for r in allow.get("regexes") or ())
    except re.error as exc:
        raise ConfigError(f"{path}: allowlist regex does not compile: {exc}") from None
    paths = tuple(str(p) for p in allow.get("paths") or ())
    if any(p.strip("*/") == "" for p in paths) or any(r.pattern in ("", ".*", ".+") for r in regexes):
        raise ConfigError(f"{path}: an allowlist entry that matches everything would hide every finding")
    base = path.parent
    return ScanConfig(
        rule_dirs=tuple((base / str(d)).resolve() for d in rules.get("dirs") or ()),
        limits=Limits(**{k: int(v) for k, v in limits_doc.items()}),
        allowlist=Allowlist(
            paths=paths,
            rules=tuple(str(r) for r in allow.get("rules") or ()),
            fingerprints=tuple(str(f) for f in allow.get("fingerprints") or ()),
            regexes=regexes,
        ),
        fingerprint_key=str(doc["fingerprint_key"]).encode() if doc.get("fingerprint_key") else DEFAULT_FINGERPRINT_KEY,
        verify=_verify_options(_mapping(doc.get("verify"), "verify", path), path),
        vault=VaultSettings.from_config(_mapping(doc.get("vault"), "vault", path)),
    )


def _verify_options(doc: dict[str, Any], path: Path) -> VerifyOptions:
    unknown = set(doc) - {"providers", "endpoints", "rate_per_second", "timeout_seconds"}
    if unknown:
        raise ConfigError(f"{path}: verify: unknown keys {sorted(unknown)}")
    providers = frozenset(str(p) for p in doc.get("providers") or VERIFIER_NAMES)
    endpoints = {str(k): str(v) for k, v in _mapping(doc.get("endpoints"), "verify.endpoints", path).items()}
    if providers - VERIFIER_NAMES or set(endpoints) - VERIFIER_NAMES:
        raise ConfigError(f"{path}: verify: unknown providers (known: {', '.join(sorted(VERIFIER_NAMES))})")
    return VerifyOptions(
        providers, endpoints, float(doc.get("rate_per_second", 5.0)), float(doc.get("timeout_seconds", 10.0))
    )


def _mapping(value: Any, name: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {name} must be a mapping")
    return value
