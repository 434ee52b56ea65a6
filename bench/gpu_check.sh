#!/usr/bin/env bash
# The GPU check, run once on a machine with an NVIDIA GPU, CuPy and PyTorch installed:
# the whole test suite on the CuPy backend, then the GPT-2 small step benchmark.
# Usage: bash bench/gpu_check.sh OUTDIR [test-seconds] [bench-seconds]
set -u
out=${1:-gpu_out}; tsec=${2:-240}; bsec=${3:-200}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import cupy, numpy, torch, sys; print('python', sys.version.split()[0], \
'cupy', cupy.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
python3 - > "$out/smoke.txt" 2>&1 <<'PY'
import smolgrad as sg
x = sg.randn(3, 4, device="cuda", requires_grad=True)
(x @ x.T).tanh().sum().backward()
print("smoke ok:", x.grad.device, x.grad.shape, round(x.grad.sum().item(), 4))
PY
cat "$out/smoke.txt"
SMOLGRAD_TEST_DEVICES=cuda timeout "$tsec" python3 -m pytest -q -n 14 -k cuda -m "not slow" \
  -p no:cacheprovider --timeout 120 -rfE tests > "$out/tests.log" 2>&1
echo "pytest exit $?"; tail -n 40 "$out/tests.log" | grep -E "passed|failed|FAILED|ERROR" | tail -n 25
timeout "$bsec" python3 bench/gpu.py --steps 3 --warmup 2 > "$out/gpu_bench.md" 2>&1
echo "bench exit $?"; cat "$out/gpu_bench.md" | tail -n 30
