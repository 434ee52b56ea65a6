"""Keep the benchmark workloads working: each runs with tiny sizes, and smolgrad's first
losses equal PyTorch's and the hand-written NumPy version's (same weights, same data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import smolgrad as sg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from workloads import WORKLOADS  # noqa: E402


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_first_losses_agree(name):
    make, _, tiny = WORKLOADS[name]
    losses = {}
    for lib_name, lib in (("smolgrad", sg), ("torch", torch), ("numpy", "numpy")):
        step = make(lib, dict(tiny))
        losses[lib_name] = [step() for _ in range(3)]
    np.testing.assert_allclose(losses["smolgrad"], losses["torch"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(losses["smolgrad"], losses["numpy"], rtol=2e-5, atol=1e-6)


def test_bench_script_quick_run(capsys):
    import run

    assert run.main(["--quick", "--only", "W3"]) == 0
    out = capsys.readouterr().out
    assert "| W3 |" in out and "smolgrad / torch" in out
