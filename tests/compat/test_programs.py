"""PyTorch programs run unchanged on smolgrad: each program in tests/compat/programs/ is
plain PyTorch code (`import torch`). It runs twice in fresh interpreters, once as
`python PROGRAM` (the real PyTorch, the oracle) and once as `python -m smolgrad run
PROGRAM` (torch resolved to smolgrad), and the JSON object each prints last is compared:

- "deterministic": numbers both must reach to float32 rounding (shared NumPy-made weights
  and batches, no dropout), compared with the program's tolerance; strings, integers and
  booleans exactly;
- "statistical": numbers made from each library's own random draws, compared loosely;
- "checks": facts each library must make true on its own run (all must be true).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"

# program -> (relative tolerance for "deterministic" floats, absolute for "statistical")
TOLERANCES = {
    "char_gpt.py": (2e-4, 0.2),
    "lstm_lm.py": (1e-4, 0.0),
    "manual_backprop.py": (1e-4, 0.0),
    "bigram_sgd.py": (1e-4, 0.05),
    "makemore_mlp.py": (2e-4, 0.0),
    "idioms.py": (1e-5, 0.0),
    "seq_models.py": (1e-4, 0.0),
    "whole_model_lm.py": (1e-4, 0.0),
}
SLOW: set = set()


def _run(args: list) -> dict:
    """Run `python *args` in PROGRAMS; the last printed line, parsed as JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
               OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, *args], cwd=PROGRAMS, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(ours, ref, rtol: float, atol: float, where: str) -> None:
    if isinstance(ref, dict):
        assert isinstance(ours, dict) and ours.keys() == ref.keys(), where
        for key in ref:
            _compare(ours[key], ref[key], rtol, atol, f"{where}.{key}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref), f"{where}: {ours} vs {ref}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            _compare(a, b, rtol, atol, f"{where}[{i}]")
    elif isinstance(ref, float) or isinstance(ours, float):
        assert math.isclose(ours, ref, rel_tol=rtol, abs_tol=atol), \
            f"{where}: smolgrad {ours} vs torch {ref}"
    else:
        assert ours == ref, f"{where}: smolgrad {ours!r} vs torch {ref!r}"


def _programs() -> list:
    return [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
            for name in TOLERANCES]


def test_every_program_has_a_tolerance():
    found = {p.name for p in PROGRAMS.glob("*.py") if not p.name.startswith("_")}
    assert found == set(TOLERANCES)


@pytest.mark.parametrize("program", _programs())
def test_program_matches_pytorch(program):
    rtol, stat_atol = TOLERANCES[program]
    ref = _run([program])
    ours = _run(["-m", "smolgrad", "run", program])
    for side, result in (("torch", ref), ("smolgrad", ours)):
        failed = [name for name, ok in result["checks"].items() if not ok]
        assert not failed, f"{program} under {side}: checks failed: {failed}"
    assert ours["checks"].keys() == ref["checks"].keys()
    _compare(ours["deterministic"], ref["deterministic"], rtol, 1e-6, "deterministic")
    _compare(ours["statistical"], ref["statistical"], 0.0, stat_atol, "statistical")
