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


def test_pooled_rounds_and_busy_row():
    """Step times of several runs pool into one median; a --busy row shows both ratios to
    PyTorch and how load changed them."""
    import run

    runs = [{"times": [1.0, 3.0], "losses": [0.5], "blas": "b", "peak_rss_mb": 10.0},
            {"times": [2.0], "losses": [0.5], "blas": "b", "peak_rss_mb": 12.0}]
    pooled = run._pool(runs)
    assert (pooled["median"], pooled["min"], pooled["max"]) == (2.0, 1.0, 3.0)
    assert pooled["steps"] == 3 and pooled["peak_rss_mb"] == 12.0
    assert run._pool([runs[0], {"error": "boom"}]) == {"error": "boom"}

    def res(sg, torch, np_):
        return {"smolgrad": {"median": sg, "min": sg, "max": sg},
                "torch": {"median": torch, "min": torch, "max": torch},
                "numpy": {"median": np_, "min": np_, "max": np_}}

    line = run._busy_line("W6", "ms/step", 1e3, res(0.010, 0.005, 0.008),
                          res(0.020, 0.020, 0.016))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[8:] == ["2.00×", "1.00×", "0.50×", "1.25×", "1.25×"]


def test_gpu_peak_tracker_sees_the_high_water_mark():
    """bench/gpu.py's CuPy allocator wrapper, on a stand-in pool (no GPU needed)."""
    import gpu

    class Pool:
        used = 0

        def used_bytes(self):
            return self.used

        def malloc(self, size):
            self.used += size
            return size

    pool = Pool()
    tracker = gpu.PeakTracker(pool)
    tracker.malloc(100)
    tracker.malloc(50)
    pool.used -= 120                           # frees go straight back to the pool
    tracker.malloc(10)
    assert tracker.peak == 150 and pool.used == 40


def test_compiled_step_is_checked_against_eager():
    """--compiled: the step through sg.compile replays and equals eager bit for bit (W3g
    keeps its gradient); a step the recording cannot follow is refused before timing."""
    import run

    for name in ("W1", "W3g"):
        result = run.measure(name, run.COMPILED, quick=True)
        assert result["calls"] > 0 and len(result["times"]) >= 1

    def make_drifting(lib, size):
        """A step that scales a weight by a Python number it changes itself: a recording
        bakes the first value in, so the replays drift away from eager."""
        weight = lib.ones(3, requires_grad=False)
        scale = [1.0]

        def step():
            scale[0] += 1.0
            weight.copy_(weight * scale[0])
            return weight.sum().item()

        return step

    with pytest.raises(RuntimeError, match="differs from eager"):
        run.checked_compiled_step("drift", make_drifting, sg, {})


def test_compiled_column_in_tables():
    """The --compiled table adds a compiled time and compiled / limit (n/a where a workload
    is not compiled), in the idle and in the --busy table."""
    import run

    def res(times, compiled=True):
        names = run.LIBS + ((run.COMPILED,) if compiled else ())
        return {lib: {"median": t, "min": t, "max": t, "peak_rss_mb": 10.0}
                for lib, t in zip(names, times)}

    header = run._idle_header(run.LIBS + (run.COMPILED,))
    line = run._idle_line("W1", "s total", 1.0, res((4.0, 2.0, 1.0, 1.5)))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert header.count("|") == line.count("|")
    assert cells[5:9] == ["4.00×", "2.00×", "1.5 (1.5–1.5)", "1.50×"]
    skipped = res((4.0, 2.0, 1.0))
    skipped[run.COMPILED] = {"skipped": "not compiled"}
    cells = [c.strip() for c in run._idle_line("W4", "s", 1.0, skipped).strip("|").split("|")]
    assert cells[7:] == ["n/a", "n/a", "10 / 10 / 10 / n/a"]
    busy = run._busy_line("W6", "ms/step", 1e3, res((0.010, 0.005, 0.008, 0.004)),
                          res((0.020, 0.020, 0.016, 0.008)))
    assert busy.count("|") == run._busy_header(run.LIBS + (run.COMPILED,)).count("|")
    assert [c.strip() for c in busy.strip("|").split("|")][-2:] == ["0.50×", "0.50×"]
