"""Where the detection stack's compiled artefacts live: the Hyperscan databases, the memo of the
values the rule pack publishes, which rules are self-identifying (``detect.scope``), and the rule
files as parsed (``rules._parsed``).

They take up to seconds to compute and depend only on the rule set (and the Hyperscan version), so they
are computed once and read back. Two places are read, in order:

* the **shipped** directory inside the package (``secretscan/data/prebuilt``), written when the
  wheel is built (``setup.py``) or, in a checkout, by ``make install``: a fresh ``pip install``, a
  container image and a CI runner with an empty cache start warm with the built-in rules;
* the **cache** directory (``--cache-dir``, ``SECRETSCAN_CACHE_DIR``, else the user's cache),
  where whatever had to be computed is kept: the user's own rules, or a shipped database this CPU
  cannot load.

Each artefact's name carries a digest of everything it was computed from, so a stale or foreign
file is never used, only missed; the shipped directory is never written at run time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretscan.errors import OutputError
from secretscan.safewrite import write_file

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "data" / "prebuilt"
ARTEFACT_PATTERNS = ("hyperscan-*.db", "published-*.json", "scope-*.json", "rulefiles-*.json")
"""The names artefacts are kept under (each with its key in place of ``*``)."""
MAX_ARTEFACT_BYTES = 256 * 1024 * 1024
"""A compiled database of the built-in rules is a few MiB; a file past this is not ours."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "secretscan"


@dataclass(frozen=True)
class ArtefactStore:
    """Reads an artefact from the shipped directory, then the cache; writes only to the cache."""

    cache_dir: Path
    shipped_dir: Path | None = SHIPPED_DIR

    def found(self, name: str) -> Iterator[tuple[bytes, Path]]:
        """The artefact's bytes and where they came from, shipped copy first: a caller that cannot
        use one (a database built for another CPU) goes on to the next."""
        for directory in (self.shipped_dir, self.cache_dir):
            if directory is None:
                continue
            try:
                with (directory / name).open("rb") as handle:
                    data = handle.read(MAX_ARTEFACT_BYTES + 1)
            except OSError:
                continue
            if len(data) <= MAX_ARTEFACT_BYTES:
                yield data, directory / name

    def found_json(self, name: str) -> Iterator[Any]:
        """Each copy of a JSON artefact that parses, shipped copy first; what it must hold is the
        caller's to check (a copy that does not is passed over like a damaged one)."""
        for raw, _ in self.found(name):
            try:
                yield json.loads(raw)
            except ValueError:
                continue

    def write(self, name: str, data: bytes) -> None:
        """Keep ``data`` in the cache; a cache that cannot be written only costs time next run."""
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_file(self.cache_dir / name, data)
        except (OSError, OutputError):
            pass
