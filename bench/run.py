"""`make bench`: smolgrad vs PyTorch vs hand-written NumPy, as ratios, in one run.

Each (workload, library) pair runs in its own subprocess, one after another, so that its
peak RSS is its own (importing PyTorch alone costs hundreds of MB). Every timing is the
median of repeated steps after a warm-up, with the min-max range. The table goes to stdout
and to bench/results.md (Markdown, for the README).

    python bench/run.py                 # everything (a few minutes)
    python bench/run.py --only W2 W3    # some workloads
    python bench/run.py --quick         # tiny sizes, one step: a smoke test
    python bench/run.py --busy          # each workload idle and beside a busy process

Load: `--rounds R` measures every (workload, library) pair R times, the libraries taking
turns, and pools the steps (so a burst of load on a shared machine hits all three alike).
`--busy` runs every measurement twice, once as is and once beside a CPU-bound background
process (one core busy, as on a laptop doing something else or under `pytest -n 2`), and
reports both ratios to PyTorch and how much load changed them.
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
        _blas_threads_as_smolgrad()
        return "numpy"
    if lib == "torch":
        import torch

        torch.manual_seed(0)
        return torch
    import smolgrad

    return smolgrad


def _blas_threads_as_smolgrad() -> None:
    """The hand-written versions get the BLAS-thread rule smolgrad's CPU backend applies
    (smolgrad/arrays/blas_threads.py: a thread per 2^27 multiply-adds of a product). No
    product in these workloads reaches 2 x 2^27, so that is one thread throughout."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1, user_api="blas")


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
        "times": [t * scale for t in times],
        "losses": losses[:5],
        "blas": _blas_desc(),
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


