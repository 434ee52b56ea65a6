"""`make bench`: smolgrad vs PyTorch vs hand-written NumPy, as ratios, in one run.

Each (workload, library) pair runs in its own subprocess, one after another, so that its
peak RSS is its own (importing PyTorch alone costs hundreds of MB). Every timing is the
median of repeated steps after a warm-up, with the min-max range. The table goes to stdout
and to bench/results.md (Markdown, for the README).

    python bench/run.py                 # everything (about 9 minutes on 2 cores)
    python bench/run.py --only W2 W3    # some workloads
    python bench/run.py --quick         # tiny sizes, one step: a smoke test
    python bench/run.py --busy          # each workload idle and beside a busy process
    python bench/run.py --compiled      # also each step through sg.compile (W3g: below)

Load: `--rounds R` measures every (workload, library) pair R times, the libraries taking
turns, and pools the steps (so a burst of load on a shared machine hits all three alike).
`--busy` runs every measurement twice, once as is and once beside a CPU-bound background
process (one core busy, as on a laptop doing something else or under `pytest -n 2`), and
reports both ratios to PyTorch and how much load changed them.

`--compiled` adds a fourth library, taking its turn with the others: smolgrad with the
workload's step wrapped in `sg.compile` (see docs/compile.md), and the column
*compiled / limit*. Before anything is timed, each compiled subprocess trains a compiled
and an eager step side by side from the same weights and seed and stops with an error
unless the compiled one replayed and every returned value, parameter and optimizer state
is bit-identical. Two adjustments make the compiled figures mean something:
- W5's smolgrad steps (compiled and its eager twin) use AdamW(capturable=True): the
  default AdamW keeps its step count as a Python int, which a recording cannot replay, so
  the compiled step would just run eagerly.
- W3 as written throws its gradient away, so the compiler drops the whole backward as
  dead code and W3 compiled times the forward only. The row W3g (with `--compiled`) is
  W3 with the gradient kept (the step returns it), in every library.
W4 (graphs of up to 10^6 nodes) is not compiled.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

LIBS = ("smolgrad", "torch", "numpy")
COMPILED = "compiled"         # smolgrad with the step through sg.compile (--compiled)
NOT_COMPILED = ("W4",)        # workloads without a compiled measurement
CHECK_STEPS = 5               # compiled vs eager steps compared before timing (2 record)
W4_SIZES = (1_000, 10_000, 100_000, 1_000_000)
TITLES = {"smolgrad": "smolgrad", "torch": "PyTorch", "numpy": "NumPy", COMPILED: "compiled"}
RSS_NAMES = {"smolgrad": "sg", "torch": "torch", "numpy": "np", COMPILED: "compiled"}
UNITS = {"W1": ("s total", 1.0), "W2": ("ms/step", 1e3), "W3": ("µs/op", 1e6),
         "W3g": ("µs/op", 1e6), "W4": ("s", 1.0), "W5": ("ms/step", 1e3),
         "W6": ("ms/step", 1e3)}


def _import(lib):
    if lib == COMPILED:
        return with_capturable_adamw(_import("smolgrad"))
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


# --- --compiled: the workloads through sg.compile -------------------------------------

def make_w3_grad(lib, size: dict):
    """W3 with the gradient kept: the step returns (loss, dloss/dx). The hand-written
    version is W3's, which computes the whole gradient already."""
    from workloads import make_w3, np

    if lib == "numpy":
        return make_w3("numpy", size)
    x_np = np.random.default_rng(2).standard_normal((16, 16)).astype(np.float32)
    return functools.partial(_w3_grad_step, lib, x_np, size["ops"])


def _w3_grad_step(lib, x_np, n_ops: int):
    x = lib.tensor(x_np, requires_grad=True)
    y = x
    for i in range(n_ops):  # W3's cycle: x 1.0001, + 0.001, tanh
        k = i % 3
        y = y * 1.0001 if k == 0 else (y + 0.001 if k == 1 else y.tanh())
    loss = y.sum()
    loss.backward()
    return loss.item(), x.grad


def bench_workloads() -> dict:
    """bench/workloads.py's WORKLOADS plus W3g: {name: (make, full size, tiny size)}."""
    from workloads import WORKLOADS

    return {**WORKLOADS, "W3g": (make_w3_grad, *WORKLOADS["W3"][1:])}


def with_capturable_adamw(lib):
    """A stand-in for the module `lib` whose `optim.AdamW` is AdamW(capturable=True)
    (the step count in a tensor, which a recording replays; see the module docstring)."""
    optim = types.SimpleNamespace(**vars(lib.optim))
    optim.AdamW = functools.partial(lib.optim.AdamW, capturable=True)
    names = {k: getattr(lib, k) for k in dir(lib) if not k.startswith("__")}
    return types.SimpleNamespace(**{**names, "optim": optim})


def make_compiled(make, lib, size: dict):
    """The workload's step, a fresh model and optimizer, wrapped in sg.compile."""
    import smolgrad

    return smolgrad.compile(make(lib, size))


