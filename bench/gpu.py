"""GPU benchmark: a GPT-2-small training step on smolgrad's CuPy backend vs PyTorch eager.

GPT-2 small (12 layers, d_model 768, 12 heads, vocab 50257), batch 8 x 1024 tokens,
AdamW, cross-entropy, dropout on (training mode), fp32, and fp32 with TF32 matmuls
(`CUPY_TF32=1` for CuPy, `torch.backends.cuda.matmul.allow_tf32` for PyTorch). Memory:
the peak of bytes in use (CuPy: watched allocation by allocation in one extra step;
PyTorch: `max_memory_allocated`) and what each caching pool holds. Each
configuration runs in its own process: warm-up steps (CuPy compiles its kernels then), then
the median of timed steps, each ending in `loss.item()` (a full device sync).

    python bench/gpu.py            # all four configurations, a Markdown table on stdout
    python bench/gpu.py --steps 3  # fewer timed steps
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [("smolgrad", False), ("smolgrad", True), ("torch", False), ("torch", True)]


def _step_smolgrad(batch, seq, warmup, steps):
    sys.path.insert(0, str(ROOT))
    import cupy

    import smolgrad as sg
    from smolgrad.models.gpt2 import GPT2, GPT2Config

    sg.manual_seed(0)
    model = GPT2(GPT2Config()).to("cuda")
    opt = sg.optim.AdamW(model.parameters(), lr=3e-4)
    idx = sg.randint(0, 50257, (batch, seq), device="cuda")
    tgt = sg.randint(0, 50257, (batch, seq), device="cuda")

    def step():
        opt.zero_grad()
        _, loss = model(idx, tgt)
        loss.backward()
        opt.step()
        return loss.item()

    times, losses = _time(step, warmup, steps)
    pool = cupy.get_default_memory_pool()
    tracker = PeakTracker(pool)             # one more step, every allocation watched
    cupy.cuda.set_allocator(tracker.malloc)
    try:
        step()
        cupy.cuda.Device().synchronize()
    finally:
        cupy.cuda.set_allocator(pool.malloc)
    mem = {"peak_gib": tracker.peak / 2**30, "reserved_gib": pool.total_bytes() / 2**30}
    return times, losses, mem, cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()


class PeakTracker:
    """CuPy allocator that records the most bytes its pool had in use at once (CuPy keeps
    no such figure; PyTorch's is `max_memory_allocated`). Frees return to the pool as
    usual, so in-use bytes only peak right after an allocation, where it looks."""

    def __init__(self, pool):
        self.pool = pool
        self.peak = pool.used_bytes()

    def malloc(self, size: int):
        pointer = self.pool.malloc(size)
        self.peak = max(self.peak, self.pool.used_bytes())
        return pointer


def _step_torch(batch, seq, warmup, steps, tf32):
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    idx = torch.randint(0, 50257, (batch, seq), device="cuda")
    tgt = torch.randint(0, 50257, (batch, seq), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(idx).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    times, losses = _time(step, warmup, steps)
    mem = {"peak_gib": torch.cuda.max_memory_allocated() / 2**30,
           "reserved_gib": torch.cuda.max_memory_reserved() / 2**30}
    return times, losses, mem, torch.cuda.get_device_name(0)


def _time(step, warmup, steps):
    losses = [step() for _ in range(warmup)]
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    return times, losses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        lib, tf32 = args.one[0], args.one[1] == "1"
        if lib == "smolgrad":
            out = _step_smolgrad(args.batch, args.seq, args.warmup, args.steps)
        else:
            out = _step_torch(args.batch, args.seq, args.warmup, args.steps, tf32)
        times, losses, mem, gpu = out
        print(json.dumps({"median": statistics.median(times), "min": min(times),
                          "max": max(times), "losses": losses, **mem, "gpu": gpu}))
        return 0
    results = {}
    for lib, tf32 in CONFIGS:
        env = dict(os.environ, CUPY_TF32="1" if tf32 else "0")
        cmd = [sys.executable, __file__, "--one", lib, "1" if tf32 else "0",
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--batch", str(args.batch), "--seq", str(args.seq)]
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if run.returncode != 0:
            print(f"{lib} tf32={tf32} failed:\n{run.stderr[-3000:]}", flush=True)
            continue
        results[(lib, tf32)] = json.loads(run.stdout.strip().splitlines()[-1])
        print(lib, "tf32" if tf32 else "fp32", results[(lib, tf32)], flush=True)
    gpu = next((r["gpu"] for r in results.values()), "?")
    print(f"\nGPT-2 small training step, batch {args.batch}x{args.seq}, AdamW, on {gpu}\n")
    print("| precision | smolgrad (CuPy) s/step | PyTorch eager s/step | smolgrad / torch | "
          "peak GiB in use (sg / torch) | GiB reserved by the pool (sg / torch) |")
    print("|---|---|---|---|---|---|")
    for tf32 in (False, True):
        s, t = results.get(("smolgrad", tf32)), results.get(("torch", tf32))
        if not s or not t:
            continue
        print(f"| {'TF32' if tf32 else 'fp32'} | {s['median']:.3f} ({s['min']:.3f}–"
              f"{s['max']:.3f}) | {t['median']:.3f} ({t['min']:.3f}–{t['max']:.3f}) | "
              f"{s['median'] / t['median']:.2f}× | {s['peak_gib']:.1f} / {t['peak_gib']:.1f} | "
              f"{s['reserved_gib']:.1f} / {t['reserved_gib']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
