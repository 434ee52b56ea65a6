"""The autograd engine: accumulation, graph freeing, higher order, deep graphs, versions."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg


def test_leaf_gradients_accumulate(device):
    x = sg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert_close(x.grad, torch.tensor([5.0, 7.0, 9.0]))


def test_same_input_twice_accumulates_within_one_backward(device):
    x = sg.tensor(3.0, device=device, requires_grad=True)
    (x * x + x).backward()  # d/dx (x² + x) = 2x + 1
    assert x.grad.item() == pytest.approx(7.0)


def test_non_leaf_keeps_grad_only_when_retained(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 2
    z = x * 3
    z.retain_grad()
    (y.sum() + (z * z).sum()).backward()
    assert y.grad is None and not y.is_leaf and x.is_leaf
    assert_close(z.grad, torch.tensor([6.0, 12.0]))


def test_second_backward_raises_unless_retain_graph(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    y2 = (x * x).sum()
    x.grad = None
    y2.backward(retain_graph=True)
    y2.backward()
    assert_close(x.grad, torch.tensor([4.0, 8.0]))


def test_backward_on_non_scalar_needs_gradient(device):
    x = sg.ones(2, 3, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\)"):
        y.backward()
    y.backward(sg.full((2, 3), 0.5, device=device))
    assert_close(x.grad, torch.full((2, 3), 1.0))


def test_backward_without_grad_raises(device):
    x = sg.ones(2, device=device)
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.sum().backward()


def test_broadcast_gradient_has_input_shape_and_dtype(device):
    a = sg.ones(3, 1, device=device, requires_grad=True)
    b = sg.ones(4, dtype=sg.float64 if device == "cpu" else sg.float32, device=device,
                requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and a.grad.dtype == sg.float32
    assert b.grad.shape == (4,) and b.grad.dtype == b.dtype
    assert_close(a.grad, torch.full((3, 1), 4.0))


def test_half_gradient_reaches_float32_source_in_float32(device):
    x = sg.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    y = x.half()
    assert y.dtype == sg.float16
    (y * y).sum().backward()
    assert x.grad.dtype == sg.float32
    assert_close(x.grad, torch.tensor([2.0, -4.0, 6.0]), atol=1e-3)


def test_create_graph_second_and_third_derivatives(device):
    x = sg.tensor([0.5, -1.0, 2.0], device=device, requires_grad=True)
    (g,) = sg.autograd.grad((x ** 3).sum(), x, create_graph=True)
    (h,) = sg.autograd.grad(g.sum(), x, create_graph=True)
    (k,) = sg.autograd.grad(h.sum(), x)
    xt = torch.tensor([0.5, -1.0, 2.0])
    assert_close(g, 3 * xt ** 2)
    assert_close(h, 6 * xt)
    assert_close(k, torch.full((3,), 6.0))


def test_backward_create_graph_gives_differentiable_grad(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x.tanh() * x).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    (xt.tanh() * xt).sum().backward(create_graph=True)
    assert_close(gx, xt.grad)


def test_hessian_vector_product_of_mlp_matches_torch(device):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(5, 3), (3, 4), (4,),
                                                                   (4, 1), (5, 1)]]
    v = [rng.standard_normal(a.shape).astype(np.float32) for a in arrays[1:4]]

    def hvp(lib, make):
        x, w1, b1, w2, target = [make(a, i in (1, 2, 3)) for i, a in enumerate(arrays)]
        loss = (((x @ w1 + b1).tanh() @ w2 - target) ** 2).mean()
        grads = (sg.autograd.grad if lib is sg else torch.autograd.grad)(
            loss, [w1, b1, w2], create_graph=True)
        dot = sum((g * make(vi, False)).sum() for g, vi in zip(grads, v))
        return (sg.autograd.grad if lib is sg else torch.autograd.grad)(dot, [w1, b1, w2])

    ours = hvp(sg, lambda a, rg: sg.tensor(a, device=device, requires_grad=rg))
    theirs = hvp(torch, lambda a, rg: torch.tensor(a, requires_grad=rg))
    for o, t in zip(ours, theirs):
        assert_close(o, t, atol=1e-5)


def test_autograd_grad_does_not_touch_dot_grad_and_checks_unused(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    unused = sg.tensor([1.0], device=device, requires_grad=True)
    y = (x * x).sum()
    (g,) = sg.autograd.grad(y, x, retain_graph=True)
    assert x.grad is None
    assert_close(g, torch.tensor([2.0, 4.0]))
    with pytest.raises(RuntimeError, match="allow_unused"):
        sg.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = sg.autograd.grad(y, [x, unused], allow_unused=True)
    assert gu is None


def test_million_op_chain_differentiates_without_recursion():
    x = sg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(1_000_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_no_grad_context_decorator_and_set_grad_enabled(device):
    x = sg.ones(2, device=device, requires_grad=True)
    with sg.no_grad():
        assert not (x * 2).requires_grad
        with sg.enable_grad():
            assert (x * 2).requires_grad
    assert sg.is_grad_enabled()

    @sg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and sg.is_grad_enabled()
    sg.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        sg.set_grad_enabled(True)
    with sg.set_grad_enabled(False):
        assert not sg.is_grad_enabled()
    assert sg.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = []
    with sg.no_grad():
        t = threading.Thread(target=lambda: seen.append(sg.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_detach_cuts_the_graph(device):
    x = sg.ones(2, device=device, requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None
    z = (x * y).sum()
    z.backward()
    assert_close(x.grad, torch.full((2,), 2.0))


def test_in_place_change_of_saved_tensor_raises_at_backward(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    w = sg.tensor([3.0, 4.0], device=device)
    y = (x * w).sum()
    w += 1  # Mul saved w for its backward
    with pytest.raises(RuntimeError, match=r"Mul.*modified by an in-place operation"):
        y.backward()


def test_in_place_on_leaf_requiring_grad_raises_outside_no_grad(device):
    w = sg.ones(2, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w += 1
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w[0] = 5.0
    with sg.no_grad():
        w -= 0.5
        w.zero_()
    assert w.requires_grad and w.is_leaf
    assert w.tolist() == [0.0, 0.0]


def test_in_place_on_non_leaf_is_differentiated_like_torch(device):
    def run(lib, make):
        x = make([1.0, -2.0, 3.0])
        a = x * 2
        a += x * x  # in place on a non-leaf: history rebased
        a[1] = x[0] * 10
        a.sum().backward()
        return x.grad

    ours = run(sg, lambda v: sg.tensor(v, device=device, requires_grad=True))
    theirs = run(torch, lambda v: torch.tensor(v, requires_grad=True))
    assert_close(ours, theirs)


def test_in_place_after_use_by_another_op_raises(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    a = x * 2
    b = a + 1  # Add does not save a, but uses it as its input
    a.mul_(3)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        b.sum().backward()


def test_optimizer_style_update_then_stale_backward_raises(device):
    w = sg.ones(3, device=device, requires_grad=True)
    loss = (w * w).sum()
    with sg.no_grad():
        w -= 0.1  # a step before the backward that still needs w
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_hooks_see_and_replace_gradients(device):
    x = sg.ones(3, device=device, requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.tolist()) or g * 2)
    (x * 3).sum().backward()
    assert seen == [[3.0, 3.0, 3.0]]
    assert x.grad.tolist() == [6.0, 6.0, 6.0]
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0, 3.0]


class Cube(sg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * x * grad


class WrongSquare(sg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * grad  # should be 2x


def test_custom_function_and_its_double_backward(device):
    x = sg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = Cube.apply(x)
    assert repr(y.grad_fn) == "<CubeBackward0>"
    (g,) = sg.autograd.grad(y.sum(), x, create_graph=True)
    assert_close(g, torch.tensor([3.0, 12.0]))
    (h,) = sg.autograd.grad(g.sum(), x)
    assert_close(h, torch.tensor([6.0, 12.0]))


def test_gradcheck_passes_and_catches_a_wrong_backward():
    x = sg.tensor(np.linspace(-1, 1, 5), dtype=sg.float64, requires_grad=True)
    assert sg.autograd.gradcheck(Cube.apply, (x,))
    assert sg.autograd.gradgradcheck(lambda t: (t * t).tanh(), (x,))
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        sg.autograd.gradcheck(WrongSquare.apply, (x,))
    assert not sg.autograd.gradcheck(WrongSquare.apply, (x,), raise_exception=False)


def test_requires_grad_rules(device):
    with pytest.raises(RuntimeError, match="floating point"):
        sg.tensor([1, 2], device=device, requires_grad=True)
    x = sg.ones(2, device=device)
    assert x.requires_grad_() is x and x.requires_grad
    assert x.set_requires_grad(False) is x and not x.requires_grad
    y = sg.ones(2, device=device, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_grad_assignment_is_checked(device):
    x = sg.ones(2, device=device, requires_grad=True)
    x.grad = sg.zeros(2, device=device)
    x.grad = None
    with pytest.raises(RuntimeError, match=r"shape \(3,\)"):
        x.grad = sg.zeros(3, device=device)


def test_repr_shows_values_dtype_device_and_grad_fn(device):
    """As PyTorch: float32 and the cpu go unsaid; other dtypes and devices are named."""
    x = sg.tensor([1.5, 2.0], device=device, requires_grad=True)
    r = repr(x * 2)
    assert r.startswith("tensor([3., 4.]") and "grad_fn=<MulBackward0>" in r
    assert "dtype" not in r and ("device=" in r) == (device != "cpu")
    assert "dtype=torch.float16" in repr(x.half())


def test_graph_is_freed_after_backward():
    import gc
    import weakref

    x = sg.randn(100, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h)
    loss = (h * 2).sum()
    del h
    loss.backward()
    gc.collect()
    assert ref() is None  # saved intermediates were released by backward


def test_implied_gradient_only_for_one_element_outputs_names_the_caller(device):
    """One helper seeds every backward (Tensor.backward, autograd.backward, autograd.grad);
    its errors name the caller and the argument to pass, as PyTorch's do."""
    x = sg.ones(2, 3, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"^backward: .*scalar.*\(2, 3\).*gradient="):
        y.backward()
    with pytest.raises(RuntimeError, match=r"^backward: .*scalar.*\(2, 3\).*grad_tensors="):
        sg.autograd.backward([y])
    with pytest.raises(RuntimeError, match=r"^grad: .*scalar.*\(2, 3\).*grad_outputs="):
        sg.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match=r"^grad: gradient has shape \(3,\)"):
        sg.autograd.grad(y, x, sg.ones(3, device=device))
    (g,) = sg.autograd.grad(y, x, [[[1.0, 2.0, 3.0]] * 2])  # data: the output's dtype
    assert_close(g, torch.tensor([[2.0, 4.0, 6.0]] * 2))


