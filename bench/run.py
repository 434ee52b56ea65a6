"""`make bench`: smolgrad vs PyTorch vs hand-written NumPy, as ratios, in one run.

Each (workload, library) pair runs in its own subprocess, one after another, so that its
peak RSS is its own (importing PyTorch alone costs hundreds of MB). Every timing is the
median of repeated steps after a warm-up, with the min-max range. The table goes to stdout
and to bench/results.md (Markdown, for the README).

    python bench/run.py                 # everything (a few minutes)
    python bench/run.py --only W2 W3    # some workloads
    python bench/run.py --quick         # tiny sizes, one step: a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

LIBS = ("smolgrad", "torch", "numpy")
W4_SIZES = (1_000, 10_000, 100_000, 1_000_000)
UNITS = {"W1": ("s total", 1.0), "W2": ("ms/step", 1e3), "W3": ("µs/op", 1e6),
         "W4": ("s", 1.0), "W5": ("ms/step", 1e3), "W6": ("ms/step", 1e3)}


def _import(lib):
    if lib == "numpy":
        return "numpy"
    if lib == "torch":
        import torch

        torch.manual_seed(0)
        return torch
    import smolgrad

    return smolgrad


def measure(workload: str, lib_name: str, quick: bool, n: int | None = None,
            reps: int = 20) -> dict:
    """Run one workload in this process; return timings, losses and peak RSS."""
    from workloads import WORKLOADS

    make, full, tiny = WORKLOADS[workload]
    size = dict(tiny if quick else full)
    if n is not None:
        size["n"] = n
    lib = _import(lib_name)
    step = make(lib, size)
    if step is None:
        return {"skipped": "no hand-written version"}
    if workload == "W1":  # total time of a whole training run
        epochs = size["epochs"]
        losses, times = [], []
        for _ in range(1 if quick else 3):
            step = make(lib, size)
            t0 = time.perf_counter()
            run = [step() for _ in range(epochs)]
            times.append(time.perf_counter() - t0)
            losses = run
        scale = 1.0
    else:
        warmup = 0 if quick else (1 if workload == "W4" else 3)
        count = 1 if quick else (3 if workload == "W4" else reps)
        losses = [step() for _ in range(warmup)]
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            losses.append(step())
            times.append(time.perf_counter() - t0)
        scale = 1.0 / size["ops"] if workload == "W3" else 1.0
    return {
        "median": statistics.median(times) * scale,
        "min": min(times) * scale,
        "max": max(times) * scale,
        "losses": losses[:5],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def flat_memory(steps: int = 2000) -> dict:
    """RSS after 100 and after `steps` W2 training steps in smolgrad (should stay flat)."""
    from workloads import make_w2

    import smolgrad

    step = make_w2(smolgrad, {"batch": 128})
    rss = {}
    for i in range(1, steps + 1):
        step()
        if i in (100, steps):
            rss[i] = _current_rss_mb()
    return {"rss_at_100": rss[100], f"rss_at_{steps}": rss[steps]}


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _subprocess(args: list) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         timeout=1800)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def blas_info() -> str:
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        desc = ", ".join(f"{i.get('internal_api')} {i.get('version')} "
                         f"({i.get('architecture')}, {i.get('num_threads')} threads)"
                         for i in infos[:1])
    except ImportError:
        desc = "unknown (threadpoolctl not installed)"
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                    if k in os.environ) or "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset"
    return f"NumPy BLAS: {desc}; {env}"


def _fmt(r: dict, unit_scale: float) -> str:
    if "error" in r:
        return "error"
    if "skipped" in r:
        return "n/a"
    return (f"{r['median'] * unit_scale:.3g} ({r['min'] * unit_scale:.3g}–"
            f"{r['max'] * unit_scale:.3g})")


def _ratio(a: dict, b: dict) -> str:
    if any(k in r for r in (a, b) for k in ("error", "skipped")):
        return "n/a"
    return f"{a['median'] / b['median']:.2f}×"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="workloads to run (W1..W6)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one step each")
    p.add_argument("--out", default=str(HERE / "results.md"))
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--lib", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--flat", action="store_true", help="also check memory over 2,000 steps")
    args = p.parse_args(argv)
    if args.one == "FLAT":
        print(json.dumps(flat_memory()))
        return 0
    if args.one:
        print(json.dumps(measure(args.one, args.lib, args.quick, args.n)))
        return 0

    workloads = args.only or ["W1", "W2", "W3", "W4", "W5", "W6"]
    rows = []
    header = ("| workload | unit | smolgrad | PyTorch | NumPy limit | smolgrad / limit | "
              "smolgrad / torch | peak RSS MB (sg / torch / np) |")
    lines = [header, "|" + "---|" * 8]
    print(header)
    for w in workloads:
        unit, scale = UNITS[w]
        sizes = ([n for n in W4_SIZES if not args.quick or n <= 1000] if w == "W4" else
                 [None])
        for n in sizes:
            res = {}
            for lib in LIBS:
                extra = ["--n", str(n)] if n else []
                res[lib] = _subprocess(["--one", w, "--lib", lib, *extra] +
                                       (["--quick"] if args.quick else []))
            name = f"{w} (N={n:,})" if n else w
            rss = " / ".join(f"{res[lib].get('peak_rss_mb', float('nan')):.0f}"
                             for lib in LIBS)
            line = (f"| {name} | {unit} | {_fmt(res['smolgrad'], scale)} | "
                    f"{_fmt(res['torch'], scale)} | {_fmt(res['numpy'], scale)} | "
                    f"{_ratio(res['smolgrad'], res['numpy'])} | "
                    f"{_ratio(res['smolgrad'], res['torch'])} | {rss} |")
            print(line, flush=True)
            lines.append(line)
            rows.append({"workload": name, **res})
    notes = [f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} "
             f"({os.cpu_count()} cores), Python {platform.python_version()}. {blas_info()}.",
             "Medians with min–max in brackets; ratios are of medians. Reproduce: "
             "`make bench` (or `python bench/run.py --only W2`)."]
    if args.flat:
        flat = _subprocess(["--one", "FLAT"])
        notes.append(f"Memory over W2 training (smolgrad): {flat}")
    print("\n".join(notes))
    if not args.quick:
        Path(args.out).write_text("\n".join(lines + [""] + notes) + "\n")
        (Path(args.out).with_suffix(".json")).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
