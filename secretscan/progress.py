"""tqdm bars over an image's layers (stored bytes, or files of a plain directory), on a terminal only.

tqdm is imported when a bar is made: it loads ``importlib.metadata`` (and ``email``) for its
version, some 15 ms of every start, which a run without a terminal (CI) never needs.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING

from secretscan.scan import Progress, ProgressUnit
from secretscan.sweep.progress import SweepProgress
from secretscan.terminal import terminal_safe

if TYPE_CHECKING:
    from tqdm import tqdm


class TqdmProgress(Progress):
    """One bar per image, drawn only by the process that started it: a forked layer worker holds
    a copy of the bar, and a copy that drew would show its own count over the parent's (the bar
    went backwards). Its position never decreases and its total never falls below it."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._owner = 0
        """The process that draws the bar."""
        self._layers = 0
        self._layers_done = 0

    def start_image(self, name: str, total: int | None, layers: int, unit: ProgressUnit = ProgressUnit.BYTES) -> None:
        from tqdm import tqdm

        self.end_image()
        self._owner = os.getpid()
        self._layers, self._layers_done = layers, 0
        counts_bytes = unit is ProgressUnit.BYTES
        # A terminal that reports a 0x0 size (a bare pty, some CI consoles) makes tqdm draw nothing.
        size = shutil.get_terminal_size(fallback=(100, 24))
        self._bar = tqdm(
            total=total or None,
            unit="B" if counts_bytes else " files",
            unit_scale=counts_bytes,
            unit_divisor=1024,
            # the image name comes from the user or a registry; a directory is one layer, and a
            # stream (stdin) names its layers only as they come: neither count is worth saying
            desc=f"{terminal_safe(name)} ({layers} layers)" if counts_bytes and layers else terminal_safe(name),
            file=sys.stderr,
            leave=False,
            ncols=size.columns or 100,
            nrows=size.lines or 24,
        )

    def _drawn(self) -> tqdm | None:
        return self._bar if self._owner == os.getpid() else None

    def advance(self, amount: int) -> None:
        bar = self._drawn()
        if bar is None or amount <= 0:
            return
        if bar.total is not None and bar.n + amount > bar.total:  # a source that said less than it gave
            bar.total = bar.n + amount
        bar.update(amount)

    def layer_done(self) -> None:
        bar = self._drawn()
        if bar is None:
            return
        self._layers_done += 1
        if self._layers > 1 and self._layers_done <= self._layers:
            bar.set_postfix_str(f"{self._layers_done}/{self._layers} layers")

    def end_image(self) -> None:
        bar, self._bar = self._drawn(), None
        if bar is not None:
            bar.refresh()  # its last state, even when the last update came sooner than tqdm redraws
            bar.close()


def make_progress(quiet: bool) -> Progress:
    return TqdmProgress() if not quiet and sys.stderr.isatty() else Progress()


class TqdmSweepProgress(SweepProgress):
    """One bar per sweep phase (repositories' manifests, then unique layers)."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def phase(self, name: str, total: int) -> None:
        from tqdm import tqdm

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
