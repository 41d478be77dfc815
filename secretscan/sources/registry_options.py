"""What a registry source may do (retries, TLS, platform) and the guard on its transfers: plain
values the CLI and the API build before any work.

They live apart from the HTTP code (``registry``, ``transfer``), which imports requests and urllib3
(with http.client, ssl and email): a scan of a local image names these options but never speaks
HTTP, and should not pay for loading an HTTP stack before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from secretscan.deadline import Deadline


@dataclass(frozen=True)
class TransferPolicy:
    read_timeout: float = 30.0
    """The longest single wait for the peer (also the connect + TLS handshake budget)."""
    stall_seconds: float = 30.0
    """Length of the window (of waiting time) over which throughput is judged."""
    min_bytes_per_second: int = 1024
    """Below this, averaged over a window, a transfer has stalled."""
    deadline: Deadline = field(default_factory=Deadline)


@dataclass(frozen=True)
class RegistryOptions:
    timeout_seconds: float = 30.0
    retries: int = 4
    backoff_seconds: float = 0.5
    max_retry_after_seconds: float = 60.0
    insecure_registries: tuple[str, ...] = ()
    """Registries that may be reached without TLS verification or over plain HTTP (loopback ones
    always may, as in Docker): HTTPS is tried first, unverified, then HTTP."""
    tls_verify: bool = False
    """Require verified HTTPS even for loopback and insecure registries."""
    platform: str | None = None
    """``os/arch[/variant]``; None means the host's."""
    all_platforms: bool = False
    stall_seconds: float = 30.0
    """A transfer that receives under ``min_bytes_per_second`` over this much waiting time is stopped."""
    min_bytes_per_second: int = 1024
    deadline: Deadline = field(default_factory=Deadline)
    """The run's ``--timeout``: every wait for a registry ends by then."""

    @property
    def transfer_policy(self) -> TransferPolicy:
        return TransferPolicy(
            read_timeout=self.timeout_seconds,
            stall_seconds=self.stall_seconds,
            min_bytes_per_second=self.min_bytes_per_second,
            deadline=self.deadline,
        )
