"""The C allocator's thresholds (``secretscan.heap``): a scan's churn of MiB-sized byte strings
reuses freed memory instead of faulting it in from the kernel again, piece after piece."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

CHURN = """
import resource, sys
from secretscan.heap import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tuned" else False
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
held = []
for i in range(400):  # a stream's pieces and the slices read from them, a few alive at a time
    held.append(bytes(1 << 20)[: (1 << 20) - (i % 7) * 4096])
    if len(held) > 2:
        held.pop(0)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env = {k: v for k, v in env.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, env=env, check=True)
    tuned, faults = out.stdout.split()
    return tuned, int(faults)


def test_freed_pieces_are_reused_rather_than_faulted_in_again() -> None:
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        pytest.skip("the thresholds are glibc's; another C library is left as it is")
    tuned, with_tuning = _faults("tuned")
    _, without = _faults("default")
    assert tuned == "True"
    assert without > 100 * 256  # 400 MiB churned: most of it faulted in again by default
    assert with_tuning < without / 10
