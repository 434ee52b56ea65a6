"""Devices (SPEC §1): "cpu", "mlx", "cuda", the "gpu" alias, moving tensors between them,
the default device, factories per device, dtypes per device, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import smolgrad as sg
from smolgrad import arrays as backends

AVAILABLE = [d for d in ("cpu", "mlx", "cuda") if sg.is_available(d)]


@pytest.fixture
def restore_default_device():
    before = sg.get_default_device()
    yield
    sg.set_default_device(before)


# -- moving tensors -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [sg.float32, sg.float16, sg.int64, sg.int32, sg.bool])
def test_to_and_back_keeps_values_and_dtype(device, dtype):
    host = (np.arange(6).reshape(2, 3) % 3).astype(np.dtype(dtype.name))
    x = sg.tensor(host, device=device)
    assert x.device == device and str(x.device) == device and x.dtype is dtype
    back = x.cpu()
    assert back.device == "cpu" and back.dtype is dtype
    np.testing.assert_array_equal(back.numpy(), host)
    np.testing.assert_array_equal(x.numpy(), host)  # .numpy() works from any device
    assert x.tolist() == host.tolist()
    again = back.to(device)
    assert again.device == device
    np.testing.assert_array_equal(again.numpy(), host)


def test_to_device_and_dtype_together(device):
    x = sg.tensor([1.25, -2.5], device="cpu")
    y = x.to(device, sg.float16)
    assert y.device == device and y.dtype is sg.float16
    z = y.to(dtype=sg.float32, device="cpu")
    assert z.device == "cpu" and z.dtype is sg.float32
    np.testing.assert_array_equal(z.numpy(), [1.25, -2.5])
    assert x.to(y).device == device and x.to(y).dtype is sg.float16  # to(other_tensor)


def test_gradient_flows_back_across_devices(device):
    x = sg.tensor([1.0, 2.0, 3.0], requires_grad=True)  # on cpu
    y = x.to(device)
    assert (y is x) if device == "cpu" else (y.grad_fn is not None)
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.dtype is sg.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_item_and_repr_on_device(device):
    x = sg.tensor([[2.5]], device=device)
    assert x.item() == 2.5
    shown = "" if device == "cpu" else f", device='{'cuda:0' if device == 'cuda' else device}'"
    assert repr(x) == f"tensor([[2.5000]]{shown})"  # PyTorch names no device for the cpu
    assert float(sg.tensor(1.5, device=device) * 2) == 3.0


def test_numpy_refuses_a_tensor_that_requires_grad(device):
    x = sg.ones(2, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 1.0])


# -- half(): float16 on every backend, gradient in float32 --------------------------------


def test_half_gradient_reaches_float32_source_in_float32(device):
    x = sg.tensor([0.5, -1.0, 2.0], device=device, requires_grad=True)
    h = x.half()
    assert h.dtype is sg.float16 and h.device == device
    (h * h).sum().backward()
    assert x.grad.dtype is sg.float32 and x.grad.device == device
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -2.0, 4.0])


# -- the default device -------------------------------------------------------------------


def test_set_default_device_moves_factories(device, restore_default_device):
    sg.set_default_device(device)
    assert sg.get_default_device() == device
    for t in (sg.zeros(2), sg.ones(2, 3), sg.tensor([1.0]), sg.randn(2), sg.arange(3),
              sg.full((2,), 7.0), sg.eye(2), sg.Tensor([1.0, 2.0])):
        assert t.device == device, t
    sg.set_default_device("cpu")
    assert sg.zeros(1).device == "cpu"


def test_default_device_is_cpu_and_env_variable_chooses_it():
    code = "import smolgrad as sg; print(sg.get_default_device(), sg.zeros(1).device)"
    for name in AVAILABLE:
        env = dict(os.environ, SMOLGRAD_DEVICE=name)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [name, name]
    env = {k: v for k, v in os.environ.items() if k != "SMOLGRAD_DEVICE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.split() == ["cpu", "cpu"], out.stderr


# -- factories on each device -------------------------------------------------------------


def test_factories_on_each_device(device):
    checks = {
        "zeros": (sg.zeros(2, 3, device=device), np.zeros((2, 3))),
        "ones": (sg.ones((2,), dtype=sg.int64, device=device), np.ones(2)),
        "full": (sg.full((2, 2), 3.5, device=device), np.full((2, 2), 3.5)),
        "empty": (sg.empty(0, 4, device=device), np.empty((0, 4))),
        "arange": (sg.arange(1, 7, 2, device=device), np.arange(1, 7, 2)),
        "linspace": (sg.linspace(0, 1, 5, device=device), np.linspace(0, 1, 5)),
        "eye": (sg.eye(2, 3, device=device), np.eye(2, 3)),
    }
    for name, (t, want) in checks.items():
        assert t.device == device, name
        np.testing.assert_allclose(t.numpy(), want, err_msg=name)
    assert sg.arange(3, device=device).dtype is sg.int64
    assert sg.ones(2, 2, dtype=sg.bool, device=device).dtype is sg.bool
    r = sg.rand(100, device=device)
    assert r.device == device and 0 <= r.numpy().min() and r.numpy().max() < 1
    n = sg.randn(2, 3, device=device, requires_grad=True)
    assert n.requires_grad and n.shape == (2, 3) and n.device == device
    i = sg.randint(0, 5, (50,), device=device)
    assert i.dtype is sg.int64 and set(i.numpy().tolist()) <= set(range(5))
    base = sg.ones(2, 3, device=device)
    for like in (sg.zeros_like(base), sg.ones_like(base), sg.full_like(base, 2.0),
                 sg.rand_like(base), sg.randn_like(base)):
        assert like.device == device and like.shape == (2, 3) and like.dtype is sg.float32
    assert sg.zeros_like(base, device="cpu").device == "cpu"


# -- dtypes per device --------------------------------------------------------------------


def test_dtypes_per_device(device):
    b = backends.get_backend(device)
    for d in (sg.float16, sg.float32, sg.int32, sg.int64, sg.bool):
        assert sg.zeros(2, dtype=d, device=device).dtype is d
    if b.has_float64:
        x = sg.tensor([1.0, 1e-12], dtype=sg.float64, device=device)
        assert x.dtype is sg.float64 and (x + 1.0).numpy()[1] != 1.0
    else:
        with pytest.raises(TypeError, match="float64.*mlx"):
            sg.zeros(2, dtype=sg.float64, device=device)
    if b.has_bfloat16:
        x = sg.tensor([1.5, 2.0], dtype=sg.bfloat16, device=device, requires_grad=True)
        (x * x).sum().backward()
        assert x.grad.dtype is sg.bfloat16
        np.testing.assert_allclose(x.float().detach().numpy(), [1.5, 2.0])
        with pytest.raises(TypeError, match="bfloat16.*cpu"):
            x.detach().cpu()  # NumPy has no bfloat16: refuse rather than widen silently
        assert x.detach().to("cpu", sg.float32).dtype is sg.float32
    else:
        with pytest.raises(TypeError, match=f"bfloat16.*{device}"):
            sg.zeros(2, dtype=sg.bfloat16, device=device)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs two devices")
def test_mixing_devices_names_both():
    other = AVAILABLE[1]
    a, b = sg.ones(2), sg.ones(2, device=other)
    for op in (lambda: a + b, lambda: a @ b, lambda: sg.cat([a, b]),
               lambda: sg.where(a > 0, a, b)):
        with pytest.raises(RuntimeError, match=rf"'cpu'.*'{other}'|'{other}'.*'cpu'"):
            op()
    with pytest.raises(RuntimeError, match="device"):
        a[sg.tensor([0], device=other)]


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'.*'cpu', 'mlx', 'cuda'"):
        sg.zeros(2, device="tpu")
    with pytest.raises(ValueError, match="unknown device"):
        sg.set_default_device("metal")
    assert sg.is_available("tpu") is False
    assert sg.zeros(2).device == "cpu"  # the rest keeps working


def test_unavailable_backend_gives_install_hint_and_the_rest_keeps_working(monkeypatch):
    """A device whose library is missing: a RuntimeError saying what to install, every
    time it is asked for; other devices are unaffected."""
    monkeypatch.setitem(backends._FACTORIES, "fakegpu",
                        ("no_such_backend_module", "FakeBackend",
                         "fakelib (pip install fakelib)"))
    monkeypatch.setattr(backends, "_unavailable", {})
    for _ in range(2):
        with pytest.raises(RuntimeError, match=r"'fakegpu' needs fakelib \(pip install"):
            sg.zeros(2, device="fakegpu")
    assert sg.is_available("fakegpu") is False
    with pytest.raises(RuntimeError, match="fakelib"):
        sg.set_default_device("fakegpu")
    assert sg.get_default_device() != "fakegpu"
    assert sg.ones(2).device == "cpu"
    for name in AVAILABLE:
        assert sg.ones(1, device=name).device == name


def test_cuda_without_cupy_or_gpu():
    if "cuda" in AVAILABLE:
        pytest.skip("CuPy and a GPU are present")
    assert sg.is_available("cuda") is False
    with pytest.raises(RuntimeError, match="cupy.*NVIDIA GPU"):
        sg.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match="cupy"):
        sg.ones(2).to("cuda")


def test_gpu_alias_and_device_objects():
    if "cuda" in AVAILABLE or "mlx" in AVAILABLE:
        expected = "cuda" if "cuda" in AVAILABLE else "mlx"
        assert sg.device("gpu").type == expected
        assert sg.ones(1, device="gpu").device == expected
    else:
        with pytest.raises(RuntimeError, match="gpu"):
            sg.device("gpu")
    d = sg.device("cuda:0")
    assert d.type == "cuda" and d == "cuda" and d != "cpu" and repr(d) == "device(type='cuda')"
    assert sg.ones(1).device == sg.device("cpu") and hash(sg.device("cpu")) == hash("cpu")


def test_cuda_is_available_matches_the_backend():
    assert sg.cuda.is_available() == sg.is_available("cuda")
    assert sg.cuda.device_count() == (1 if sg.cuda.is_available() else 0)