class BackgroundLoad:
    """A CPU-bound process (a Python busy loop) running while the `with` block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # let it start spinning
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def measure_pooled(workload: str, n, quick: bool, rounds: int, busy: bool) -> dict:
    """Every library measured `rounds` times, taking turns, in fresh subprocesses; the step
    times of all rounds pooled: {lib: {median, min, max, peak_rss_mb, losses}}."""
    runs: dict = {lib: [] for lib in LIBS}
    for _ in range(rounds):
        for lib in LIBS:
            args = ["--one", workload, "--lib", lib] + (["--n", str(n)] if n else []) + (
                ["--quick"] if quick else [])
            if busy:
                with BackgroundLoad():
                    runs[lib].append(_subprocess(args))
            else:
                runs[lib].append(_subprocess(args))
    return {lib: _pool(results) for lib, results in runs.items()}


def _pool(results: list) -> dict:
    for r in results:
        if "error" in r or "skipped" in r:
            return r
    times = [t for r in results for t in r["times"]]
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "steps": len(times), "losses": results[0]["losses"], "blas": results[0]["blas"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}


def _results(row: dict) -> dict:
    """{lib: result} of one table row (the idle results of a --busy row)."""
    return row["idle"] if "idle" in row else {lib: row[lib] for lib in LIBS}


def _subprocess(args: list) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         timeout=1800)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _blas_desc() -> str:
    """NumPy's BLAS as threadpoolctl sees it in this process: library, version, the CPU
    kernel it picked and its thread count."""
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} "
                     f"({i.get('architecture')} kernels, {i.get('num_threads')} threads)"
                     for i in infos[:1])


def blas_info(rows: list | None = None) -> str:
    desc = _blas_desc()
    seen = {lib: r["blas"] for row in rows or [] for lib, r in _results(row).items()
            if "blas" in r}
    if seen:
        desc = "; ".join(f"{lib}: {d}" for lib, d in seen.items())
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
    p.add_argument("--rounds", type=int, default=None,
                   help="measurements per (workload, library), taking turns (default 3; "
                        "1 with --quick)")
    p.add_argument("--busy", action="store_true",
                   help="also measure beside a CPU-bound background process")
    p.add_argument("--out", default=None, help="Markdown table (default bench/results.md, "
                                               "bench/results_busy.md with --busy)")
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
    rounds = args.rounds or (1 if args.quick else 3)
    out = Path(args.out or HERE / ("results_busy.md" if args.busy else "results.md"))
    workloads = args.only or ["W1", "W2", "W3", "W4", "W5", "W6"]
    if args.busy:
        header = ("| workload | unit | smolgrad idle | PyTorch idle | NumPy idle | smolgrad busy | "
                  "PyTorch busy | NumPy busy | sg / torch idle | sg / torch busy | "
                  "busy ÷ idle | sg / limit idle | sg / limit busy |")
        columns = 13
    else:
        header = ("| workload | unit | smolgrad | PyTorch | NumPy limit | smolgrad / limit | "
                  "smolgrad / torch | peak RSS MB (sg / torch / np) |")
        columns = 8
    lines = [header, "|" + "---|" * columns]
    print(header)
    rows = []
    for w in workloads:
        unit, scale = UNITS[w]
        sizes = ([n for n in W4_SIZES if not args.quick or n <= 1000] if w == "W4" else
                 [None])
        for n in sizes:
            name = f"{w} (N={n:,})" if n else w
            res = measure_pooled(w, n, args.quick, rounds, busy=False)
            if args.busy:
                loaded = measure_pooled(w, n, args.quick, rounds, busy=True)
                line = _busy_line(name, unit, scale, res, loaded)
                rows.append({"workload": name, "idle": res, "busy": loaded})
            else:
                line = _idle_line(name, unit, scale, res)
                rows.append({"workload": name, **res})
            print(line, flush=True)
            lines.append(line)
    notes = [f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} "
             f"({os.cpu_count()} cores), Python {platform.python_version()}. {blas_info(rows)}.",
             f"Medians of all steps of {rounds} subprocess runs per library, the libraries "
             "taking turns, with min–max in brackets; ratios are of medians. "
             f"Load average when done: {_loadavg()}. Reproduce: "
             f"`python bench/run.py{' --busy' if args.busy else ''}` (or `--only W2`)."]
    if args.busy:
        notes.append("busy: beside one CPU-bound background process (`while True: pass`). "
                     "busy ÷ idle is (sg / torch busy) / (sg / torch idle).")
    if args.flat:
        flat = _subprocess(["--one", "FLAT"])
        notes.append(f"Memory over W2 training (smolgrad): {flat}")
    print("\n".join(notes))
    if not args.quick:
        out.write_text("\n".join(lines + [""] + notes) + "\n")
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


def _idle_line(name: str, unit: str, scale: float, res: dict) -> str:
    rss = " / ".join(f"{res[lib].get('peak_rss_mb', float('nan')):.0f}" for lib in LIBS)
    return (f"| {name} | {unit} | {_fmt(res['smolgrad'], scale)} | "
            f"{_fmt(res['torch'], scale)} | {_fmt(res['numpy'], scale)} | "
            f"{_ratio(res['smolgrad'], res['numpy'])} | "
            f"{_ratio(res['smolgrad'], res['torch'])} | {rss} |")


def _busy_line(name: str, unit: str, scale: float, idle: dict, busy: dict) -> str:
    cells = [_fmt(r[lib], scale) for r in (idle, busy) for lib in LIBS]
    idle_r, busy_r = (_ratio(r["smolgrad"], r["torch"]) for r in (idle, busy))
    change = "n/a"
    if "n/a" not in (idle_r, busy_r):
        change = f"{float(busy_r[:-1]) / float(idle_r[:-1]):.2f}×"
    return (f"| {name} | {unit} | " + " | ".join(cells) + f" | {idle_r} | {busy_r} | "
            f"{change} | {_ratio(idle['smolgrad'], idle['numpy'])} | "
            f"{_ratio(busy['smolgrad'], busy['numpy'])} |")


def _loadavg() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
