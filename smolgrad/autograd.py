"""The public face of the engine: `grad`, user-defined `Function`s, `gradcheck`.

    sg.autograd.grad(outputs, inputs, grad_outputs=None, retain_graph=None,
                     create_graph=False, allow_unused=False)
"""

from __future__ import annotations

import functools

from . import dtypes as dt
from . import engine
from .engine import Tensor, no_grad, root_gradients, run_backward


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False, materialize_grads: bool = False) -> tuple:
    """d(outputs)/d(inputs), returned rather than accumulated into `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    seeds = root_gradients(outputs, _per_output(grad_outputs, outputs), "grad", "grad_outputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {tuple(t.shape)}) does not require grad")
    results = run_backward(outputs, seeds, retain_graph, create_graph, inputs=inputs,
                           accumulate=False)
    for i, (t, r) in enumerate(zip(inputs, results)):
        if r is None:
            if materialize_grads:
                results[i] = Tensor._make(t.backend.zeros(t.array.shape, t.dtype), t.backend)
            elif not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {tuple(t.shape)}) was not used to "
                                   f"compute the outputs; pass allow_unused=True to get None "
                                   f"for it")
    return tuple(results)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate the gradients of `tensors` into the leaves' `.grad` (sum over tensors)."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    seeds = root_gradients(tensors, _per_output(grad_tensors, tensors), "backward",
                           "grad_tensors")
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    run_backward(tensors, seeds, retain_graph, create_graph, inputs=inputs, accumulate=True)


def _per_output(gradients, outputs: list) -> list:
    """The gradients argument of grad/backward as one entry per output (None: implied)."""
    if gradients is None:
        return [None] * len(outputs)
    return [gradients] if isinstance(gradients, Tensor) else list(gradients)


class Function(engine.Function):
    """Subclass to define your own op, as in PyTorch:

        class Square(sg.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x                 # Tensors in, a Tensor out
            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 2 * x * grad          # one gradient per forward input

        y = Square.apply(x)

    Unlike the built-in ops (whose forward works on backend arrays), a user's forward
    receives and returns Tensors; it runs without recording, so it is one node. A forward
    that returns a tuple of Tensors makes a node with several outputs: `apply` returns
    them as a tuple, and `backward(ctx, *grads)` receives one gradient per output (zeros
    for one that got none; see `ctx.set_materialize_grads`).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if forward is not None:
            forward = forward.__func__ if isinstance(forward, staticmethod) else forward
            cls.forward = staticmethod(functools.partial(_quiet_forward, cls, forward))

    def mark_non_differentiable(self, *tensors) -> None:
        """Accepted for compatibility; outputs of integer dtype never carry gradients."""


def _quiet_forward(cls, forward, ctx, *args, **kw):
    """A user's forward, run without recording (its inner ops are not graph nodes). The
    engine's forward contract is arrays: the Tensor's array, or a tuple of them."""
    with no_grad():
        out = forward(ctx, *args, **kw)
    if isinstance(out, Tensor):
        return out.array
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return tuple(o.array for o in out)
    raise TypeError(f"{cls.__name__}.forward must return a Tensor or a tuple of Tensors, "
                    f"got {type(out).__name__}")


def _numerical_jacobian(fn, inputs, i, eps):
    x = inputs[i]
    base = x.detach().numpy().astype("float64")
    flat = base.reshape(-1)
    cols = []
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        plus = _eval(fn, inputs, i, base)
        flat[k] = orig - eps
        minus = _eval(fn, inputs, i, base)
        flat[k] = orig
        cols.append([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
    return cols  # cols[k][out] = d out / d x_k  (arrays)


def _eval(fn, inputs, i, value):
    args = list(inputs)
    args[i] = Tensor(value.copy(), dtype=dt.float64, device=inputs[i].device)
    with no_grad():
        outs = fn(*args)
    outs = (outs,) if isinstance(outs, Tensor) else tuple(outs)
    return [o.detach().numpy().astype("float64").copy() for o in outs]


def _as_float64(t, j: int):
    """Differentiable float inputs are checked in float64 (a float64 copy of a float32 one)."""
    if not (isinstance(t, Tensor) and t.requires_grad) or t.dtype is dt.float64:
        return t
    if not t.backend.has_float64:
        raise ValueError(f"gradcheck: input {j} has dtype {t.dtype.name} and device "
                         f"'{t.device}' has no float64 for finite differences; run the check "
                         f"on cpu")
    return t.detach().to(dt.float64).requires_grad_(True)


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **_ignored) -> bool:
    """Compare the analytic Jacobian with central finite differences, in float64.

    `inputs` is a Tensor or a tuple; those with requires_grad are checked.
    """
    import numpy as np

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    inputs = tuple(_as_float64(t, j) for j, t in enumerate(inputs))
    outs = fn(*inputs)
    outs = (outs,) if isinstance(outs, Tensor) else tuple(outs)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        numeric = _numerical_jacobian(fn, inputs, i, eps)
        for o, out in enumerate(outs):
            if not out.requires_grad:
                continue
            analytic = np.zeros((x.numel(), out.numel()))
            for k in range(out.numel()):
                g = np.zeros(out.numel())
                g[k] = 1.0
                (gx,) = grad(out, x, Tensor(g.reshape(out.shape), dtype=out.dtype,
                                              device=out.device),
                             retain_graph=True, allow_unused=True)
                if gx is not None:
                    analytic[:, k] = gx.detach().numpy().reshape(-1)
            num = np.array([numeric[k][o].reshape(-1) for k in range(x.numel())]).reshape(
                analytic.shape)
            if not np.allclose(analytic, num, atol=atol, rtol=rtol):
                worst = np.unravel_index(np.argmax(np.abs(analytic - num)), analytic.shape)
                msg = (f"gradcheck: Jacobian mismatch for output {o} with respect to input {i}"
                       f" at (input element, output element) {tuple(int(w) for w in worst)}: "
                       f"analytic {analytic[worst]:.6g} vs numerical {num[worst]:.6g}")
                if raise_exception:
                    raise RuntimeError(msg)
                return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, **_ignored) -> bool:
    """gradcheck of the gradient itself: checks second derivatives (create_graph=True)."""
    import numpy as np

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outs = fn(*inputs)
    outs = (outs,) if isinstance(outs, Tensor) else tuple(outs)
    rng = np.random.default_rng(0)
    if grad_outputs is None:
        grad_outputs = [Tensor(rng.standard_normal(o.shape), dtype=dt.float64, device=o.device)
                        for o in outs]

    def first_grads(*args):
        ins = [a.detach().requires_grad_(True) if j in diff and isinstance(a, Tensor) and
               not a.requires_grad else a for j, a in enumerate(args)]
        with engine.enable_grad():
            o = fn(*ins)
            o = (o,) if isinstance(o, Tensor) else tuple(o)
            gs = grad(o, [ins[j] for j in diff], grad_outputs, create_graph=True,
                      allow_unused=True, materialize_grads=True)
        return gs

    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)


__all__ = ["Function", "backward", "grad", "gradcheck", "gradgradcheck"]
