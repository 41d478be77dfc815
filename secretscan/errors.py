"""Error types. Each names the object it is about; the CLI prints ``str(error)`` as one line and exits 2."""

from __future__ import annotations

from collections.abc import Iterator


class SecretScanError(Exception):
    """Base of every error the CLI reports as a one-line message (exit 2)."""


class UsageError(SecretScanError):
    """The command line or the input reference is wrong."""


class ConfigError(SecretScanError):
    """``secretscan.yaml`` or a baseline file is unreadable or invalid."""


class RuleError(SecretScanError):
    """A rule file is invalid: the run would be meaningless, so it stops."""


class SourceError(SecretScanError):
    """The image cannot be opened or read: not an image, a missing blob, a corrupt archive."""


class OutputError(SecretScanError):
    """A file secretscan was told to write (report, baseline, record) cannot be written safely."""


class TimeLimitReached(SecretScanError):
    """The run's ``--timeout`` ran out: what was found so far is reported, what was not reached is listed."""


class TransferStalled(SourceError):
    """A registry or token service sent too little for too long (a trickle or a silent peer)."""


class SourceLimitReached(SourceError):
    """A part of a source lies past a safety limit (image indexes nested too deep): that part is
    listed as not scanned, and the rest of the source is scanned."""


class BlobOverrun(SourceError):
    """A blob ran past the size its descriptor gives. Raised once the declared bytes have been
    handed on, so a reader can still check them against the digest."""


def causes(exc: BaseException, most: int = 32) -> Iterator[BaseException]:
    """``exc`` and what lies under it (causes, contexts, a ``reason``, exceptions among its
    arguments), each once and at most ``most``: where the OS error hides under the wrappers of
    requests, urllib3 and the docker SDK, whose own text runs to hundreds of characters."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < most:
        cause = todo.pop()
        if any(cause is s for s in seen):
            continue
        seen.append(cause)
        yield cause
        linked = (cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args)
        todo.extend(x for x in linked if isinstance(x, BaseException))
