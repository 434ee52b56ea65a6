"""Elementwise ops: arithmetic, math functions, comparisons, `where`, `clamp`.

Each op is a `Function` whose docstring states the math; `forward` works on backend
arrays, `backward` in Tensor ops (so gradients of gradients work). Broadcasting is undone
by the engine, never here: `Add.backward` may return `grad` for an input of shape (3, 1).

Each op is in one place: its `Function`, then right below it the public function and the
`register(...)` line that makes it a Tensor method, a top-level function
(`function=True`) and an in-place method (`inplace=True`: `x.add_(y)`, `x += y`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import dtypes as dt
from ..engine import Function, Tensor, register
from .construction import infer_dtype


def _data(v):
    """The array behind a Tensor, or a plain Python number as it is."""
    return v.array if isinstance(v, Tensor) else v


def _scalar_like(value, like: Tensor) -> Tensor:
    return Tensor._make(like.backend.full((), value, like.dtype), like.backend)


def _as_operand(v, like: Tensor, op: str):
    """Python numbers stay numbers (cheap, weakly typed); everything else becomes a Tensor."""
    if getattr(v, "ndim", None) == 0 and hasattr(v, "item") and not isinstance(v, Tensor):
        return v.item()  # a NumPy scalar (np.float32(2.5)) acts as the Python number
    if isinstance(v, (Tensor, bool, int, float)):
        return v
    if v is None or isinstance(v, (str, bytes)):
        raise TypeError(f"{op}: unsupported operand of type {type(v).__name__}")
    try:
        return Tensor(v, dtype=like.dtype, device=like.device)
    except Exception as e:
        raise TypeError(f"{op}: unsupported operand of type {type(v).__name__}") from e


def check_broadcast(op: str, *operands) -> None:
    """Raise a clear error when the Tensors among `operands` cannot broadcast together."""
    shapes = [tuple(v.array.shape) for v in operands if isinstance(v, Tensor)]
    if len(shapes) < 2 or all(s == shapes[0] for s in shapes[1:]):
        return
    for i in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-i] for s in shapes if len(s) >= i} - {1}
        if len(sizes) > 1:
            raise RuntimeError(
                f"{op}: shapes {' and '.join(str(s) for s in shapes)} cannot be broadcast "
                f"together (dimension {-i} has sizes {sorted(sizes)}; each must match or "
                f"be 1)")


def promote(a, b, op: str, broadcast: bool = True):
    """Cast the operands of a binary op to PyTorch's result dtype (at most one cast), after
    checking that their shapes broadcast (elementwise ops; matmul passes broadcast=False)."""
    # the most common case, x * 0.5 or 0.5 * x: a float tensor keeps its dtype, no checks
    if type(b) is float and isinstance(a, Tensor) and a.dtype.is_floating_point:
        return a, b
    if type(a) is float and isinstance(b, Tensor) and b.dtype.is_floating_point:
        return a, b
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if broadcast and a.array.shape != b.array.shape:
            check_broadcast(op, a, b)
        if a.array.dtype == b.array.dtype:
            return a, b
        target = dt.result_type(a.dtype, a.ndim, b.dtype, b.ndim)
        return (a if a.dtype is target else a.to(target)), (b if b.dtype is target else
                                                              b.to(target))
    t, s = (a, b) if isinstance(a, Tensor) else (b, a)
    if type(s) not in (bool, int, float):  # NumPy scalars, lists, arrays, None, ...
        s = _as_operand(s, t, op)
        return promote(a if isinstance(a, Tensor) else s, b if isinstance(b, Tensor) else s, op,
                       broadcast)
    target = dt.scalar_result_type(t.dtype, s)
    if target is not t.dtype:
        t = t.to(target)
    return (t, s) if isinstance(a, Tensor) else (s, t)


def _floatify(a, b):
    """True division and friends give floats even for integer inputs (PyTorch rule)."""
    for v in (a, b):
        if isinstance(v, Tensor) and not v.dtype.is_floating_point:
            return (a.to(dt.get_default_dtype()) if isinstance(a, Tensor) else a,
                    b.to(dt.get_default_dtype()) if isinstance(b, Tensor) else b)
    return a, b


def _first_tensor(a, b):
    return a if isinstance(a, Tensor) else b


def zeros_like_grad(x) -> Tensor:
    return Tensor._make(x.backend.zeros(x.array.shape, x.dtype), x.backend)


def float_input(x: Tensor) -> Tensor:
    """x itself if it is floating point, else x in the default float dtype (exp(int) is a
    float, as in PyTorch)."""
    return x if x.dtype.is_floating_point else x.to(dt.get_default_dtype())


def _unary(cls: type[Function], doc_name: str) -> Callable[[Tensor], Tensor]:
    def op(input) -> Tensor:
        return cls.apply(float_input(input))

    op.__name__ = doc_name
    op.__doc__ = cls.__doc__
    return op


# ---------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------


class Add(Function):
    """z = x + y        dz/dx = 1,  dz/dy = 1"""

    @staticmethod
    def forward(ctx, x, y):
        return ctx.backend.add(_data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


@register("add", "__add__", function=True, inplace=True)
def add(input, other, *, alpha=1) -> Tensor:
    """input + alpha * other, broadcasting."""
    x, y = promote(input, other, "add")  # first, so a bad operand's error names add
    return Add.apply(x, y if alpha == 1 else y * alpha)


@register("__radd__")
def _radd(self, other) -> Tensor:
    return Add.apply(*promote(other, self, "add"))


class Sub(Function):
    """z = x - y        dz/dx = 1,  dz/dy = -1"""

    @staticmethod
    def forward(ctx, x, y):
        return ctx.backend.subtract(_data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


@register("sub", "subtract", "__sub__", function=True, inplace=True)
def sub(input, other, *, alpha=1) -> Tensor:
    """input - alpha * other, broadcasting."""
    x, y = promote(input, other, "sub")  # first, so a bad operand's error names sub
    return Sub.apply(x, y if alpha == 1 else y * alpha)


@register("__rsub__")
def _rsub(self, other) -> Tensor:
    return Sub.apply(*promote(other, self, "sub"))


class Mul(Function):
    """z = x * y        dz/dx = y,  dz/dy = x"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.backend.multiply(_data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return (grad * y if ctx.needs_input_grad[0] else None,
                grad * x if ctx.needs_input_grad[1] else None)


