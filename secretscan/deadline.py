"""The run's wall-clock budget (``--timeout``): one absolute point in time, fixed when the run
starts and handed to every part that waits or works in a loop (transfers, the layer walker).

It is a value, not a clock that runs: ``time.monotonic`` is system-wide, so a forked layer worker
that inherits it stops at the same moment as its parent. A part that runs out records what it did
not finish and the run ends with a partial report (exit 2), never a silent clean result.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from secretscan.errors import TimeLimitReached, UsageError


@dataclass(frozen=True, slots=True)
class Deadline:
    seconds: float | None = None
    """What the user asked for (for messages); None: no limit."""
    at: float | None = None
    """``time.monotonic()`` value at which the budget is spent."""

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        if seconds is None:
            return cls()
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float | None:
        """Seconds left (0 when spent), or None without a limit."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self) -> None:
        """Raise ``TimeLimitReached`` once the budget is spent (cheap: call it in loops)."""
        if self.at is not None and time.monotonic() >= self.at:
            raise TimeLimitReached(self.describe())

    def describe(self) -> str:
        return f"the --timeout of {_seconds(self.seconds or 0)} ran out"


NO_DEADLINE = Deadline()
"""The default everywhere a deadline is optional: never expires."""


def _seconds(value: float) -> str:
    return f"{value:g} s"


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h`` or ``1h30m`` -> seconds (as trivy's ``--timeout`` reads them)."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not parts or not text.strip() or not any(parts.groups()):
        raise UsageError(f"{text!r}: expected a duration such as 90, 90s, 15m, 2h or 1h30m")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UsageError(f"{text!r}: a duration must be more than zero")
    return total
