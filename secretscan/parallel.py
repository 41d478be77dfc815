"""Layers on several cores: forked workers (no pickling of the engine or the image; each worker
inherits them) that take the next layer as soon as they finish one, biggest layers first, with
results merged back in layer order.

Forking is safe here because layer readers open their own file handles (``TarBlobs`` slices,
OCI blob files, memory files read with ``pread``) and nothing is shared but read-only state. What
arrives over a network session or a stream is read in the parent only: held in memory first
(``image.spool``, ``streamlayers``), or scanned there as it passes. ``fork_call`` runs one call in
a child while the parent goes on (a stream's batch of held layers while the stream is read on).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item of work, sent pickled to a worker


def _nothing() -> None:
    """``fork_map``'s default ``meanwhile``."""


def _no_more(index: int, result: object) -> None:
    """``fork_map``'s default ``on_done``: nothing to tell, no item to add."""


def fork_map(
    func: Callable[[I], T],
    items: Sequence[I],
    weights: Sequence[int],
    workers: int,
    on_error: Callable[[int, str], T],
    on_done: Callable[[int, T], Sequence[tuple[I, int]] | None] = _no_more,
    meanwhile: Callable[[], object] = _nothing,
) -> list[T]:
    """``[func(item) for item in items]`` computed in up to ``workers`` forked processes.

    Work is handed out one item at a time, heaviest first, so a worker stuck on a big layer does
    not hold back the rest. An item whose worker raises or dies becomes ``on_error(index,
    reason)``: one layer's failure never loses the others. ``on_done`` hears each result as it
    comes (by the item's index) and may add items, with their weights: they are handed out with
    the rest (the pieces of a layer only a finished item could cut), take the next indices, and
    their results are returned after the others'. Items go to the workers pickled (the workers
    were forked before the added ones existed); what a worker needs besides is what it inherited.
    ``meanwhile`` runs in this process, on a thread of its own, once the workers are forked and
    have their first items (before any item when there are no workers; a single item is forked
    only to run beside a ``meanwhile``): items are still handed out while it runs (a worker done
    with its first would otherwise wait for it). Should it raise, the workers are stopped and the
    error goes on."""
    count = len(items)
    if workers <= 1 or count == 0 or (count == 1 and meanwhile is _nothing) or not hasattr(os, "fork"):
        meanwhile()
        out: list[T] = []
        pending = list(items)
        while len(out) < len(pending):
            out.append(func(pending[len(out)]))
            pending.extend(item for item, _ in on_done(len(out) - 1, out[-1]) or ())
        return out
    work = _Work(list(items), list(weights))
    results: dict[int, T] = {}
    busy: dict[int, tuple[int, int, int]] = {}  # result fd -> (pid, task fd, index)
    idle: list[tuple[int, int, int]] = []  # (result fd, pid, task fd)
    for _ in range(min(workers, count)):
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(task_w)
            os.close(result_r)
            _work(func, task_r, result_w)
        os.close(task_r)
        os.close(result_w)
        index = work.next()
        _send(task_w, work.items[index])
        busy[result_r] = (pid, task_w, index)
    # on a thread started only now, and over before fork_map returns: no fork happens while it runs
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="secretscan-meanwhile") as beside:
        running = beside.submit(meanwhile)
        try:
            _hand_out(busy, idle, work, results, on_error, on_done, running)
        except BaseException:  # meanwhile failed, an interrupt, a callback raised: no worker outlives it
            for fd, pid, task_w in [(fd, pid, task_w) for fd, (pid, task_w, _) in busy.items()] + idle:
                os.kill(pid, signal.SIGKILL)
                _finish(pid, task_w, fd)
            raise
        running.result()
    while work.queue:  # only when every worker died early
        index = work.next()
        results[index] = on_error(index, "no worker left to scan it")
        for item, weight in on_done(index, results[index]) or ():
            work.add(item, weight)
    return [results[i] for i in range(len(work.items))]


class _Work(Generic[I]):
    """``fork_map``'s items, and the indices of those not yet handed out, heaviest first."""

    def __init__(self, items: list[I], weights: list[int]) -> None:
        self.items = items
        self.weights = weights
        self.queue = sorted(range(len(items)), key=lambda i: -(weights[i] or 0))

    def next(self) -> int:
        return self.queue.pop(0)

    def add(self, item: I, weight: int) -> None:
        self.items.append(item)
        self.weights.append(weight)
        index = len(self.items) - 1
        at = next((n for n, i in enumerate(self.queue) if (self.weights[i] or 0) < (weight or 0)), len(self.queue))
        self.queue.insert(at, index)


_POLL = 0.05
"""Seconds between looks at whether ``meanwhile`` failed, while it runs."""