def checked_compiled_step(workload: str, make, lib, size: dict, steps: int = CHECK_STEPS):
    """A compiled step that has been checked against eager: `steps` calls of a compiled
    and of an eager step, each from the same seed and weights, must replay and give
    bit-identical returned values, parameters, buffers and optimizer state. Returns the
    compiled step (warmed up by those calls); raises RuntimeError otherwise."""
    import smolgrad

    smolgrad.manual_seed(0)
    eager = make(lib, size)
    eager_out = [eager() for _ in range(steps)]
    smolgrad.manual_seed(0)
    compiled = make_compiled(make, lib, size)
    compiled_out = [compiled() for _ in range(steps)]
    if compiled.eager_reason is not None or compiled.replays == 0:
        raise RuntimeError(f"{workload}: sg.compile did not replay the step in {steps} "
                           f"calls ({compiled.eager_reason or compiled.programs})")
    # the eager step's state as the compiler would find it (that wrapper is never called)
    eager_state = _state_arrays(smolgrad.compile(eager))
    pairs = [("returned values", _arrays(eager_out), _arrays(compiled_out)),
             ("state", eager_state, _state_arrays(compiled))]
    for what, expected, got in pairs:
        same = len(expected) == len(got) and all(
            e.shape == g.shape and e.dtype == g.dtype and (e == g).all()
            for e, g in zip(expected, got))
        if not same:
            raise RuntimeError(f"{workload}: compiled step differs from eager in its "
                               f"{what} after {steps} steps")
    return compiled


def _arrays(value) -> list:
    """NumPy arrays of the numbers and tensors in `value` (nested lists and tuples)."""
    import numpy

    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays(v)]
    if hasattr(value, "detach"):
        return [value.detach().numpy()]
    return [numpy.asarray(value)]


def _state_arrays(compiled) -> list:
    """Arrays of the state a compiled function can reach (its roots, as the compiler
    finds them): every Module's state dict, every Optimizer's state, plain tensors."""
    import smolgrad

    values = []
    for _, root in compiled.roots((), {}):
        if isinstance(root, smolgrad.nn.Module):
            values.extend(root.state_dict().values())
        elif isinstance(root, smolgrad.optim.Optimizer):
            values.extend(v for state in root.state.values() for v in state.values())
        elif smolgrad.is_tensor(root):
            values.append(root)
    return _arrays(values)


def _loss(value) -> float:
    """The loss of a step's return value (W3g's step returns (loss, gradient))."""
    return value[0] if isinstance(value, tuple) else value


# --- measuring ------------------------------------------------------------------------


