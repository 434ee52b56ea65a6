"""`sg.autocast` against `torch.autocast("cpu")`: the same ops inside a region give the
dtypes and (within half-precision tolerance) the values that torch gives; a training step
with autocast and GradScaler gives float32 gradients equal to torch's; regions nest, decorate,
are per thread, and are a warned no-op where the backend lacks the dtype (cpu + bfloat16).

On "cpu" the region's dtype is float16 (NumPy has no bfloat16); on "mlx" bfloat16, checked
against torch's CPU bfloat16. smolgrad's "mlx" follows PyTorch's GPU lists, where softmax,
log_softmax and layer_norm compute in float32 (PyTorch's CPU list keeps their input dtype).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

import smolgrad as sg
from smolgrad.amp import autocast_mode

REDUCED = {"cpu": "float16", "mlx": "bfloat16"}
TOLERANCE = {"float16": 1e-2, "bfloat16": 4e-2}
GPU_FLOAT32_OPS = ("softmax_of_half", "log_softmax_of_half", "layer_norm_of_half")

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6)).astype(np.float32)
W1 = (rng.standard_normal((8, 6)) * 0.4).astype(np.float32)
B1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
W2 = (rng.standard_normal((3, 8)) * 0.4).astype(np.float32)
B2 = (rng.standard_normal(3) * 0.1).astype(np.float32)
IMAGE = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
KERNEL = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
SIGNAL = rng.standard_normal((2, 3, 7)).astype(np.float32)
KERNEL_1D = (rng.standard_normal((4, 3, 3)) * 0.3).astype(np.float32)
LABELS = np.array([0, 2, 1, 2], dtype=np.int64)


def _numpy(t) -> np.ndarray:
    """A float32 NumPy copy of a smolgrad or torch tensor (bfloat16 has no NumPy dtype)."""
    return t.detach().float().numpy()


def _region(lib, device: str, **kwargs):
    """An autocast region for the device under test: torch's runs on its CPU."""
    dtype = getattr(lib, REDUCED[device])
    return lib.autocast("cpu" if lib is torch else device, dtype=dtype, **kwargs)


def _tensor(lib, array, device, requires_grad=False):
    if lib is torch:
        return torch.tensor(array, requires_grad=requires_grad)
    return sg.tensor(array, device=device, requires_grad=requires_grad)


def _ops(lib, device: str) -> dict:
    """The ops under test, run inside an autocast region; {name: output}."""
    F = lib.nn.functional
    x, w1, b1 = (_tensor(lib, a, device) for a in (X, W1, B1))
    with _region(lib, device):
        hidden = F.linear(x, w1, b1)
        logits = hidden[:, :3]
        return {
            "linear": hidden,
            "matmul": x @ w1.T,
            "mm": lib.mm(x, w1.T),
            "bmm": lib.bmm(x.reshape(2, 2, 6), w1.T.reshape(1, 6, 8).expand(2, 6, 8)),
            "conv2d": F.conv2d(_tensor(lib, IMAGE, device), _tensor(lib, KERNEL, device),
                               padding=1),
            "conv1d": F.conv1d(_tensor(lib, SIGNAL, device), _tensor(lib, KERNEL_1D, device)),
            "relu_of_half": F.relu(hidden),
            "softmax_of_float32": F.softmax(x, dim=-1),
            "softmax_of_half": F.softmax(hidden, dim=-1),
            "log_softmax_of_half": F.log_softmax(hidden, dim=-1),
            "layer_norm_of_half": F.layer_norm(hidden, (8,)),
            "cross_entropy": F.cross_entropy(logits, _tensor(lib, LABELS, device)),
            "mse_loss": F.mse_loss(hidden, lib.zeros_like(hidden)),
            "l1_loss": F.l1_loss(hidden, lib.zeros_like(hidden)),
            "nll_loss": F.nll_loss(logits, _tensor(lib, LABELS, device)),
            "conv_transpose2d": F.conv_transpose2d(_tensor(lib, IMAGE, device),
                                                   _tensor(lib, KERNEL, device).transpose(0, 1)),
            "attention": F.scaled_dot_product_attention(*(x.reshape(1, 4, 6),) * 3,
                                                        is_causal=True),
            "float64_matmul": x.double() @ w1.double().T,
        }


def test_ops_inside_autocast_match_torch(device):
    ours, theirs = _ops(sg, device), _ops(torch, device)
    tolerance = TOLERANCE[REDUCED[device]]
    for name, expected in theirs.items():
        got = ours[name]
        want_dtype = str(expected.dtype).removeprefix("torch.")
        if device == "mlx" and name in GPU_FLOAT32_OPS:
            want_dtype = "float32"  # PyTorch's GPU list: computed (and returned) in float32
        assert got.dtype.name == want_dtype, (name, got.dtype, expected.dtype)
        np.testing.assert_allclose(_numpy(got), _numpy(expected), rtol=tolerance,
                                   atol=tolerance, err_msg=name)


def test_the_reduced_dtype_is_really_used(device):
    """Not only the label: a float16 product of these numbers rounds as float16 does."""
    a = sg.tensor([[1.0 + 2.0**-12]], device=device)  # not representable in half precision
    with _region(sg, device):
        product = a @ sg.ones(1, 1, device=device)
    assert product.float().item() == 1.0
    assert (a @ sg.ones(1, 1, device=device)).item() == 1.0 + 2.0**-12