@register("mul", "multiply", "__mul__", function=True, inplace=True)
def mul(input, other) -> Tensor:
    return Mul.apply(*promote(input, other, "mul"))


@register("__rmul__")
def _rmul(self, other) -> Tensor:
    return Mul.apply(*promote(other, self, "mul"))


@register("square", function=True)
def square(input) -> Tensor:
    return input * input


class Div(Function):
    """z = x / y        dz/dx = 1 / y,  dz/dy = -x / y²"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.backend.divide(_data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return (grad / y if ctx.needs_input_grad[0] else None,
                -grad * x / (y * y) if ctx.needs_input_grad[1] else None)


@register("div", "divide", "true_divide", "__truediv__", function=True, inplace=True)
def div(input, other, *, rounding_mode=None) -> Tensor:
    """input / other; `rounding_mode='floor'|'trunc'` rounds the quotient (zero gradient).

    True division of integers gives the default float dtype; rounded division of
    integers stays integer (computed in float64 where the backend has it, so it is exact
    for |values| < 2⁵³).
    """
    a, b = promote(input, other, "div")
    if rounding_mode is None:
        return Div.apply(*_floatify(a, b))
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', "
                         f"got {rounding_mode!r}")
    t = _first_tensor(a, b)
    integer_result = not t.dtype.is_floating_point
    if integer_result and (bool((b == 0).any()) if isinstance(b, Tensor) else b == 0):
        raise IntegerDivisionByZero(f"div: integer division by zero (rounding_mode="
                                    f"{rounding_mode!r}, dtype {t.dtype.name})")
    if integer_result:
        wide = dt.float64 if t.backend.has_float64 else dt.float32
        a = a.to(wide) if isinstance(a, Tensor) else a
        b = b.to(wide) if isinstance(b, Tensor) else b
    out = Div.apply(a, b)
    out = floor(out) if rounding_mode == "floor" else where(out < 0, ceil(out), floor(out))
    return out.to(t.dtype) if integer_result else out


class IntegerDivisionByZero(RuntimeError, ZeroDivisionError):
    """Integer `//` or `div(rounding_mode=...)` by zero (PyTorch raises a RuntimeError)."""


@register("__rtruediv__")
def _rtruediv(self, other) -> Tensor:
    return div(other, self)


@register("floor_divide", "__floordiv__", function=True)
def floor_divide(input, other) -> Tensor:
    """input // other: the quotient rounded down (Python's and PyTorch's convention)."""
    return div(input, other, rounding_mode="floor")


