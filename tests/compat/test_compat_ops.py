"""Ops that the compatibility programs needed, against PyTorch: contiguous()/is_contiguous()
(a real row-major copy after a transpose, so `.contiguous().view(...)` works), index_add /
index_add_, bincount."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import smolgrad as sg


def test_contiguous_after_transpose_allows_view(device):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ours = sg.tensor(x, device=device, requires_grad=True)
    ref = torch.tensor(x, requires_grad=True)
    outs = []
    for t in (ours, ref):
        y = t.transpose(1, 2)
        assert t.is_contiguous()
        outs.append((y.is_contiguous(), y.contiguous().is_contiguous()))
        z = y.contiguous().view(2, 12)
        (z * z.new_tensor(np.arange(24, dtype=np.float32).reshape(2, 12))).sum().backward()
        outs.append(z.tolist())
    assert outs[0] == outs[2]
    assert outs[1] == outs[3]
    np.testing.assert_array_equal(ours.grad.numpy(), ref.grad.numpy())


@pytest.mark.parametrize("make", ["t", "slice_step", "narrow_cols", "rows", "expand"])
def test_is_contiguous_as_pytorch(device, make):
    views = {"t": lambda x: x.t(), "slice_step": lambda x: x[::2],
             "narrow_cols": lambda x: x[:, 1:3], "rows": lambda x: x[1:3],
             "expand": lambda x: x[:1].expand(3, 4)}
    ours = views[make](sg.zeros(4, 4, device=device))
    ref = views[make](torch.zeros(4, 4))
    assert ours.is_contiguous() == ref.is_contiguous()


def test_contiguous_copy_is_not_a_view(device):
    ours, ref = sg.zeros(2, 3, device=device), torch.zeros(2, 3)
    for t in (ours, ref):
        c = t.t().contiguous()
        c[0, 0] = 5.0
    assert ours.tolist() == ref.tolist()
    same = sg.ones(3, device=device)
    assert same.contiguous() is same


@pytest.mark.parametrize("dim", [0, 1])
def test_index_add(device, dim):
    rng = np.random.default_rng(dim)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    index = np.array([0, 3, 3, 1])
    src_shape = (4, 5) if dim == 0 else (4, 4)
    src = rng.normal(size=src_shape).astype(np.float32)
    weights = rng.normal(size=(4, 5)).astype(np.float32)
    results = []
    for lib, kw in ((sg, {"device": device}), (torch, {})):
        a = lib.tensor(x, requires_grad=True, **kw)
        s = lib.tensor(src, requires_grad=True, **kw)
        out = lib.index_add(a, dim, lib.tensor(index, **kw), s, alpha=1.5)
        (out * lib.tensor(weights, **kw)).sum().backward()
        inplace = lib.zeros(4, 5, **kw)
        inplace.index_add_(dim, lib.tensor(index, **kw), lib.tensor(src, **kw))
        results.append([np.asarray(v) for v in (out.tolist(), a.grad.tolist(), s.grad.tolist(),
                                                inplace.tolist())])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_index_add_shape_mismatch_names_the_op(device):
    with pytest.raises(RuntimeError, match="index_add: source"):
        sg.zeros(3, 2, device=device).index_add_(0, sg.tensor([0, 1], device=device),
                                                  sg.ones(3, 2, device=device))


@pytest.mark.parametrize("case", ["plain", "minlength", "float_weights", "int_weights", "empty"])
def test_bincount(device, case):
    values = {"empty": []}.get(case, [3, 1, 1, 0, 5, 1])
    weights = {"float_weights": [0.5, 1.0, 2.0, 0.25, 1.0, 1.0],
               "int_weights": [1, 2, 3, 4, 5, 6]}.get(case)
    minlength = 9 if case in ("minlength", "empty") else 0
    results = []
    for lib, kw in ((sg, {"device": device}), (torch, {})):
        w = None if weights is None else lib.tensor(weights, **kw)
        out = lib.bincount(lib.tensor(values, dtype=lib.int64, **kw), weights=w,
                           minlength=minlength)
        results.append((out.tolist(), str(out.dtype).replace("torch.", "smolgrad.")))
    if device == "mlx" and case == "int_weights":  # MLX has no float64: float32 there
        assert results[0][0] == results[1][0]
        return
    assert results[0] == results[1]


@pytest.mark.parametrize("bad", [[-1, 2], [[1, 2]], [1.0, 2.0]])
def test_bincount_rejects_what_pytorch_rejects(device, bad):
    with pytest.raises(RuntimeError, match="bincount: only supports 1-d non-negative"):
        sg.bincount(sg.tensor(bad, device=device))
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.bincount(torch.tensor(bad))


def _reassigned_names(lib) -> tuple:
    """A model that replaces a child, a parameter and a buffer after creating others."""
    model = lib.nn.Module()
    model.decoder = lib.nn.Linear(2, 2)
    model.register_buffer("pe", lib.zeros(2))
    model.scale = lib.nn.Parameter(lib.ones(1))
    model.emb = lib.nn.Embedding(3, 2)
    model.decoder = lib.nn.Linear(2, 3)
    model.scale = lib.nn.Parameter(lib.zeros(1))
    model.register_buffer("pe", lib.ones(2), persistent=False)
    model.pe = lib.ones(2)
    return [n for n, _ in model.named_parameters()], list(model.state_dict())


def test_reassigned_child_keeps_its_place():
    assert _reassigned_names(sg) == _reassigned_names(torch)


def test_rnn_flatten_parameters_is_a_no_op():
    for lib in (sg, torch):
        lstm = lib.nn.LSTM(3, 4, 2)
        before = [p.tolist() for p in lstm.parameters()]
        assert lstm.flatten_parameters() is None
        assert [p.tolist() for p in lstm.parameters()] == before


def test_shape_prints_as_pytorch():
    assert repr(sg.zeros(2, 3).shape) == repr(torch.zeros(2, 3).shape)
    assert str(sg.zeros(2, 3).size()) == str(torch.zeros(2, 3).size())


def test_manual_seed_returns_the_default_generator():
    assert isinstance(sg.manual_seed(0), sg.Generator)
    assert isinstance(torch.manual_seed(0), torch.Generator)
