"""The C allocator's thresholds for a scan's allocation pattern (glibc only; elsewhere nothing).

A scan allocates and frees byte strings of about a MiB by the thousand: a stream's pieces, and the
slices of a layer's files read from them. glibc's defaults adapt to that badly: pieces past its
mmap threshold are mapped and unmapped each time, and once it raises that threshold, a few freed
pieces at the top of the heap pass its trim threshold and are given back to the kernel, only to be
faulted in again for the next. A 730 MB image piped in took 380,000 page faults and 1.8 s of
system time; with a 4 MiB mmap threshold and a 32 MiB trim threshold, 80,000 and 1.2 s. Fixed
thresholds also turn glibc's adjustment off, so both are set, together. Forked workers inherit them.
"""

from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20
"""Allocations below this come from the heap (reused), not from a mapping of their own."""
TRIM_THRESHOLD = 32 << 20
"""Free memory at the top of the heap is given back to the kernel only past this."""


def tune_allocator() -> bool:
    """Set the thresholds, once, at a process's start (a CLI run); whether they were set."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, ValueError, AttributeError):  # no such name (not glibc), no symbol
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
