"""Views share values with their base, as in PyTorch; `.data` is a Tensor; in-place writes
through views keep autograd right. Each case runs the same program on torch and smolgrad."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import smolgrad as sg


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


def both(program, device):
    """Run program(lib, make) with torch and with smolgrad; return both results as arrays.
    `make(values, grad=False)` builds a float32 tensor in that library."""

    def make_torch(values, grad=False):
        return torch.tensor(np.asarray(values, np.float32), requires_grad=grad)

    def make_sg(values, grad=False):
        return sg.tensor(np.asarray(values, np.float32), device=device, requires_grad=grad)

    return program(torch, make_torch), program(sg, make_sg)


def check(program, device):
    expected, got = both(program, device)
    if not isinstance(expected, (tuple, list)):
        expected, got = (expected,), (got,)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(_np(g), _np(e), rtol=1e-6, atol=1e-6)


def _slice_zero(lib, make):
    t = make(np.arange(6.0))
    t[1:3].zero_()
    return t


def _view_write(lib, make):
    t = make(np.arange(6.0))
    v = t.view(2, 3)
    v[1, 2] = 10.0
    v.mul_(2)
    return t, v


def _transpose_write(lib, make):
    m = make(np.ones((2, 3)))
    m.T[0].fill_(5.0)
    m.t()[2, 1] = -1.0
    return m


def _base_write_seen_by_view(lib, make):
    t = make(np.arange(6.0))
    v = t.reshape(3, 2)[:, 1]
    t.add_(1.0)
    return v


def _split_chunk_unbind(lib, make):
    t = make(np.arange(8.0))
    a, b = t.split(4)
    b += 1.0
    c, d = t.chunk(2)
    c.mul_(3)
    t.unbind(0)[7].fill_(-2.0)
    return t


def _detach_shares(lib, make):
    t = make(np.arange(3.0))
    d = t.detach()
    d.add_(5.0)
    t.mul_(2)
    return t, d


def _data_sgd_loop(lib, make):
    w = make([0.5, -1.0, 2.0], grad=True)
    x = make([1.0, 2.0, 3.0])
    for _ in range(3):
        loss = ((w * x).sum() - 1.0) ** 2
        w.grad = None
        loss.backward()
        w.data += -0.01 * w.grad
        w.data.add_(-0.01 * w.grad)
    return w


def _data_inplace_init(lib, make):
    p = make(np.ones((2, 2)), grad=True)
    p.data.mul_(0.5)
    p.data[0].fill_(3.0)
    p.data = p.data * 2
    return p


def _setitem_through_view_recorded(lib, make):
    x = make([1.0, 2.0, 3.0], grad=True)
    y = x * 1.0
    y[0:2].mul_(make([2.0, 3.0]))
    (y * y).sum().backward()
    return y, x.grad


def _write_value_with_grad_into_view(lib, make):
    x = make([1.0, 2.0, 3.0, 4.0])
    v = make([5.0, 6.0], grad=True)
    y = x.clone()
    y.view(2, 2)[1] = v * v
    (y * make([1.0, 2.0, 3.0, 4.0])).sum().backward()
    return y, v.grad


def _view_grad_after_base_write(lib, make):
    x = make([1.0, 2.0, 3.0], grad=True)
    y = x * 2.0
    v = y[1:]
    y.mul_(make([1.0, 10.0, 100.0]))
    v.sum().backward()
    return v, x.grad


@pytest.mark.parametrize("program", [
    _slice_zero, _view_write, _transpose_write, _base_write_seen_by_view, _split_chunk_unbind,
    _detach_shares, _data_sgd_loop, _data_inplace_init, _setitem_through_view_recorded,
    _write_value_with_grad_into_view, _view_grad_after_base_write,
], ids=lambda f: f.__name__.strip("_"))
def test_views_alias_as_in_torch(program, device):
    check(program, device)


def test_chained_views(device):
    t = sg.arange(24.0, device=device).reshape(2, 3, 4)
    tt = torch.arange(24.0).reshape(2, 3, 4)
    for lib_t in (t, tt):
        lib_t.permute(2, 0, 1)[1:3, 1].unsqueeze(0).squeeze(0).narrow(1, 1, 1).fill_(0.5)
    np.testing.assert_array_equal(t.numpy(), tt.numpy())


def test_data_is_a_tensor_not_recorded(device):
    p = sg.ones(3, device=device, requires_grad=True)
    d = p.data
    assert isinstance(d, sg.Tensor) and not d.requires_grad and d.grad_fn is None
    d += 1.0  # the notebook idiom: stays a float32 Tensor, changes p
    assert d.dtype == sg.float32 and p.tolist() == [2.0, 2.0, 2.0]
    assert p.is_leaf and p.requires_grad
    with pytest.raises(TypeError, match="must be a Tensor"):
        p.data = [1.0, 2.0, 3.0]


def test_writes_bump_the_shared_version(device):
    x = sg.ones(3, device=device, requires_grad=True)
    y = x * 1.0
    z = y.exp()  # saves its output
    y.detach()[0] = 5.0  # a detached view shares the version counter, as in PyTorch
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()
    # .data does not tell autograd (PyTorch's escape hatch): no error
    x2 = sg.ones(3, device=device, requires_grad=True)
    y2 = x2 * 1.0
    z2 = y2 * y2
    y2.data.fill_(2.0)
    z2.sum().backward()


def test_view_errors(device):
    x = sg.ones(3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf tensor that requires grad"):
        x[0:2].mul_(2)
    with sg.no_grad():
        x[0:2].mul_(2)
    assert x.tolist() == [2.0, 2.0, 1.0]
    e = sg.ones(1, 3, device=device).expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element"):
        e.add_(1)
    if device != "mlx":  # MLX has no strides to ask: its reshape always counts as a view
        with pytest.raises(RuntimeError, match=r"view: size \[6\] is not compatible"):
            sg.ones(2, 3, device=device).t().view(6)
        r = sg.ones(2, 3, device=device)
        flat = r.t().reshape(6)  # a copy, as in PyTorch: writing to it leaves r alone
        flat.zero_()
        assert r.sum().item() == 6.0


def test_advanced_index_is_a_copy(device):
    t = sg.arange(4.0, device=device)
    c = t[[0, 1]]
    c.zero_()
    m = t[t > 1]
    m.zero_()
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_hook_must_keep_shape_and_dtype(device):
    w = sg.ones(3, device=device, requires_grad=True)
    w.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"hook '<lambda>' has changed the gradient"):
        (w * 2).sum().backward()
    w2 = sg.ones(3, device=device, requires_grad=True)
    if device == "cpu":
        w2.register_hook(lambda g: g.double())
        with pytest.raises(RuntimeError, match="float64"):
            (w2 * 2).sum().backward()


def test_concurrent_backward_into_a_shared_leaf():
    w = sg.zeros(3, requires_grad=True)
    calls = 1500

    def work():
        for _ in range(calls):
            (w * 1.0).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.grad.tolist() == [4.0 * calls] * 3


def test_writes_through_a_slice_of_detach_change_the_leaf_unrecorded(device):
    # PyTorch: x.detach()[0:2].mul_(2) changes x's values, x stays a leaf, and a graph that
    # saved x before the write refuses to backward
    w = sg.ones(4, 3, requires_grad=True, device=device)
    tw = torch.ones(4, 3, requires_grad=True)
    saved, tsaved = (w * w).sum(), (tw * tw).sum()
    for lib_w in (w, tw):
        lib_w.detach()[0:2].mul_(2)
        lib_w.detach()[3] = 5.0
    assert w.tolist() == tw.tolist() and w.is_leaf and w.grad_fn is None
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        saved.backward()
    with pytest.raises(RuntimeError):
        tsaved.backward()
    (w * w).sum().backward()
    (tw * tw).sum().backward()
    assert w.grad.tolist() == tw.grad.tolist()


def test_a_detached_view_refuses_a_value_that_requires_grad():
    w = sg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"copy_: writing a value that requires grad"):
        w.detach()[0:2].copy_(sg.ones(2, requires_grad=True) * 2)
