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
_STOP = -1


def _nothing() -> None:
    """``fork_map``'s default ``meanwhile``."""


def fork_map(
    func: Callable[[int], T],
    count: int,
    weights: Sequence[int],
    workers: int,
    on_error: Callable[[int, str], T],
    on_done: Callable[[int, T], None] = lambda i, result: None,
    meanwhile: Callable[[], object] = _nothing,
) -> list[T]:
    """``[func(0), …, func(count - 1)]`` computed in up to ``workers`` forked processes.

    Work is handed out one item at a time, heaviest first, so a worker stuck on a big layer does
    not hold back the rest. An item whose worker raises or dies becomes ``on_error(index,
    reason)``: one layer's failure never loses the others. ``meanwhile`` runs in this process, on
    a thread of its own, once the workers are forked and have their first items (before any item
    when there are no workers; a single item is forked only to run beside a ``meanwhile``): items
    are still handed out while it runs (a worker done with its first would otherwise wait for
    it). Should it raise, the workers are stopped and the error goes on."""
    if workers <= 1 or count == 0 or (count == 1 and meanwhile is _nothing) or not hasattr(os, "fork"):
        meanwhile()
        out = []
        for i in range(count):
            out.append(func(i))
            on_done(i, out[-1])
        return out
    queue = sorted(range(count), key=lambda i: -(weights[i] or 0))
    results: dict[int, T] = {}
    busy: dict[int, tuple[int, int, int]] = {}  # result fd -> (pid, task fd, index)
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
        index = queue.pop(0)
        os.write(task_w, struct.pack("!i", index))
        busy[result_r] = (pid, task_w, index)
    # on a thread started only now, and over before fork_map returns: no fork happens while it runs
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="secretscan-meanwhile") as beside:
        running = beside.submit(meanwhile)
        try:
            _hand_out(busy, queue, results, on_error, on_done, running)
        except BaseException:  # meanwhile failed, an interrupt, a callback raised: no worker outlives it
            for fd, (pid, task_w, _) in busy.items():
                os.kill(pid, signal.SIGKILL)
                _finish(pid, task_w, fd)
            raise
        running.result()
    for index in queue:  # only when every worker died early
        results[index] = on_error(index, "no worker left to scan it")
        on_done(index, results[index])
    return [results[i] for i in range(count)]


_POLL = 0.05
"""Seconds between looks at whether ``meanwhile`` failed, while it runs."""


def _hand_out(
    busy: dict[int, tuple[int, int, int]],
    queue: list[int],
    results: dict[int, T],
    on_error: Callable[[int, str], T],
    on_done: Callable[[int, T], None],
    meanwhile: Future[object],
) -> None:
    """``fork_map``'s loop: each result read as it comes and the worker given the next item; raises
    what ``meanwhile`` raised as soon as it has. A worker stays in ``busy`` until its message is
    read, so that whatever ends the loop early stops it."""
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
                on_done(index, results[index])
                continue
            kind, payload = message
            if queue:
                following = queue.pop(0)
                os.write(task_w, struct.pack("!i", following))
                busy[fd] = (pid, task_w, following)
            else:
                os.write(task_w, struct.pack("!i", _STOP))
                _finish(pid, task_w, fd)
            results[index] = payload if kind == "ok" else on_error(index, str(payload))  # type: ignore[assignment]
            on_done(index, results[index])


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


def _work(func: Callable[[int], object], task_r: int, result_w: int) -> None:  # pragma: no cover - child
    try:
        while True:
            raw = _read_exact(task_r, 4)
            if raw is None:
                break
            (index,) = struct.unpack("!i", raw)
            if index == _STOP:
                break
            _answer(result_w, lambda: func(index))  # noqa: B023 - called at once
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