def test_topological_order_lists_each_tensor_before_its_node_and_inputs_left_to_right():
    from smolgrad.engine import Function, topological_order

    w = sg.ones(2, requires_grad=True)
    data = sg.ones(2)
    x = sg.ones(2, requires_grad=True)
    y = x * w + data
    order = topological_order([y])
    assert order[0] is y and order[1] is y.grad_fn and isinstance(order[1], Function)
    assert [t for t in order if isinstance(t, sg.Tensor)][-2:] == [w, x]  # leaves last
    assert all(t is not data for t in order)  # needs no gradient: not followed
    everything = [t for t in reversed(topological_order([y], every_input=True))
                  if isinstance(t, sg.Tensor)]
    assert [id(t) for t in everything] == [id(t) for t in (x, w, everything[2], data, y)]


def test_tensor_constructor_and_make_build_the_same_tensor():
    t = sg.Tensor([[1, 2]], requires_grad=True)
    assert t.dtype == sg.float32 and t.requires_grad and t.is_leaf and t.grad_fn is None
    made = sg.Tensor._make(t.array, t.backend)
    assert all(getattr(made, s) == getattr(sg.Tensor([[1.0, 2.0]]), s)
               for s in ("grad_fn", "_output_nr", "_grad", "_version", "_hooks", "_view"))
    assert sg.Tensor().shape == (0,) and sg.Tensor(t).array is not t.array  # a copy


def test_a_gradient_must_match_its_tensor_wherever_it_comes_from(device):
    """Assigned to .grad, returned by a hook, or given to backward: the same rule (shape,
    device, dtype) and the same wording."""
    x = sg.ones(2, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^grad: assigned grad has dtype float16, but the "
                                           r"tensor has dtype float32"):
        x.grad = sg.zeros(2, dtype=sg.float16, device=device)
    x.register_hook(lambda g: g.half())
    with pytest.raises(RuntimeError, match=r"has changed the gradient: its result has dtype "
                                           r"float16, but the gradient it was given"):
        (x * 2).sum().backward()
    with pytest.raises(RuntimeError, match=r"^backward: gradient has shape \(3,\), but the "
                                           r"output has shape \(2,\)"):
        (x * 2).backward(sg.ones(3, device=device))
