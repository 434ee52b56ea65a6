"""The torch oracle: run the same function through smolgrad and PyTorch, compare.

    check_op(lambda x, y: x * y, (3, 1), (4,), device=device)

Inputs given as shapes become random float arrays (the same values for both libraries);
other inputs (ints, arrays, index lists) pass through, converted per library. The forward
values and the gradient of every float input are compared, with the same random upstream
gradient. On devices with float64, `sg.autograd.gradcheck` then checks the gradient
against finite differences.
"""

from __future__ import annotations

import numpy as np
import torch

import smolgrad as sg

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
                "int32": torch.int32, "bool": torch.bool, "float16": torch.float16}


class Arr:
    """An explicit input array (e.g. indices): passed to both libraries, never grad."""

    def __init__(self, array):
        self.array = np.asarray(array)


def _inputs(specs, rng, dtype, low, high, positive):
    arrays = []
    for s in specs:
        if isinstance(s, tuple):
            a = rng.uniform(low, high, s)
            if positive:
                a = np.abs(a) + 0.1
            arrays.append(np.asarray(a, dtype=dtype))  # 0-d stays an array, not a scalar
        else:
            arrays.append(s)
    return arrays


def _to_sg(a, device, grad):
    if isinstance(a, Arr):
        return sg.tensor(a.array, device=device)
    if isinstance(a, np.ndarray):
        return sg.tensor(a, device=device, requires_grad=grad and a.dtype.kind == "f")
    return a


def _to_torch(a, grad):
    if isinstance(a, Arr):
        return torch.from_numpy(a.array.copy())
    if isinstance(a, np.ndarray):
        return torch.tensor(a, requires_grad=grad and a.dtype.kind == "f")
    return a


def _flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _flat_outputs(x)]
    return [out]


def to_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.detach().cpu().numpy())


def assert_close(a, b, atol=1e-5, rtol=1e-4, what="value"):
    a, b = to_numpy(a), to_numpy(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch's {b.shape}"
    assert a.dtype == b.dtype or (a.dtype.kind == b.dtype.kind == "f"), \
        f"{what}: dtype {a.dtype} != torch's {b.dtype}"
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype.kind != "b" else a,
                               b.astype(np.float64) if b.dtype.kind != "b" else b,
                               atol=atol, rtol=rtol, err_msg=what, equal_nan=True)


def check_op(fn, *specs, device="cpu", torch_fn=None, dtype="float32", low=-2.0, high=2.0,
             positive=False, grad=True, atol=1e-5, rtol=1e-4, seed=0, gradcheck=True,
             gradcheck_atol=1e-5):
    """Compare fn(smolgrad inputs) with (torch_fn or fn)(torch inputs): values and grads."""
    rng = np.random.default_rng(seed)
    arrays = _inputs(specs, rng, dtype, low, high, positive)
    sg_in = [_to_sg(a, device, grad) for a in arrays]
    t_in = [_to_torch(a, grad) for a in arrays]
    sg_out = _flat_outputs(fn(*sg_in))
    t_out = _flat_outputs((torch_fn or fn)(*t_in))
    assert len(sg_out) == len(t_out)
    for i, (s, t) in enumerate(zip(sg_out, t_out)):
        assert str(s.device) == sg.device(device).type, f"output {i} on {s.device}"
        assert_close(s, t, atol, rtol, what=f"forward output {i}")
    if not grad:
        return
    diff = [(i, s, t) for i, (s, t) in enumerate(zip(sg_out, t_out))
            if t.requires_grad and s.requires_grad]
    if not diff:
        return
    sg_loss, t_loss = 0, 0
    for _, s, t in diff:
        up = rng.standard_normal(t.shape).astype(np.float64)
        sg_loss = sg_loss + (s * sg.tensor(up, dtype=s.dtype, device=device)).sum()
        t_loss = t_loss + (t * torch.tensor(up, dtype=t.dtype)).sum()
    sg_loss.backward()
    t_loss.backward()
    for i, (s, t) in enumerate(zip(sg_in, t_in)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if t.grad is None:
                assert s.grad is None or not to_numpy(s.grad).any(), f"input {i} grad"
                continue
            assert s.grad is not None, f"input {i}: smolgrad gave no gradient, torch did"
            assert s.grad.dtype == s.dtype, f"input {i}: grad dtype {s.grad.dtype}"
            assert_close(s.grad, t.grad, atol * 10, rtol * 10, what=f"gradient of input {i}")
    if gradcheck and dtype == "float32" and sg.get_default_device() == "cpu" and \
            device == "cpu":
        run_gradcheck(fn, arrays, atol=gradcheck_atol)


def run_gradcheck(fn, arrays, atol=1e-5):
    ins = []
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            ins.append(sg.tensor(a.astype(np.float64), requires_grad=True))
        else:
            ins.append(_to_sg(a, "cpu", False))

    def scalarish(*xs):
        out = _flat_outputs(fn(*xs))
        return tuple(o for o in out if o.dtype.is_floating_point)

    assert sg.autograd.gradcheck(scalarish, ins, atol=atol, rtol=1e-3)
