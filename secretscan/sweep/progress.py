"""What a sweep tells a display, apart from the sweep itself: the CLI makes its progress display
at every start, and ``sweep.run`` brings the registry client (requests, urllib3) with it, which
a scan of a local image never uses."""

from __future__ import annotations


class SweepProgress:
    """What the sweep tells a display; the default shows nothing."""

    def phase(self, name: str, total: int) -> None: ...
    def step(self, n: int = 1) -> None: ...
    def done(self) -> None: ...