@register("__rfloordiv__")
def _rfloordiv(self, other) -> Tensor:
    return div(other, self, rounding_mode="floor")


@register("remainder", "__mod__", function=True)
def remainder(input, other) -> Tensor:
    """input - floor(input / other) * other: the sign follows the divisor (as PyTorch)."""
    return input - div(input, other, rounding_mode="floor") * other


@register("__rmod__")
def _rmod(self, other) -> Tensor:
    return remainder(other, self)


class Pow(Function):
    """z = x ** y       dz/dx = y · x^(y-1),  dz/dy = z · log(x)

    PyTorch's values at the edges: dz/dx = 0 wherever y = 0 (x⁰ is constant, even at
    0⁰, where y · x^(y-1) would be 0 · inf); dz/dy = 0 where x = 0 and y ≥ 0 (the limit
    of x^y · log x), and z · log x as written elsewhere (-inf at x = 0, y < 0)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return ctx.backend.power(_data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            if isinstance(y, Tensor):
                gx = where(y == 0, 0.0, grad * y * x ** (y - 1))
            elif y == 0:
                gx = grad * 0
            else:
                gx = grad * y * x ** (y - 1)
        if ctx.needs_input_grad[1]:
            xs = x if isinstance(x, Tensor) else _scalar_like(x, y)
            gy = where((xs == 0) & (y >= 0), 0.0, grad * xs ** y * log(xs))
        return gx, gy


@register("pow", "__pow__", function=True, inplace=True)
def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    base, exponent = promote(input, exponent, "pow")
    if (isinstance(exponent, int) and exponent < 0 and isinstance(base, Tensor)
            and not base.dtype.is_floating_point):
        raise RuntimeError(f"pow: integers to negative integer powers are not allowed "
                           f"(base dtype {base.dtype.name}, exponent {exponent}); use a float "
                           f"base, e.g. x.float() ** {exponent}")
    return Pow.apply(base, exponent)


@register("__rpow__")
def _rpow(self, other) -> Tensor:
    return Pow.apply(*promote(other, self, "pow"))


class Neg(Function):
    """y = -x           dy/dx = -1"""

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.negative(x.array)

    @staticmethod
    def backward(ctx, grad):
        return -grad


@register("neg", "negative", "__neg__", function=True, inplace=True)
def neg(input) -> Tensor:
    if input.dtype is dt.bool_:
        raise TypeError("neg: negation (the `-` operator) of a bool tensor is not supported; "
                        "to invert a mask use `~mask` or logical_not(mask)")
    return Neg.apply(input)


@register("__pos__")
def _pos(self) -> Tensor:
    return self


@register("lerp", function=True, inplace=True)
def lerp(input, end, weight) -> Tensor:
    """input + weight * (end - input)."""
    check_broadcast("lerp", input, end, weight)
    return input + weight * (end - input)


class Maximum(Function):
    """z = max(x, y)    dz/dx = 1 where x > y, ½ where x == y (ties split, as PyTorch),
    0 where x < y; the same for y.

    A NaN on either side makes z NaN and no comparison holds: x and y then both get the
    whole gradient, as in PyTorch (each is zeroed only where the other one wins)."""

    kernel = "maximum"

    @classmethod
    def forward(cls, ctx, x, y):
        ctx.save_for_backward(x, y)
        return getattr(ctx.backend, cls.kernel)(_data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        below, above = (x < y).to(grad.dtype), (x > y).to(grad.dtype)
        x_loses, y_loses = (below, above) if ctx.kernel == "maximum" else (above, below)
        tie = (x == y).to(grad.dtype) * 0.5
        return grad * (1 - x_loses - tie), grad * (1 - y_loses - tie)


@register("maximum", function=True)
def maximum(input, other) -> Tensor:
    return Maximum.apply(*promote(input, other, "maximum"))


class Minimum(Maximum):
    """z = min(x, y)    dz/dx = 1 where x < y, ½ where x == y, 0 where x > y (and the
    whole gradient to both where either is NaN, as for Maximum)."""

    kernel = "minimum"


@register("minimum", function=True)
def minimum(input, other) -> Tensor:
    return Minimum.apply(*promote(input, other, "minimum"))


class LogAddExp(Function):
    """z = log(eˣ + eʸ)        dz/dx = eˣ / (eˣ + eʸ) = σ(x - y),   dz/dy = σ(y - x)

    Computed as z = m + log(1 + e^(-|x - y|)) with m = max(x, y): the exponent is never
    positive, so nothing overflows (logaddexp(1000, 0) = 1000, where e¹⁰⁰⁰ alone is inf),
    and log1p keeps the digits when e^(-|x - y|) is tiny. Where x = y the difference is
    taken as 0 (z = x + log 2), so two equal infinities give that infinity, not inf - inf.
    The gradient uses x - y as it is: NaN where both are the same infinity, as PyTorch's."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        b, xa, ya = ctx.backend, _data(x), _data(y)
        same = b.equal(xa, ya)
        diff = b.subtract(b.where(same, 0, xa), b.where(same, 0, ya))
        return b.add(b.maximum(xa, ya), b.log1p(b.exp(b.negative(b.abs(diff)))))

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return (grad * sigmoid(x - y) if ctx.needs_input_grad[0] else None,
                grad * sigmoid(y - x) if ctx.needs_input_grad[1] else None)


