"""Every byte a registry, its blob storage or its token service sends passes one guard.

A hostile server need not send much to hold a scan forever: one byte every two seconds keeps a
per-read timeout from ever firing, in the headers as well as in a body. So the guard sits on the
socket itself (a thin wrapper below ``http.client``), where it sees every read of every request:

* **stall rule**: time spent *waiting* for the peer is counted; when the last ``stall_seconds`` of
  waiting brought fewer than ``min_bytes_per_second`` per second, the transfer ends
  (``TransferStalled``). Time the scanner spends working between reads does not count, so a slow
  scan of a big file never looks like a slow server.
* **deadline**: the run's ``--timeout`` bounds every wait (``TimeLimitReached``);
* **connect**: TCP connect and TLS handshake together get one read timeout at most (a timer shuts
  the socket down; a handshake cannot be trickled either).

The guard raises exceptions that are not ``OSError``, so urllib3 and requests pass them through
untouched (no retries, no wrapping): the caller labels them with what was being fetched.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections import deque
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from secretscan.errors import TimeLimitReached, TransferStalled
from secretscan.sources.registry_options import TransferPolicy


def guarded_session(policy: TransferPolicy) -> requests.Session:
    """A requests session whose every connection is guarded by ``policy``."""
    session = requests.Session()
    adapter = _GuardedAdapter(policy)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _Meter:
    """Waiting time and bytes of one connection's current request, judged over a sliding window of
    the last ``stall_seconds`` of waiting: a burst at the start (headers, a first file) cannot buy
    a trickle that follows more than one window of credit."""

    TICKS = 4
    """Waits are cut into this many pieces per window, so a silent peer is judged on time."""
    RESOLUTION = 32
    """Samples kept per window (the window is that much coarser, never shorter)."""

    def __init__(self, policy: TransferPolicy) -> None:
        self.policy = policy
        self.reset()

    def reset(self) -> None:
        self.waited = 0.0
        self.received = 0
        self._samples: deque[tuple[float, int]] = deque([(0.0, 0)])
        """(waited, received) so far, oldest first; the first is at or before the window's start."""
        self._bound = "read"

    def next_timeout(self) -> float:
        """How long the next receive may wait: the read timeout, a tick of the stall window or the
        rest of the run, whichever ends first (remembered, to tell which one fired)."""
        deadline = self.policy.deadline
        deadline.check()
        limits = {
            "read": self.policy.read_timeout,
            "tick": self.policy.stall_seconds / self.TICKS,
            "deadline": deadline.remaining(),
        }
        self._bound, wait = min(((k, v) for k, v in limits.items() if v is not None), key=lambda kv: kv[1])
        return max(0.01, wait)

    def account(self, waited: float, received: int, timed_out: bool = False) -> bool:
        """Add one receive's wait and bytes; raise when the run's time is up or the last window of
        waiting brought less than the minimum. True when a timed-out wait was only a tick of the
        window (not the read timeout): wait again."""
        self.waited += waited
        self.received += received
        if timed_out and self._bound == "deadline":
            raise TimeLimitReached(self.policy.deadline.describe())
        self.policy.deadline.check()
        window = self.policy.stall_seconds
        samples = self._samples
        if self.waited - samples[-1][0] >= window / self.RESOLUTION:
            samples.append((self.waited, self.received))
        if self.waited >= window:
            start = self.waited - window
            while len(samples) > 1 and samples[1][0] <= start:
                samples.popleft()
            in_window = self.received - samples[0][1]
            if in_window < self.policy.min_bytes_per_second * window:
                raise TransferStalled(
                    f"transfer stalled: {in_window} bytes in the last {window:g} s of waiting "
                    f"(under {self.policy.min_bytes_per_second} bytes/s)"
                )
        return timed_out and self._bound == "tick"


class _GuardedSocket:
    """The connection's socket, metered on every receive; everything else is passed through.

    ``makefile`` and the reference counting mirror ``socket.socket``'s, because ``http.client``
    closes the connection's socket while a response still reads from the file it made."""

    def __init__(self, sock: Any, meter: _Meter) -> None:
        self._sock, self._meter = sock, meter
        self._io_refs = 0
        self._closed = False

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        while True:
            self._sock.settimeout(self._meter.next_timeout())
            started = time.monotonic()
            try:
                n = self._sock.recv_into(buffer, nbytes, flags)
            except TimeoutError:
                if self._meter.account(time.monotonic() - started, 0, timed_out=True):
                    continue  # a tick of the stall window, which passed: keep waiting
                raise
            self._meter.account(time.monotonic() - started, n)
            return int(n)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        buffer = bytearray(bufsize)
        n = self.recv_into(buffer, bufsize, flags)
        return bytes(buffer[:n])

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_: Any) -> Any:
        if mode not in ("r", "rb"):
            return self._sock.makefile(mode, buffering)
        self._io_refs += 1
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]
        return io.BufferedReader(raw, buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE)

    def _decref_socketios(self) -> None:
        self._io_refs = max(0, self._io_refs - 1)
        if self._closed and self._io_refs == 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._io_refs == 0:
            self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _GuardedConnection:
    """Mixed into urllib3's connection classes: meter the socket, bound connect + handshake."""

    transfer_policy: TransferPolicy  # set on the per-policy subclasses

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._meter = _Meter(self.transfer_policy)
        self._raw_socket: Any = None

    def _new_conn(self) -> Any:
        self._raw_socket = super()._new_conn()  # type: ignore[misc]
        return self._raw_socket

    def connect(self) -> None:
        policy = self.transfer_policy
        policy.deadline.check()
        left = policy.deadline.remaining()
        budget = policy.read_timeout if left is None else min(policy.read_timeout, left)
        timer = threading.Timer(budget, self._abort_connect)
        timer.daemon = True
        timer.start()
        try:
            super().connect()  # type: ignore[misc]
        finally:
            timer.cancel()
        self.sock = _GuardedSocket(self.sock, self._meter)  # type: ignore[has-type]

    def _abort_connect(self) -> None:
        sock = self._raw_socket
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing to stop
                sock.shutdown(socket.SHUT_RDWR)

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._meter.reset()
        super().request(*args, **kwargs)  # type: ignore[misc]


def _pool_classes(policy: TransferPolicy) -> dict[str, type[HTTPConnectionPool]]:
    attrs = {"transfer_policy": policy}
    plain = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), attrs)
    tls = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), attrs)
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, policy: TransferPolicy) -> None:
        self._pool_classes = _pool_classes(policy)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # HTTP(S) proxies; SOCKS managers keep their own pools
            manager.pool_classes_by_scheme = self._pool_classes
        return manager
