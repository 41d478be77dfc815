"""Progress bars on a terminal; silence off a TTY and with --quiet."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from conftest import REPO

DEMO = REPO / "fixtures" / "demo-image.tar"


def _run_with_tty_stderr(*args: str) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secretscan", "scan", str(DEMO), *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},  # a bare pty reports no width: room for the whole bar
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal() -> None:
    shown = _run_with_tty_stderr()
    assert "secretscan/demo:1.0 (9 layers)" in shown and "layer 1/9" in shown


def test_quiet_on_a_terminal() -> None:
    assert _run_with_tty_stderr("--quiet") == ""


def test_silent_off_a_terminal() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "secretscan", "scan", str(DEMO)], capture_output=True, text=True, timeout=120
    )
    assert result.stderr == ""
