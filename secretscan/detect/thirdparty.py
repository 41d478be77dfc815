"""Which paths of an image are an installed package's documentation, examples or tests.

Most of what an image scanner reports on a real image is published material that ships with the
packages it installs: awscli's 5,800 example pages, READMEs, test fixtures. A value seen only there
is the same in every image with that package, so the report lists it with the published test keys
(``patterns/third-party.yaml`` says where; findings decide in ``findings.aggregate``). Only paths
below a package root or a documentation root qualify, never an application's own tree.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secretscan.detect.rules import load_yaml
from secretscan.errors import RuleError

THIRD_PARTY_FILE = "third-party.yaml"
_LISTS = ("package_roots", "doc_roots", "example_dirs", "document_files", "test_files")


@dataclass(frozen=True, slots=True)
class ThirdPartyPaths:
    package_roots: tuple[str, ...] = ()
    doc_roots: tuple[str, ...] = ()
    example_dirs: frozenset[str] = frozenset()
    document_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()

    @classmethod
    def load(cls, dirs: Iterable[Path]) -> ThirdPartyPaths:
        """The union of every rule directory's ``third-party.yaml``."""
        merged: dict[str, list[str]] = {name: [] for name in _LISTS}
        for directory in dirs:
            path = directory / THIRD_PARTY_FILE
            if not path.is_file():
                continue
            try:
                doc: Any = load_yaml(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise RuleError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
            if not isinstance(doc, dict) or set(doc) - {"version", *_LISTS}:
                raise RuleError(f"{path}: expected a mapping with version and {', '.join(_LISTS)}")
            for name in _LISTS:
                values = doc.get(name) or []
                if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                    raise RuleError(f"{path}: {name} must be a list of non-empty strings")
                merged[name].extend(values)
        return cls(
            package_roots=tuple(merged["package_roots"]),
            doc_roots=tuple(merged["doc_roots"]),
            example_dirs=frozenset(merged["example_dirs"]),
            document_files=tuple(merged["document_files"]),
            test_files=tuple(merged["test_files"]),
        )

    def identity(self) -> str:
        """For cache keys: changes whenever a classification could."""
        return repr(
            (self.package_roots, self.doc_roots, sorted(self.example_dirs), self.document_files, self.test_files)
        )

    def describe(self, path: str) -> str | None:
        """Why ``path`` is published material (``documentation of the installed package awscli``),
        or None for everything else. Nested archive members (``x.jar!/docs/a.md``) count by their
        full path."""
        path = "/" + path.replace("!/", "/").lstrip("/")
        for root in self.doc_roots:
            if path.startswith(root):
                return f"documentation installed under {root.rstrip('/')}"
        for root in self.package_roots:
            at = path.rfind("/" + root.strip("/") + "/")
            if at < 0:
                continue
            rest = path[at + len(root.strip("/")) + 2 :].split("/")
            width = 2 if rest[0].startswith("@") else 1  # npm scopes: @aws-sdk/client-s3
            package, inside = "/".join(rest[:width]), rest[width:]
            if not package or not inside:
                continue
            name = inside[-1]
            if any(part in self.example_dirs for part in inside[:-1]):
                return f"examples, docs or tests of the installed package {package}"
            if any(fnmatch.fnmatchcase(name, p) for p in self.test_files):
                return f"tests of the installed package {package}"
            if any(fnmatch.fnmatchcase(name, p) for p in self.document_files):
                return f"documentation of the installed package {package}"
        return None
