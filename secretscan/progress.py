"""tqdm bars over layers' bytes, on a terminal only."""

from __future__ import annotations

import shutil
import sys

from tqdm import tqdm

from secretscan.scan import Progress
from secretscan.sweep.run import SweepProgress
from secretscan.terminal import terminal_safe


class TqdmProgress(Progress):
    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._layers = 0

    def start_image(self, name: str, total_bytes: int, layers: int) -> None:
        self._layers = layers
        # A terminal that reports a 0x0 size (a bare pty, some CI consoles) makes tqdm draw nothing.
        size = shutil.get_terminal_size(fallback=(100, 24))
        self._bar = tqdm(
            total=total_bytes or None,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"{terminal_safe(name)} ({layers} layers)",  # the image name comes from the user or a registry
            file=sys.stderr,
            leave=False,
            ncols=size.columns or 100,
            nrows=size.lines or 24,
        )

    def start_layer(self, index: int) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"layer {index + 1}/{self._layers}")

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def end_image(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(quiet: bool) -> Progress:
    return TqdmProgress() if not quiet and sys.stderr.isatty() else Progress()


class TqdmSweepProgress(SweepProgress):
    """One bar per sweep phase (repositories' manifests, then unique layers)."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def phase(self, name: str, total: int) -> None:
        self.done()
        size = shutil.get_terminal_size(fallback=(100, 24))
        self._bar = tqdm(
            total=total,
            desc=name,
            unit="",
            file=sys.stderr,
            leave=False,
            ncols=size.columns or 100,
            nrows=size.lines or 24,
        )

    def step(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_sweep_progress(quiet: bool) -> SweepProgress:
    return TqdmSweepProgress() if not quiet and sys.stderr.isatty() else SweepProgress()