def _mlp(lib, device):
    layers = lib.nn.Sequential(lib.nn.Linear(6, 8), lib.nn.ReLU(), lib.nn.Linear(8, 3))
    with lib.no_grad():
        for param, value in zip(layers.parameters(), (W1, B1, W2, B2)):
            param.copy_(_tensor(lib, value, device))
    if lib is sg:
        layers.to(device)
    return layers


def _training_step(lib, device):
    """One step with autocast + GradScaler; returns (loss, grads after unscale_, params)."""
    model = _mlp(lib, device)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
    scaler = lib.amp.GradScaler("cpu" if lib is torch else device)
    with _region(lib, device):
        logits = model(_tensor(lib, X, device))
        loss = lib.nn.functional.cross_entropy(logits, _tensor(lib, LABELS, device))
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grads = [p.grad.clone() for p in model.parameters()]
    scaler.step(optimizer)
    scaler.update()
    return logits, loss, grads, list(model.parameters())


def test_training_step_with_grad_scaler_matches_torch(device):
    ours, theirs = _training_step(sg, device), _training_step(torch, device)
    tolerance = TOLERANCE[REDUCED[device]]
    (logits, loss, grads, params), (t_logits, t_loss, t_grads, t_params) = ours, theirs
    assert logits.dtype.name == REDUCED[device] == str(t_logits.dtype).removeprefix("torch.")
    assert loss.dtype is sg.float32 and t_loss.dtype is torch.float32
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=tolerance)
    for got, want in zip(grads + params, t_grads + t_params):
        assert got.dtype is sg.float32 and want.dtype is torch.float32  # master weights
        np.testing.assert_allclose(_numpy(got), _numpy(want), rtol=tolerance, atol=tolerance)


def test_nested_disabled_region_restores_float32(device):
    x, w = sg.ones(2, 3, device=device), sg.ones(3, 4, device=device)
    with _region(sg, device):
        assert (x @ w).dtype.name == REDUCED[device]
        with sg.autocast(device, enabled=False):
            assert (x @ w).dtype is sg.float32
            assert not sg.is_autocast_enabled(device)
        assert (x @ w).dtype.name == REDUCED[device]
    assert (x @ w).dtype is sg.float32


def test_decorator_form(device):
    @_region(sg, device)
    def forward(a, b):
        return a @ b

    x, w = sg.ones(2, 3, device=device), sg.ones(3, 4, device=device)
    assert forward(x, w).dtype.name == REDUCED[device]
    assert forward.__name__ == "forward"
    assert (x @ w).dtype is sg.float32


def test_outside_autocast_nothing_changes_and_the_state_reads_like_torch():
    x = sg.ones(2, 3)
    assert (x @ sg.ones(3, 4)).dtype is sg.float32
    assert sg.nn.functional.linear(x.half(), sg.ones(4, 3).half()).dtype is sg.float16
    for lib in (sg, torch):
        assert not lib.is_autocast_enabled("cpu")
        assert lib.get_autocast_dtype("cpu") is lib.bfloat16
        with lib.autocast("cpu", dtype=lib.float16):
            assert lib.is_autocast_enabled("cpu") and not lib.is_autocast_enabled()
            assert lib.get_autocast_dtype("cpu") is lib.float16
            with lib.autocast("cpu", dtype=lib.float16, enabled=False):
                assert not lib.is_autocast_enabled("cpu")
                assert lib.get_autocast_dtype("cpu") is lib.float16
        assert not lib.is_autocast_enabled("cpu")
        assert lib.get_autocast_dtype("cpu") is lib.bfloat16


def test_cpu_bfloat16_is_a_no_op_warned_once(monkeypatch):
    monkeypatch.setattr(autocast_mode, "_warned_no_op", set())
    x, w = sg.ones(2, 3), sg.ones(3, 4)
    with pytest.warns(UserWarning, match=r"no bfloat16.*dtype=torch\.float16"):
        with sg.autocast("cpu"):  # PyTorch's CPU default, bfloat16
            assert (x @ w).dtype is sg.float32
            assert not sg.is_autocast_enabled("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with sg.autocast("cpu", dtype=sg.bfloat16):  # the second time: silent
            assert (x @ w).dtype is sg.float32
        sg.autocast("cpu")  # making a region (not entering it) never warns
    with torch.autocast("cpu", dtype=torch.float16):  # the suggested dtype works in torch too
        assert (torch.ones(2, 3) @ torch.ones(3, 4)).dtype is torch.float16


def test_regions_are_per_thread():
    seen = []

    def product_dtype_in_another_thread():
        seen.append((sg.ones(2, 3) @ sg.ones(3, 4)).dtype)

    with sg.autocast("cpu", dtype=sg.float16):
        worker = threading.Thread(target=product_dtype_in_another_thread)
        worker.start()
        worker.join()
        assert (sg.ones(2, 3) @ sg.ones(3, 4)).dtype is sg.float16
    assert seen == [sg.float32]


def test_backward_inside_a_region_is_not_recast(device):
    # backward ops run in the dtypes forward chose: a float32 graph differentiated inside a
    # region (with create_graph, so the backward formulas are recorded ops) stays float32
    x = sg.tensor(X, device=device)
    w = sg.tensor(W1, device=device, requires_grad=True)
    loss = (x @ w.T).pow(2).sum()
    with _region(sg, device):
        inside = sg.autograd.grad(loss, w, create_graph=True, retain_graph=True)[0]
    outside = sg.autograd.grad(loss, w, create_graph=True)[0]
    assert inside.dtype is outside.dtype is sg.float32
    np.testing.assert_array_equal(_numpy(inside), _numpy(outside))
