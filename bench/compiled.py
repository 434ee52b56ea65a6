"""The workloads compiled: hand-written NumPy (the limit), smolgrad eager, smolgrad
`sg.compile`d, in one run, as ratios of medians.

    .venv/bin/python bench/compiled.py            # W1 W2 W3 W3g W5 W6
    .venv/bin/python bench/compiled.py W1 W3 --rounds 5

The three versions take turns (round-robin, `--rounds` rounds of about `--seconds` each),
so a busy neighbour slows all of them alike; each round's median step time is kept and
the median over rounds reported, with the range over rounds. The compiled step is the
workload's own `step()` wrapped in `sg.compile` (its `return loss.item()` is replayed).

Two rows differ from bench/workloads.py:
- W3g is W3 with the gradient kept (the step returns x.grad). W3 as written throws the
  gradient away, so a compiler drops the whole backward as dead code: W3 compiled then
  measures the forward only.
- W5 uses AdamW(capturable=True) in both smolgrad columns: the default AdamW keeps its
  step count as a Python int, which a recording cannot replay (compiled would equal eager).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import workloads  # noqa: E402

import smolgrad as sg  # noqa: E402

_W3_OPS = (lambda y: y * 1.0001, lambda y: y + 0.001, lambda y: y.tanh())  # W3's cycle


def make_w3_grad(lib, size):
    """W3 with the gradient kept: the step returns (loss, x.grad)."""
    if lib == "numpy":
        return workloads.make_w3("numpy", size)  # computes the whole gradient already
    x_np = workloads.np.random.default_rng(2).standard_normal((16, 16)).astype("float32")

    def step():
        x = lib.tensor(x_np, requires_grad=True)
        y = functools.reduce(lambda y, i: _W3_OPS[i % 3](y), range(size["ops"]), x)
        loss = y.sum()
        loss.backward()
        return loss.item(), x.grad

    return step


def capturable_adamw(lib):
    """`lib` with AdamW(capturable=True) in place of AdamW (see the module docstring)."""
    optim = types.SimpleNamespace(**vars(lib.optim))
    optim.AdamW = functools.partial(lib.optim.AdamW, capturable=True)
    return types.SimpleNamespace(**{**{k: getattr(lib, k) for k in dir(lib)
                                       if not k.startswith("__")}, "optim": optim})


WORKLOADS = {
    "W1": workloads.WORKLOADS["W1"][:2],
    "W2": workloads.WORKLOADS["W2"][:2],
    "W3": workloads.WORKLOADS["W3"][:2],
    "W3g": (make_w3_grad, workloads.WORKLOADS["W3"][1]),
    "W5": workloads.WORKLOADS["W5"][:2],
    "W6": workloads.WORKLOADS["W6"][:2],
}


def steps_for(name: str) -> dict:
    make, size = WORKLOADS[name]
    lib = capturable_adamw(sg) if name == "W5" else sg
    return {"numpy": make("numpy", size), "eager": make(lib, size),
            "compiled": sg.compile(make(lib, size))}


def median_step(step, seconds: float) -> float:
    """Median seconds per call over about `seconds` of calls (after three warm-up calls,
    which also make the compiled version record)."""
    for _ in range(3):
        step()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(names, rounds: int, seconds: float) -> list:
    rows = []
    for name in names:
        steps = steps_for(name)
        per_round = {k: [] for k in steps}
        for _ in range(rounds):
            for kind, step in steps.items():
                per_round[kind].append(median_step(step, seconds))
        med = {k: statistics.median(v) for k, v in per_round.items()}
        compiled = steps["compiled"]
        rows.append({"workload": name, **{f"{k}_us": v * 1e6 for k, v in med.items()},
                     "eager_x_limit": med["eager"] / med["numpy"],
                     "compiled_x_limit": med["compiled"] / med["numpy"],
                     "compiled_x_eager": med["compiled"] / med["eager"],
                     "range_us": {k: (min(v) * 1e6, max(v) * 1e6)
                                  for k, v in per_round.items()},
                     "calls": len(compiled.program) if compiled.program else None,
                     "replayed": compiled.eager_reason is None and compiled.replays > 0})
        if name.startswith("W3"):
            ops = WORKLOADS[name][1]["ops"]
            rows[-1]["us_per_op"] = {k: v * 1e6 / ops for k, v in med.items()}
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds, medians of "
          f"medians; times in µs per step")
    print(f"{'':5} {'NumPy':>9} {'eager':>9} {'compiled':>9} {'eager/lim':>9} "
          f"{'comp/lim':>9} {'comp/eager':>10}  calls")
    for row in run(args.names, args.rounds, args.seconds):
        print(f"{row['workload']:5} {row['numpy_us']:9.1f} {row['eager_us']:9.1f} "
              f"{row['compiled_us']:9.1f} {row['eager_x_limit']:9.2f} "
              f"{row['compiled_x_limit']:9.2f} {row['compiled_x_eager']:10.2f}  "
              f"{row['calls']}{'' if row['replayed'] else ' (ran eagerly)'}")
        if "us_per_op" in row:
            per_op = row["us_per_op"]
            print(f"      µs per op: NumPy {per_op['numpy']:.2f}, eager {per_op['eager']:.2f}, "
                  f"compiled {per_op['compiled']:.2f}")


if __name__ == "__main__":
    main()