def _hand_out(
    busy: dict[int, tuple[int, int, int]],
    idle: list[tuple[int, int, int]],
    work: _Work[I],
    results: dict[int, T],
    on_error: Callable[[int, str], T],
    on_done: Callable[[int, T], Sequence[tuple[I, int]] | None],
    meanwhile: Future[object],
) -> None:
    """``fork_map``'s loop: each result read as it comes and the worker given the next item; raises
    what ``meanwhile`` raised as soon as it has. A worker stays in ``busy`` until its message is
    read, and then in ``idle`` (result fd, pid, task fd), so that whatever ends the loop early
    stops it. A worker with nothing to do while others still work waits there (not stopped) for
    the items their results may add."""
    while busy:
        ready, _, _ = select.select(list(busy), [], [], None if meanwhile.done() else _POLL)
        if meanwhile.done():
            meanwhile.result()
        for fd in ready:
            pid, task_w, index = busy[fd]
            message = _read_message(fd)
            del busy[fd]
            if message is None:  # the worker died (out of memory, a signal): its item is lost
                _finish(pid, task_w, fd)
                results[index] = on_error(index, "worker process ended abnormally")
            else:
                kind, payload = message
                results[index] = payload if kind == "ok" else on_error(index, str(payload))  # type: ignore[assignment]
                idle.append((fd, pid, task_w))
            for item, weight in on_done(index, results[index]) or ():
                work.add(item, weight)
            while idle and work.queue:
                fd_idle, pid_idle, task_idle = idle.pop()
                following = work.next()
                _send(task_idle, work.items[following])
                busy[fd_idle] = (pid_idle, task_idle, following)
    while idle:  # no item left, and none can come: the workers stop
        fd, pid, task_w = idle.pop()
        os.write(task_w, struct.pack("!Q", 0))
        _finish(pid, task_w, fd)


def _send(task_w: int, item: object) -> None:
    payload = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(task_w, struct.pack("!Q", len(payload)) + payload)


class Forked(Generic[T]):
    """A call running in a forked child (``fork_call``) while this process goes on."""

    def __init__(self, pid: int, result_r: int, on_error: Callable[[str], T]) -> None:
        self._pid, self._fd, self._on_error = pid, result_r, on_error

    def result(self) -> T:
        """Its value, once the child has given it (waits for it); ``on_error(reason)`` if the call
        raised or the child died."""
        try:
            message = _read_message(self._fd)
        finally:
            os.close(self._fd)
            os.waitpid(self._pid, 0)
        if message is None:
            return self._on_error("worker process ended abnormally")
        kind, payload = message
        return payload if kind == "ok" else self._on_error(str(payload))  # type: ignore[return-value]

    def cancel(self) -> None:
        """Stop the child and reap it (the run is ending without its value)."""
        os.kill(self._pid, signal.SIGKILL)
        os.close(self._fd)
        os.waitpid(self._pid, 0)


def fork_call(func: Callable[[], T], on_error: Callable[[str], T]) -> Forked[T] | None:
    """``func()`` in a forked child, this process going on meanwhile; None where processes cannot
    be forked. The value comes back pickled, as ``fork_map``'s do."""
    if not hasattr(os, "fork"):
        return None
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(result_r)
        try:
            _answer(result_w, func)
        finally:
            os._exit(0)
    os.close(result_w)
    return Forked(pid, result_r, on_error)


def _work(func: Callable[[I], object], task_r: int, result_w: int) -> None:  # pragma: no cover - child
    try:
        while True:
            header = _read_exact(task_r, 8)
            if header is None:
                break
            size = struct.unpack("!Q", header)[0]
            body = _read_exact(task_r, size) if size else None
            if body is None:
                break  # the stop message (an empty one), or the parent went away
            item = pickle.loads(body)  # noqa: S301 - from the parent that forked this process
            _answer(result_w, lambda: func(item))  # noqa: B023 - called at once
    finally:
        os._exit(0)


def _answer(result_w: int, call: Callable[[], object]) -> None:  # pragma: no cover - child
    """A forked child's message: ``call()``'s value, or what it raised, pickled, sized, written."""
    try:
        payload = pickle.dumps(("ok", call()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # noqa: BLE001 - reported as the call's error
        payload = pickle.dumps(("error", f"{type(exc).__name__}: {str(exc)[:200]}"))
    _write_all(result_w, struct.pack("!Q", len(payload)) + payload)


def _finish(pid: int, task_w: int, result_r: int) -> None:
    os.close(task_w)
    os.close(result_r)
    os.waitpid(pid, 0)


def _read_message(fd: int) -> tuple[str, object] | None:
    header = _read_exact(fd, 8)
    if header is None:
        return None
    body = _read_exact(fd, struct.unpack("!Q", header)[0])
    if body is None:
        return None
    try:
        return pickle.loads(body)  # noqa: S301 - our own forked worker's output
    except Exception:  # noqa: BLE001
        return None


def _read_exact(fd: int, n: int) -> bytes | None:
    parts, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
