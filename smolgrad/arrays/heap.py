"""Keep freed array memory for reuse instead of handing it back to the kernel (NumPy backend).

Why
---
A training step allocates and frees the same large temporaries every step: W5 (the small
GPT of bench/) makes about 60 MB of activations, gradients and scratch arrays per step,
many of 2 MB each. NumPy gets array memory from the C library's `malloc`. glibc's malloc
serves a large request from the top of its heap and, when more than `M_TRIM_THRESHOLD`
bytes are free at the top after a `free`, gives them back to the kernel (`brk`); its
default threshold adapts to the largest block freed so far, a few MB. So each step hands
its memory back and the next step faults every 4 KiB page in again, zero-filled by the
kernel: we measured 16,000 page faults and 24-31 ms of system time per W5 step (half of
the step), against about 400 faults for PyTorch's step.

What this does
--------------
On Linux with glibc, when the NumPy backend is created, two `mallopt` settings:

    M_MMAP_THRESHOLD = 32 MiB    blocks up to this size come from the heap (reusable);
                                 larger ones get their own mapping, unmapped when freed
                                 (32 MiB is the most glibc's adaptive rule would pick)
    M_TRIM_THRESHOLD = 128 MiB   free memory at the top of the heap is handed back only
                                 beyond this much

A step then reuses the pages the previous step freed: W5 goes from ~16,000 page faults to
~20 a step and from about 58 to 32 ms, W6 (the small CNN) from ~6,000 faults to none and
from about 22 to 11 ms (2 cores, bench/profile_w5.py). The cost: up to 128 MiB of freed
memory stays with the process (resident, ready for the next step), as a caching
allocator (PyTorch's on CUDA, MLX's) keeps its blocks.

These are process-wide settings of the C library. They are left alone when the user has
chosen any of glibc's MALLOC_* environment settings, when SMOLGRAD_KEEP_FREED_MEMORY=0,
and on systems without glibc (macOS, musl), where this function does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1           # mallopt's parameter numbers (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 128 * 2**20    # bytes of free heap top kept before handing memory back
MMAP_THRESHOLD = 32 * 2**20     # blocks above this get their own mapping
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES")
OPT_OUT = "SMOLGRAD_KEEP_FREED_MEMORY"

_applied = False


def keep_freed_memory() -> bool:
    """Apply the two mallopt settings above once per process; True when they are in force
    (now or from an earlier call), False when left alone (not glibc, user's own settings,
    or SMOLGRAD_KEEP_FREED_MEMORY=0)."""
    global _applied
    if _applied:
        return True
    if os.environ.get(OPT_OUT, "1") == "0" or any(k in os.environ for k in USER_SETTINGS):
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    # mallopt returns 1 on success; setting either disables glibc's adaptive thresholds
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def _glibc_mallopt():
    """glibc's `int mallopt(int, int)`, or None on another C library or platform."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl's mallopt is a stub
            return None
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt
