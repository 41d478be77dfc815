"""Error types. Each names the object it is about; the CLI prints ``str(error)`` as one line and exits 2."""

from __future__ import annotations


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
