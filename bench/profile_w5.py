"""W5 (the small GPT training step) profiled, and timed against PyTorch in turns.

    python bench/profile_w5.py --compare 5      # 5 rounds, smolgrad and PyTorch taking turns
    python bench/profile_w5.py --profile        # cProfile of smolgrad's step, by own time
    python bench/profile_w5.py --ops            # time per backend call (NumPy backend)

`--compare` runs each library in its own subprocess per round (so neither warms the
caches or thread pools of the other) and records every step's wall time (perf_counter)
and CPU time (process_time: all threads of the process, so a library that spreads an op
over two cores pays for both). It prints the medians per round and the median over the
rounds of the per-round ratio smolgrad / PyTorch, with their range: on a machine shared
with other work a ratio from the same round is steadier than a ratio of pooled times.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SIZE = {"d": 128, "T": 64, "batch": 16}


def _lib(name: str):
    if name == "torch":
        import torch

        torch.manual_seed(0)
        return torch
    import smolgrad

    return smolgrad


def _step(name: str):
    from workloads import make_w5

    return make_w5(_lib(name), SIZE)


def time_steps(name: str, steps: int, warmup: int = 3) -> dict:
    """Wall and CPU seconds of each of `steps` W5 steps after `warmup` steps."""
    step = _step(name)
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"wall": wall, "cpu": cpu}


def compare(rounds: int, steps: int) -> None:
    per_round = []
    for r in range(rounds):
        row = {}
        for name in ("smolgrad", "torch"):
            out = subprocess.run([sys.executable, __file__, "--one", name, "--steps",
                                  str(steps)], capture_output=True, text=True, check=True)
            times = json.loads(out.stdout.strip().splitlines()[-1])
            row[name] = {k: statistics.median(v) for k, v in times.items()}
        per_round.append(row)
        sg, pt = row["smolgrad"], row["torch"]
        print(f"round {r + 1}: smolgrad {sg['wall'] * 1e3:.1f} ms wall {sg['cpu'] * 1e3:.1f} "
              f"ms cpu | torch {pt['wall'] * 1e3:.1f} ms wall {pt['cpu'] * 1e3:.1f} ms cpu | "
              f"ratio wall {sg['wall'] / pt['wall']:.2f} cpu {sg['cpu'] / pt['cpu']:.2f}",
              flush=True)
    for kind in ("wall", "cpu"):
        ratios = [row["smolgrad"][kind] / row["torch"][kind] for row in per_round]
        sg = statistics.median(row["smolgrad"][kind] for row in per_round)
        pt = statistics.median(row["torch"][kind] for row in per_round)
        print(f"{kind}: smolgrad {sg * 1e3:.1f} ms, torch {pt * 1e3:.1f} ms; ratio median "
              f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")


def profile(steps: int, top: int) -> None:
    step = _step("smolgrad")
    for _ in range(3):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def per_backend_call(steps: int, top: int) -> None:
    """Own time of each backend method over `steps` steps (the backend object's methods
    wrapped with a timer; nested calls are counted in both)."""
    import smolgrad
    from smolgrad.arrays import get_backend

    step = _step("smolgrad")
    backend = get_backend("cpu")
    totals: dict = {}
    originals = {}
    for name in dir(backend):
        fn = getattr(backend, name)
        if name.startswith("_") or not callable(fn):
            continue
        originals[name] = fn
        setattr(backend, name, _Timed(name, fn, totals))
    for _ in range(2):
        step()
    totals.clear()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    total = time.perf_counter() - t0
    for name, fn in originals.items():
        setattr(backend, name, fn)
    print(f"step {total / steps * 1e3:.1f} ms (timers included); smolgrad {smolgrad.__file__}")
    rows = sorted(totals.items(), key=lambda kv: -kv[1][0])[:top]
    for name, (secs, calls) in rows:
        print(f"{name:24s} {secs / steps * 1e3:8.2f} ms/step {calls // steps:6d} calls/step")


class _Timed:
    """A backend method with a stopwatch: adds (seconds, calls) into totals[name]."""

    def __init__(self, name, fn, totals):
        self.name, self.fn, self.totals = name, fn, totals

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            secs, calls = self.totals.get(self.name, (0.0, 0))
            self.totals[self.name] = (secs + time.perf_counter() - t0, calls + 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare", type=int, metavar="ROUNDS")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--ops", action="store_true")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(time_steps(args.one, args.steps)))
    if args.compare:
        compare(args.compare, args.steps)
    if args.profile:
        profile(args.steps, args.top)
    if args.ops:
        per_backend_call(args.steps, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