@register("logaddexp", function=True)
def logaddexp(input, other) -> Tensor:
    """log(e^input + e^other), elementwise with broadcasting, without overflow."""
    if not isinstance(input, Tensor):
        raise TypeError(f"logaddexp: input must be a Tensor, got {type(input).__name__}")
    return LogAddExp.apply(*promote(float_input(input), other, "logaddexp"))


# ---------------------------------------------------------------------------------------
# Unary math
# ---------------------------------------------------------------------------------------


class Exp(Function):
    """y = eˣ           dy/dx = eˣ = y"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.exp(x.array)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.output


exp = register("exp", function=True, inplace=True)(_unary(Exp, "exp"))


class Log(Function):
    """y = ln x         dy/dx = 1 / x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.log(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


log = register("log", function=True, inplace=True)(_unary(Log, "log"))


def _in_float64(backend, kernel, x):
    """kernel(x) computed in float64 where the device has it, rounded back to x's dtype.

    NumPy's and MLX's float32 log10 are often an ulp off (NumPy: log10(100) = 2.0000002);
    through float64 the result is PyTorch's, and exact at powers of ten."""
    dtype = backend.dtype_of(x)
    if dtype is dt.float64 or not backend.has_float64:
        return kernel(x)
    return backend.astype(kernel(backend.astype(x, dt.float64)), dtype)


class LogBase(Function):
    """y = log_b x = ln x / ln b      dy/dx = 1 / (x · ln b)

    One rule for the logarithms to a fixed base; each subclass names its base and the
    array library's kernel for it (`ctx` is an instance of the subclass)."""

    log_base = math.e
    log_kernel = "log"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _in_float64(ctx.backend, getattr(ctx.backend, ctx.log_kernel), x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x * math.log(ctx.log_base))


class Log10(LogBase):
    """y = log₁₀ x      dy/dx = 1 / (x · ln 10)"""

    log_base, log_kernel = 10.0, "log10"


log10 = register("log10", function=True)(_unary(Log10, "log10"))


class Log2(LogBase):
    """y = log₂ x       dy/dx = 1 / (x · ln 2)"""

    log_base, log_kernel = 2.0, "log2"


log2 = register("log2", function=True)(_unary(Log2, "log2"))


class Log1p(Function):
    """y = ln(1 + x)    dy/dx = 1 / (1 + x)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.log1p(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (x + 1)


log1p = register("log1p", function=True)(_unary(Log1p, "log1p"))


class Expm1(Function):
    """y = eˣ - 1       dy/dx = eˣ = y + 1"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.expm1(x.array)

    @staticmethod
    def backward(ctx, grad):
        return grad * (ctx.output + 1)


expm1 = register("expm1", function=True)(_unary(Expm1, "expm1"))


class Sqrt(Function):
    """y = √x           dy/dx = 1 / (2√x) = 1 / (2y)"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.sqrt(x.array)

    @staticmethod
    def backward(ctx, grad):
        return grad / (2 * ctx.output)


sqrt = register("sqrt", function=True, inplace=True)(_unary(Sqrt, "sqrt"))


class Rsqrt(Function):
    """y = 1 / √x       dy/dx = -½ x^(-3/2) = -½ y³"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        b = ctx.backend
        return b.divide(1, b.sqrt(x.array))

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return grad * -0.5 * y * y * y


rsqrt = register("rsqrt", function=True)(_unary(Rsqrt, "rsqrt"))


class Reciprocal(Function):
    """y = 1 / x        dy/dx = -1 / x² = -y²"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.divide(1, x.array)

    @staticmethod
    def backward(ctx, grad):
        y = ctx.output
        return -grad * y * y


reciprocal = register("reciprocal", function=True)(_unary(Reciprocal, "reciprocal"))


class Sin(Function):
    """y = sin x        dy/dx = cos x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.sin(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * cos(x)


sin = register("sin", function=True)(_unary(Sin, "sin"))


class Cos(Function):
    """y = cos x        dy/dx = -sin x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.cos(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return -grad * sin(x)


cos = register("cos", function=True)(_unary(Cos, "cos"))


class Tanh(Function):
    """y = tanh x       dy/dx = 1 - tanh² x = 1 - y²"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.tanh(x.array)

    @staticmethod
    def backward(ctx, grad):
        return TanhBackward.apply(grad, ctx.output)


tanh = register("tanh", function=True, inplace=True)(_unary(Tanh, "tanh"))


class TanhBackward(Function):
    """Tanh's backward as one node (instead of three: 1 - y², then times g):

        dx = g · (1 - y²)        d(dx)/dg = 1 - y²,   d(dx)/dy = -2 g y
    """

    @staticmethod
    def forward(ctx, grad, y):
        b = ctx.backend
        ctx.save_for_backward(grad, y)
        return b.multiply(grad.array, b.subtract(1, b.multiply(y.array, y.array)))

    @staticmethod
    def backward(ctx, gg):
        grad, y = ctx.saved_tensors
        return (TanhBackward.apply(gg, y) if ctx.needs_input_grad[0] else None,
                -2 * gg * grad * y if ctx.needs_input_grad[1] else None)


class Sigmoid(Function):
    """y = 1 / (1 + e⁻ˣ)    dy/dx = y (1 - y)

    Its own op (rather than a composite) for speed and to stay finite for large |x|.
    """

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        b = ctx.backend
        # tanh form: never overflows, unlike 1 / (1 + exp(-x)) for x << 0
        return b.multiply(b.add(b.tanh(b.multiply(x.array, 0.5)), 1), 0.5)

    @staticmethod
    def backward(ctx, grad):
        return SigmoidBackward.apply(grad, ctx.output)


sigmoid = register("sigmoid", function=True, inplace=True)(_unary(Sigmoid, "sigmoid"))


class SigmoidBackward(Function):
    """Sigmoid's backward as one node (instead of three):

        dx = g · y (1 - y)       d(dx)/dg = y (1 - y),   d(dx)/dy = g (1 - 2y)
    """

    @staticmethod
    def forward(ctx, grad, y):
        b = ctx.backend
        ctx.save_for_backward(grad, y)
        return b.multiply(grad.array, b.multiply(y.array, b.subtract(1, y.array)))

    @staticmethod
    def backward(ctx, gg):
        grad, y = ctx.saved_tensors
        return (SigmoidBackward.apply(gg, y) if ctx.needs_input_grad[0] else None,
                gg * grad * (1 - 2 * y) if ctx.needs_input_grad[1] else None)


class Relu(Function):
    """y = max(x, 0)    dy/dx = 0 where x ≤ 0, else 1 (also at a NaN, which y keeps: the
    gradient passes through, as PyTorch's)"""

    saves_output = True

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.maximum(x.array, 0)

    @staticmethod
    def backward(ctx, grad):
        return ReluBackward.apply(grad, ctx.output)


@register("relu", function=True, inplace=True)
def relu(input) -> Tensor:
    return Relu.apply(input)


class ReluBackward(Function):
    """Relu's backward as one node (instead of three: compare, cast, multiply):

        dx = g · [not y ≤ 0]     d(dx)/dg = [not y ≤ 0],   d(dx)/dy = 0 (almost everywhere)

    ("not y ≤ 0" rather than "y > 0": the two differ only at NaN, where PyTorch passes
    the gradient on.)
    """

    @staticmethod
    def forward(ctx, grad, y):
        b = ctx.backend
        ctx.save_for_backward(y)
        return b.where(b.less_equal(y.array, 0), b.zeros((), grad.dtype), grad.array)

    @staticmethod
    def backward(ctx, gg):
        (y,) = ctx.saved_tensors
        return ReluBackward.apply(gg, y), None


class Erf(Function):
    """y = erf x = (2/√π) ∫₀ˣ e^(-t²) dt      dy/dx = (2/√π) e^(-x²)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.erf(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2 / math.sqrt(math.pi)) * exp(-(x * x))


erf = register("erf", function=True)(_unary(Erf, "erf"))


class Abs(Function):
    """y = |x|          dy/dx = sign(x)  (0 at x = 0, as PyTorch)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.backend.abs(x.array)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * sign(x)


@register("abs", "__abs__", function=True, inplace=True)
def abs(input) -> Tensor:  # noqa: A001
    return Abs.apply(input)


class _Piecewise(Function):
    """Ops that are flat almost everywhere: the gradient is 0 (sign, floor, ceil, round)."""

    kernel = ""

    @classmethod
    def forward(cls, ctx, x):
        return getattr(ctx.backend, cls.kernel)(x.array)

    @staticmethod
    def backward(ctx, grad):
        return zeros_like_grad(grad)


class Sign(_Piecewise):
    """y = sign x       dy/dx = 0"""

    kernel = "sign"


@register("sign", function=True)
def sign(input) -> Tensor:
    return Sign.apply(input)


class Floor(_Piecewise):
    """y = ⌊x⌋          dy/dx = 0"""

    kernel = "floor"


@register("floor", function=True, inplace=True)
def floor(input) -> Tensor:
    return Floor.apply(input)


class Ceil(_Piecewise):
    """y = ⌈x⌉          dy/dx = 0"""

    kernel = "ceil"


@register("ceil", function=True)
def ceil(input) -> Tensor:
    return Ceil.apply(input)


class Round(Function):
    """y = round(x, decimals), halves to even as PyTorch      dy/dx = 0"""

    @staticmethod
    def forward(ctx, x, decimals=0):
        return ctx.backend.round(x.array, decimals)

    @staticmethod
    def backward(ctx, grad):
        return zeros_like_grad(grad)


@register("round", function=True, inplace=True)
def round(input, decimals: int = 0) -> Tensor:  # noqa: A001
    return Round.apply(input, decimals)


# ---------------------------------------------------------------------------------------
# Clamping, selection, casting
# ---------------------------------------------------------------------------------------


class Clamp(Function):
    """y = min(max(x, lo), hi)      dy/dx = 1 where lo ≤ x ≤ hi, else 0"""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x, lo, hi)
        b, out = ctx.backend, x.array
        if lo is not None:
            out = b.maximum(out, _data(lo))
        if hi is not None:
            out = b.minimum(out, _data(hi))
        return out

    @staticmethod
    def backward(ctx, grad):
        x, lo, hi = ctx.saved_tensors
        keep = None
        if lo is not None:
            keep = x >= lo
        if hi is not None:
            keep = (x <= hi) if keep is None else keep & (x <= hi)
        gx = grad if keep is None else grad * keep.to(grad.dtype)
        # a bound gets the gradient where it is the result; when lo > hi the result is hi
        glo = ghi = None
        if isinstance(lo, Tensor) and ctx.needs_input_grad[1]:
            binds = (x < lo) if hi is None else (x < lo) & (lo < hi)
            glo = grad * binds.to(grad.dtype)
        if isinstance(hi, Tensor) and ctx.needs_input_grad[2]:
            binds = (x > hi) if lo is None else (x > hi) | (hi < lo)
            ghi = grad * binds.to(grad.dtype)
        return gx, glo, ghi


@register("clamp", "clip", function=True, inplace=True)
def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; either bound may be None, a number or a Tensor."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        lo = promote(input, min, "clamp")[1] if min is not None else None
        hi = promote(input, max, "clamp")[1] if max is not None else None
        return Clamp.apply(input, lo, hi)
    if isinstance(min, float) or isinstance(max, float):
        input = float_input(input)
    return Clamp.apply(input, min, max)


@register("clamp_min", function=True, inplace=True)
def clamp_min(input, min) -> Tensor:  # noqa: A002
    return clamp(input, min=min)


@register("clamp_max", function=True, inplace=True)
def clamp_max(input, max) -> Tensor:  # noqa: A002
    return clamp(input, max=max)


class Where(Function):
    """z = x where cond else y      dz/dx = cond,  dz/dy = not cond"""

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.save_for_backward(cond)
        return ctx.backend.where(cond.array, _data(x), _data(y))

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        zero = zeros_like_grad(grad)
        return (None,
                where(cond, grad, zero) if ctx.needs_input_grad[1] else None,
                where(cond, zero, grad) if ctx.needs_input_grad[2] else None)


@register(function=True)
def where(condition, input=None, other=None) -> Tensor:
    """Pick `input` where `condition` is true, else `other` (all three broadcast).

    `where(condition)` alone is `nonzero(condition, as_tuple=True)`, as in PyTorch."""
    if input is None and other is None and isinstance(condition, Tensor):
        return condition.nonzero(as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: pass both input and other (or only the condition)")
    if not isinstance(condition, Tensor):
        raise TypeError("where: condition must be a bool Tensor")
    if condition.dtype is not dt.bool_:
        condition = condition != 0
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two Python scalars: the result dtype is what sg.tensor would infer for them
        kind = infer_dtype([input, other])
        input = Tensor(input, dtype=kind, device=condition.device)
    x, y = promote(input, other, "where")
    check_broadcast("where", condition, x, y)
    return Where.apply(condition, x, y)


@register("where")
def _where_method(self, condition, other) -> Tensor:
    return where(condition, self, other)


@register("masked_fill", function=True, inplace=True)
def masked_fill(input, mask, value) -> Tensor:
    """input with `value` wherever `mask` (bool, broadcastable) is true."""
    if not isinstance(mask, Tensor) or mask.dtype is not dt.bool_:
        raise TypeError(f"masked_fill: mask must be a bool Tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill: value must be a 0-d tensor, got shape "
                               f"{tuple(value.shape)}")
        value = value.to(input.dtype)
    check_broadcast("masked_fill", input, mask)
    return Where.apply(mask, _scalar_like(value, input) if not isinstance(value, Tensor)
                       else value, input)


class Cast(Function):
    """y = x converted to another dtype      dy/dx = 1 (the gradient is cast back)"""

    @staticmethod
    def forward(ctx, x, dtype):
        return ctx.backend.astype(x.array, dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # the engine casts the gradient to the input's dtype


@register(function=True)
def cast(input, dtype) -> Tensor:
    """input converted to `dtype`; the gradient flows back in the input's dtype."""
    dtype = dt.as_dtype(dtype)
    if input.dtype is dtype:
        return input
    if not dtype.is_floating_point and input._requires_grad:
        return Cast.apply(input.detach(), dtype)
    return Cast.apply(input, dtype)


# ---------------------------------------------------------------------------------------
# Comparisons and logic (no gradient)
# ---------------------------------------------------------------------------------------


class Compare(Function):
    """Comparisons and logical ops: boolean results, no gradient."""

    differentiable = False

    @staticmethod
    def forward(ctx, kernel, x, y):
        return getattr(ctx.backend, kernel)(_data(x), _data(y))


def _compare(kernel: str, symbol: str) -> Callable[[Tensor, object], Tensor]:
    def op(input, other) -> Tensor:
        if other is None and symbol in ("==", "!="):
            return symbol == "!="  # `t == None` is False, as for any Python object
        x, y = promote(input, other, symbol)
        return Compare.apply(kernel, x, y)

    op.__name__ = kernel
    op.__doc__ = f"Elementwise `{symbol}`: a bool tensor, not differentiable."
    return op


eq = register("eq", "__eq__", function=True)(_compare("equal", "=="))


ne = register("ne", "not_equal", "__ne__", function=True)(_compare("not_equal", "!="))


lt = register("lt", "less", "__lt__", function=True)(_compare("less", "<"))


le = register("le", "less_equal", "__le__", function=True)(_compare("less_equal", "<="))


gt = register("gt", "greater", "__gt__", function=True)(_compare("greater", ">"))


ge = register("ge", "greater_equal", "__ge__", function=True)(_compare("greater_equal", ">="))


logical_and = register("logical_and", function=True)(_compare("logical_and", "and"))


logical_or = register("logical_or", function=True)(_compare("logical_or", "or"))


logical_xor = register("logical_xor", function=True)(_compare("logical_xor", "xor"))


def _bitwise(kernel: str, symbol: str) -> Callable[[Tensor, object], Tensor]:
    def op(input, other) -> Tensor:
        x, y = promote(input, other, symbol)
        if x.dtype is not dt.bool_ if isinstance(x, Tensor) else y.dtype is not dt.bool_:
            raise TypeError(f"'{symbol}' is supported for bool tensors only here; got "
                            f"{_first_tensor(x, y).dtype}")
        return Compare.apply(kernel, x, y)

    return op


register("__and__", "__rand__", "bitwise_and")(_bitwise("logical_and", "&"))


register("__or__", "__ror__", "bitwise_or")(_bitwise("logical_or", "|"))


register("__xor__", "__rxor__", "bitwise_xor")(_bitwise("logical_xor", "^"))


class LogicalNot(Function):
    differentiable = False

    @staticmethod
    def forward(ctx, x):
        return ctx.backend.logical_not(x.array)


@register("logical_not", function=True)
def logical_not(input) -> Tensor:
    return LogicalNot.apply(input)


register("__invert__", "bitwise_not")(logical_not)  # bool tensors only (see _bitwise)


@register("isnan", function=True)
def isnan(input) -> Tensor:
    return input != input


@register("isinf", function=True)
def isinf(input) -> Tensor:
    return abs(input) == float("inf")


@register("isfinite", function=True)
def isfinite(input) -> Tensor:
    return logical_not(isnan(input) | isinf(input))


@register("isclose", function=True)
def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol · |other|, elementwise (bool, not differentiable)."""
    a, b = promote(input.detach(), other.detach() if isinstance(other, Tensor) else other,
                   "isclose")
    a, b = _floatify(a, b)
    close = (a == b) | (abs(a - b) <= atol + rtol * abs(b))
    if equal_nan:
        close = close | (isnan(a) & isnan(b))
    return close


@register("allclose", function=True)
def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True when every element is close (see `isclose`)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


@register("equal", function=True)
def equal(input, other) -> bool:
    """True when both have the same shape and the same values."""
    return input.shape == other.shape and bool((input == other).all().item())