def measure(workload: str, lib_name: str, quick: bool, n: int | None = None,
            reps: int = 20) -> dict:
    """Run one workload in this process; return timings, losses and peak RSS (with
    `lib_name` "compiled", also the recorded program's length in backend calls)."""
    make, full, tiny = bench_workloads()[workload]
    size = dict(tiny if quick else full)
    if n is not None:
        size["n"] = n
    lib = _import(lib_name)
    extra = {}
    if lib_name == COMPILED:
        step = checked_compiled_step(workload, make, lib, size)
        extra["calls"] = step.program.calls
        make = functools.partial(make_compiled, make)
    else:
        step = make(lib, size)
    if step is None:
        return {"skipped": "no hand-written version"}
    if workload == "W1":  # total time of a whole training run (a compiled one records)
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
        scale = 1.0 / size["ops"] if workload.startswith("W3") else 1.0
    return {
        "times": [t * scale for t in times],
        "losses": [_loss(v) for v in losses[:5]],
        "blas": _blas_desc(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
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


def measure_pooled(workload: str, n, quick: bool, rounds: int, busy: bool,
                   libs: tuple = LIBS) -> dict:
    """Every library measured `rounds` times, taking turns, in fresh subprocesses; the step
    times of all rounds pooled: {lib: {median, min, max, peak_rss_mb, losses}}."""
    skip_compiled = COMPILED in libs and workload in NOT_COMPILED
    runs: dict = {lib: [] for lib in libs if not (lib == COMPILED and skip_compiled)}
    for _ in range(rounds):
        for lib in runs:
            args = ["--one", workload, "--lib", lib] + (["--n", str(n)] if n else []) + (
                ["--quick"] if quick else [])
            if busy:
                with BackgroundLoad():
                    runs[lib].append(_subprocess(args))
            else:
                runs[lib].append(_subprocess(args))
    pooled = {lib: _pool(results) for lib, results in runs.items()}
    if skip_compiled:
        pooled[COMPILED] = {"skipped": "not compiled"}
    return pooled


def _pool(results: list) -> dict:
    for r in results:
        if "error" in r or "skipped" in r:
            return r
    times = [t for r in results for t in r["times"]]
    pooled = {"median": statistics.median(times), "min": min(times), "max": max(times),
              "steps": len(times), "losses": results[0]["losses"],
              "blas": results[0]["blas"], "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}
    if "calls" in results[0]:
        pooled["calls"] = results[0]["calls"]
    return pooled


def _results(row: dict) -> dict:
    """{lib: result} of one table row (the idle results of a --busy row)."""
    return row["idle"] if "idle" in row else {lib: row[lib] for lib in LIBS + (COMPILED,)
                                              if lib in row}


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
    p.add_argument("--compiled", action="store_true",
                   help="also measure smolgrad with each step through sg.compile (checked "
                        "bit-identical to eager first), and add the row W3g")
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
    libs = LIBS + (COMPILED,) if args.compiled else LIBS
    workloads = args.only or ["W1", "W2", "W3", "W4", "W5", "W6"]
    if args.compiled and not args.only:
        workloads.insert(workloads.index("W3") + 1, "W3g")
    header = _busy_header(libs) if args.busy else _idle_header(libs)
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    print(header)
    rows = []
    for w in workloads:
        unit, scale = UNITS[w]
        sizes = ([n for n in W4_SIZES if not args.quick or n <= 1000] if w == "W4" else
                 [None])
        for n in sizes:
            name = f"{w} (N={n:,})" if n else w
            res = measure_pooled(w, n, args.quick, rounds, busy=False, libs=libs)
            if args.busy:
                loaded = measure_pooled(w, n, args.quick, rounds, busy=True, libs=libs)
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
             f"`python bench/run.py{' --busy' if args.busy else ''}"
             f"{' --compiled' if args.compiled else ''}` (or `--only W2`)."]
    if args.busy:
        notes.append("busy: beside one CPU-bound background process (`while True: pass`). "
                     "busy ÷ idle is (sg / torch busy) / (sg / torch idle).")
    if args.compiled:
        notes.append(_compiled_note(rows))
    if args.flat:
        flat = _subprocess(["--one", "FLAT"])
        notes.append(f"Memory over W2 training (smolgrad): {flat}")
    print("\n".join(notes))
    if not args.quick:
        out.write_text("\n".join(lines + [""] + notes) + "\n")
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


def _idle_header(libs: tuple) -> str:
    """The table's header: a time column per library, then ratios of medians, then RSS
    (with --compiled, a compiled time and *compiled / limit* before the RSS)."""
    compiled = " compiled | compiled / limit |" if COMPILED in libs else ""
    rss = " / ".join(RSS_NAMES[lib] for lib in libs)
    return ("| workload | unit | smolgrad | PyTorch | NumPy limit | smolgrad / limit | "
            f"smolgrad / torch |{compiled} peak RSS MB ({rss}) |")


def _idle_line(name: str, unit: str, scale: float, res: dict) -> str:
    rss = " / ".join(f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "n/a"
                     for r in res.values())
    cells = [_fmt(res[lib], scale) for lib in LIBS]
    cells += [_ratio(res["smolgrad"], res["numpy"]), _ratio(res["smolgrad"], res["torch"])]
    if COMPILED in res:
        cells += [_fmt(res[COMPILED], scale), _ratio(res[COMPILED], res["numpy"])]
    return f"| {name} | {unit} | " + " | ".join(cells) + f" | {rss} |"


def _busy_header(libs: tuple) -> str:
    names = [f"{TITLES[lib]} {load}" for load in ("idle", "busy") for lib in libs]
    compiled = " compiled / limit idle | compiled / limit busy |" if COMPILED in libs else ""
    return ("| workload | unit | " + " | ".join(names) + " | sg / torch idle | "
            "sg / torch busy | busy ÷ idle | sg / limit idle | sg / limit busy |" + compiled)


def _busy_line(name: str, unit: str, scale: float, idle: dict, busy: dict) -> str:
    cells = [_fmt(r[lib], scale) for r in (idle, busy) for lib in r]
    idle_r, busy_r = (_ratio(r["smolgrad"], r["torch"]) for r in (idle, busy))
    change = "n/a"
    if "n/a" not in (idle_r, busy_r):
        change = f"{float(busy_r[:-1]) / float(idle_r[:-1]):.2f}×"
    cells += [idle_r, busy_r, change]
    cells += [_ratio(r["smolgrad"], r["numpy"]) for r in (idle, busy)]
    if COMPILED in idle:
        cells += [_ratio(r[COMPILED], r["numpy"]) for r in (idle, busy)]
    return f"| {name} | {unit} | " + " | ".join(cells) + " |"


def _compiled_note(rows: list) -> str:
    """What the compiled column measured: the length of each recorded program."""
    calls = []
    for row in rows:
        compiled = _results(row).get(COMPILED, {})
        if "calls" in compiled:
            calls.append(f"{row['workload']} {compiled['calls']}")
    return ("compiled: the step through `sg.compile`, checked bit-identical to eager over "
            f"{CHECK_STEPS} steps before timing (W5 with AdamW(capturable=True); W1's runs "
            "include its two recordings; W3 compiled drops the discarded backward, W3g keeps "
            "the gradient). Backend calls per replayed step: " + (", ".join(calls) or "none")
            + ".")


def _loadavg() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
