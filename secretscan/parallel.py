"""Layers on several cores: forked workers (no pickling of the engine or the image; each worker
inherits them), each given a share of the layers by size, results merged back in layer order.

Forking is safe here because layer readers open their own file handles (``TarBlobs`` slices,
OCI blob files) and nothing is shared but read-only state. Sources that hold network sessions or
streams are scanned in the parent, one layer after another.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def fork_map(
    func: Callable[[int], T],
    count: int,
    weights: Sequence[int],
    workers: int,
    on_error: Callable[[int, str], T],
    on_done: Callable[[int], None] = lambda i: None,
) -> list[T]:
    """``[func(0), …, func(count - 1)]`` computed in up to ``workers`` forked processes.

    A worker that raises or dies turns each of its items into ``on_error(index, reason)``: one
    layer's failure never loses the others. Longest items are placed first, each on the least
    loaded worker (LPT), since one big base layer usually dominates."""
    if workers <= 1 or count <= 1 or not hasattr(os, "fork"):
        out = []
        for i in range(count):
            out.append(func(i))
            on_done(i)
        return out
    shares: list[list[int]] = [[] for _ in range(min(workers, count))]
    loads = [0] * len(shares)
    for i in sorted(range(count), key=lambda i: -(weights[i] or 0)):
        k = loads.index(min(loads))
        shares[k].append(i)
        loads[k] += max(weights[i] or 0, 1)
    children = []
    for share in shares:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(read_fd)
            try:
                payload = pickle.dumps(("ok", [(i, func(i)) for i in share]), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent as this share's error
                payload = pickle.dumps(("error", f"{type(exc).__name__}: {str(exc)[:200]}"))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            os._exit(0)
        os.close(write_fd)
        children.append((pid, read_fd, share))
    results: dict[int, T] = {}
    for pid, read_fd, share in children:
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        done: dict[int, T] = {}
        reason = f"worker process ended abnormally (wait status {status})"
        try:
            kind, payload = pickle.loads(data)
            if kind == "ok":
                done = dict(payload)
            else:
                reason = str(payload)
        except Exception:  # noqa: BLE001, S110 - a worker killed mid-write (out of memory, signal)
            pass
        for i in share:
            results[i] = done[i] if i in done else on_error(i, reason)
            on_done(i)
    return [results[i] for i in range(count)]
