"""What a build is made of: file specs, layer plans, planted secrets, and the shared build state.

These types sit between the planners (synth.layers), which decide what files a layer holds, and
the writer (synth.tarwrite), which streams them: a FileSpec holds a deferred `produce` so content
is generated only when its member is written, one big file in memory at a time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .params import SHARES
from .pools import Pools
from .values import sha256_hex


@dataclass
class Streamed:
    """A file too big to hold: its exact size and its content in chunks."""

    size: int
    chunks: Iterator[bytes]


Content = bytes | Streamed


@dataclass
class FileSpec:
    """One tar member of a layer; `produce` runs only when the member is written (streaming)."""

    path: str
    produce: Callable[[], Content]
    mode: int = 0o644
    kind: str = "other"  # content category, for the composition summary
    whiteout: bool = False


@dataclass
class LayerPlan:
    created_by: str
    files: list[FileSpec]


@dataclass
class Planted:
    value: str
    kind: str
    where: str

    def record(self) -> dict[str, str]:
        return {"sha256": sha256_hex(self.value.encode()), "kind": self.kind, "where": self.where}


@dataclass
class LayerResult:
    created_by: str
    blob: Path
    diff_id: str
    digest: str
    size: int
    uncompressed_size: int
    files: int
    seconds: float


@dataclass
class Build:
    """State shared by the layer planners: the target, what has been written, what was planted."""

    pools: Pools
    seed: int
    target: int
    layer: int = 0  # index of the layer being planned
    written: int = 0  # uncompressed bytes of the layers written so far
    planted: list[Planted] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    gh_token: str = ""  # the ARG value, which docker also records in the next RUN line
    big: list[tuple[str, int]] = field(default_factory=list)  # (kind, size) of the big files

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}/{name}")

    def budget(self, share: str, fraction: float = 1.0) -> int:
        return int(self.target * SHARES[share] * fraction)

    def plant(self, value: str, kind: str, where: str) -> str:
        """Record a planted secret; `where` is prefixed with the current layer unless it names one."""
        self.planted.append(
            Planted(value, kind, where if where.startswith("config") else f"layer {self.layer}: {where}")
        )
        return value

    def secret_seed(self, n: int) -> int:
        return self.seed * 1000 + n


class Files:
    """Collects the members of one layer.

    `add` stores small content as is. `gen` defers generation to the moment the member is
    written, with a random.Random seeded from (seed, key), the key being the path unless given:
    content does not depend on generation order, and only one big file is in memory at a time."""

    def __init__(self, build: Build, kind: str) -> None:
        self.build, self.kind, self.specs = build, kind, list[FileSpec]()

    def add(self, path: str, data: bytes | str, mode: int = 0o644, kind: str | None = None) -> None:
        blob = data.encode() if isinstance(data, str) else data
        self.specs.append(FileSpec(path, lambda: blob, mode, kind or self.kind))

    def gen(
        self,
        path: str,
        make: Callable[[random.Random], Content],
        mode: int = 0o644,
        kind: str | None = None,
        key: str = "",
    ) -> None:
        rng_name = "file/" + (key or path)
        build = self.build
        self.specs.append(FileSpec(path, lambda: make(build.rng(rng_name)), mode, kind or self.kind))

    def whiteout(self, path: str) -> None:
        self.specs.append(FileSpec(path, lambda: b"", whiteout=True))

    def __contains__(self, path: str) -> bool:
        return any(f.path == path for f in self.specs)

    def __iadd__(self, other: Files) -> Files:
        self.specs += other.specs
        return self
