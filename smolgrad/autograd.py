"""The public face of the engine: `grad`, user-defined `Function`s, `gradcheck`.

    sg.autograd.grad(outputs, inputs, grad_outputs=None, retain_graph=None,
                     create_graph=False, allow_unused=False)
"""

from __future__ import annotations

import functools
import math

from . import dtypes as dt
from . import engine
from .engine import Tensor, no_grad, run_backward


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False, materialize_grads: bool = False) -> tuple:
    """d(outputs)/d(inputs), returned rather than accumulated into `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    gs = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"grad: grad can be implicitly created only for scalar "
                                   f"outputs, got shape {out.shape}; pass grad_outputs")
            g = Tensor._make(out.backend.ones(out.array.shape, out.dtype), out.backend)
        gs.append(g)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    results = run_backward(outputs, gs, retain_graph, create_graph, inputs=inputs,
                           accumulate=False)
    for i, (t, r) in enumerate(zip(inputs, results)):
        if r is None:
            if materialize_grads:
                results[i] = Tensor._make(t.backend.zeros(t.array.shape, t.dtype), t.backend)
            elif not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute "
                                   f"the outputs; pass allow_unused=True to get None for it")
    return tuple(results)


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
    receives and returns Tensors; it runs without recording, so it is one node.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if forward is not None:
            forward = forward.__func__ if isinstance(forward, staticmethod) else forward
            cls.forward = staticmethod(functools.partial(_quiet_forward, cls, forward))
        backward = cls.__dict__.get("backward")
        if backward is not None:
            backward = backward.__func__ if isinstance(backward, staticmethod) else backward
            cls.backward = staticmethod(functools.partial(_unpacking_backward, backward))

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run forward (one node in the graph); returns a Tensor, or a tuple of Tensors
        when forward returned several."""
        holder = []
        packed = super().apply(*args, _ctx_holder=holder, **kwargs)
        ctx = holder[0] if holder else None
        layout = getattr(ctx, "_outputs_layout", None)
        if layout is None:
            return packed
        return tuple(_unpack_output(packed, entry) for entry in layout)

    def mark_non_differentiable(self, *tensors) -> None:
        """Accepted for compatibility; outputs of integer dtype never carry gradients."""


def _quiet_forward(cls, forward, ctx, *args, _ctx_holder=None, **kw):
    """A user's forward, run without recording (its inner ops are not graph nodes).

    Several outputs are packed into one flat tensor (the node's single output); `apply`
    hands back slices of it, so a gradient reaching any output flows into this node.
    """
    if _ctx_holder is not None:
        _ctx_holder.append(ctx)
    with no_grad():
        out = forward(ctx, *args, **kw)
    if isinstance(out, Tensor):
        return out
    if not isinstance(out, (tuple, list)) or not out or not all(
            isinstance(o, Tensor) for o in out):
        raise TypeError(f"{cls.__name__}.forward must return a Tensor or a tuple of Tensors, "
                        f"got {type(out).__name__}")
    floats = [o for o in out if o.dtype.is_floating_point]
    packed_dtype = floats[0].dtype if floats else dt.get_default_dtype()
    for o in floats[1:]:
        packed_dtype = dt.promote_types(packed_dtype, o.dtype)
    layout, pieces, offset = [], [], 0
    for o in out:
        if o.dtype.is_floating_point:
            layout.append((offset, o.shape, o.dtype, None))
            pieces.append(o.reshape(-1).to(packed_dtype))
            offset += o.numel()
        else:  # integer/bool outputs carry no gradient: returned as they are
            layout.append((None, o.shape, o.dtype, o.detach()))
    ctx._outputs_layout = layout
    ctx._packed_dtype = packed_dtype
    backend = out[0].backend
    if not pieces:
        return Tensor._make(backend.zeros((0,), packed_dtype), backend)
    return Tensor._make(backend.concatenate([p.array for p in pieces]), backend)


def _unpack_output(packed: Tensor, entry) -> Tensor:
    offset, shape, dtype, plain = entry
    if plain is not None:
        return plain
    n = math.prod(shape)
    return packed[offset:offset + n].reshape(shape).to(dtype)


def _unpacking_backward(backward, ctx, grad):
    """Call a user's backward with one gradient per forward output (split from the packed
    gradient when forward returned several; None for integer outputs)."""
    layout = getattr(ctx, "_outputs_layout", None)
    if layout is None:
        return backward(ctx, grad)
    grads = []
    for offset, shape, dtype, plain in layout:
        if plain is not None:
            grads.append(None)
        else:
            grads.append(grad[offset:offset + math.prod(shape)].reshape(shape).to(dtype))
    return backward(ctx, *grads)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate the gradients of `tensors` into the leaves' `.grad` (sum over tensors)."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    gs = []
    for t, g in zip(tensors, grad_tensors):
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar "
                                   f"outputs, but a tensor has shape {t.shape}; pass "
                                   f"grad_tensors")
            g = Tensor._make(t.backend.ones(t.array.shape, t.dtype), t.backend)
        gs.append(g)
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    run_backward(tensors, gs, retain_graph, create_graph, inputs=inputs, accumulate=True)


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
