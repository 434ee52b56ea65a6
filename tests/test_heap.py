"""smolgrad/arrays/heap.py: freed array memory is reused, not faulted in again each step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from smolgrad.arrays import heap

pytestmark = pytest.mark.skipif(heap._glibc_mallopt() is None,
                                reason="mallopt settings apply to glibc (Linux) only")

# A "step" that allocates 40 arrays of 2 MB (as W5's activations) and frees them all; the
# page faults of 20 such steps after the first, read from getrusage.
FAULTS_OF_STEPS = """
import resource, numpy as np
import smolgrad
smolgrad.tensor([1.0])                     # creates the NumPy backend
def step():
    arrays = [np.ones((1024, 512), np.float32) for _ in range(40)]
    del arrays
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env_changes) -> int:
    env = {k: v for k, v in os.environ.items() if k not in heap.USER_SETTINGS}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_STEPS], env=env, check=True,
                         capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def test_freed_memory_is_reused_across_steps():
    # 20 steps x 40 arrays x 512 pages would be ~400,000 faults if each step's memory went
    # back to the kernel; reused, it is a handful
    kept = _faults()
    handed_back = _faults(**{heap.OPT_OUT: "0"})
    assert kept < 1_000, kept
    assert handed_back > 50 * max(kept, 1), (kept, handed_back)


def test_left_alone_when_the_user_tunes_malloc(monkeypatch):
    monkeypatch.setattr(heap, "_applied", False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert heap.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv(heap.OPT_OUT, "0")
    assert heap.keep_freed_memory() is False


def test_applied_once_and_reported():
    assert heap.keep_freed_memory() is (os.environ.get(heap.OPT_OUT, "1") != "0" and not any(
        k in os.environ for k in heap.USER_SETTINGS))
