"""Credentials published as examples or test fixtures (vendor docs, RFCs, library test suites).

Real images carry them in site-packages, node_modules and /usr/share. They are recognised by
fingerprint from ``patterns/known-test-keys.yaml`` — deterministic, no guessing from paths — and
reported as informational, never silently dropped.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from secretscan.detect.rules import load_yaml
from secretscan.detect.thirdparty import ThirdPartyPaths
from secretscan.errors import RuleError

KNOWN_KEYS_FILE = "known-test-keys.yaml"
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.S)


def normalise(value: str) -> str:
    """PEM blocks: the base64 body without header lines or whitespace; tokens: stripped of quotes."""
    block = _PEM.search(value)
    if block:
        body = [ln for ln in block.group(1).splitlines() if ":" not in ln]
        return "".join("".join(body).split())
    return value.strip(string.whitespace + "\"'")


def known_key_fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(normalise(value).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KnownKeys:
    sources: dict[str, str]
    """fingerprint -> where the value is published."""
    third_party: ThirdPartyPaths = field(default_factory=ThirdPartyPaths)
    """Where installed packages keep docs, examples and tests: what is seen only there is published too."""

    def lookup(self, secret: str) -> str | None:
        return self.sources.get(known_key_fingerprint(secret)) if self.sources else None

    @classmethod
    def load(cls, dirs: list[Path]) -> KnownKeys:
        sources: dict[str, str] = {}
        for directory in dirs:
            path = directory / KNOWN_KEYS_FILE
            if not path.is_file():
                continue
            try:
                doc = load_yaml(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise RuleError(f"{path}: cannot read known test keys ({str(exc).splitlines()[0]})") from None
            for item in doc.get("keys") or []:
                if isinstance(item, dict) and str(item.get("fingerprint", "")).startswith("sha256:"):
                    where = str(item.get("where") or "")
                    sources[str(item["fingerprint"])] = str(item.get("source") or "published test key") + (
                        f" ({where})" if where else ""
                    )
        return cls(sources, ThirdPartyPaths.load(dirs))
