"""How tensors print: `repr(t)`, `str(t)` and `format(t, spec)`, as PyTorch prints them.

The output is meant to be byte-identical to PyTorch's for the same values, so that a PyTorch
script run on smolgrad prints what it printed before. The rules, in the order they apply:

1. **One style for all numbers of a tensor.** Integer and bool tensors print each value as
   Python does (`3`, `True`). A floating-point tensor looks at its nonzero finite values:
   - none at all (all zeros, inf or nan): whole-number style, `0.`, `inf`, `nan`;
   - scientific (`1.0000e+05`) when the largest magnitude is over 1e8, or more than 1000
     times the smallest, or the smallest is under 1e-4 (`set_printoptions(sci_mode=...)`
     forces it on or off);
   - otherwise whole-number style (`3.`) when every value is a whole number, else fixed
     point with `precision` decimals (`2.5000`).
2. **One width.** Every number is right-aligned to the widest of the nonzero finite values
   (whole numbers count their trailing `.`), so columns line up.
3. **Layout.** Rows wrap to fit `linewidth`; nested dimensions are separated by one blank
   line fewer than their depth and indented under the opening bracket. Tensors with more
   than `threshold` elements are summarised: each long dimension keeps its first and last
   `edgeitems` entries around a `...`.
4. **Suffixes**, after the values, each moved to its own line when it would pass
   `linewidth`: `device='mlx'` (any device but the cpu), `size=(0, 3)` (empty tensors not
   of shape `(0,)`), `dtype=torch.float64` (dtypes other than the default float, int64 and
   bool; every non-default dtype for an empty tensor), then `grad_fn=<...>` for results of
   recorded ops or `requires_grad=True` for leaves that require it.

`format(t, spec)` formats a 0-d tensor like its Python number (`f"{loss:.4f}"`); any other
tensor accepts only the empty spec (giving `str(t)`), as in PyTorch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

from .. import dtypes as dt
from ..engine import Tensor, register

# ---------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------


class PrintOptions:
    """The settings every tensor print reads (one shared instance, `OPTIONS`)."""

    __slots__ = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")

    def __init__(self) -> None:
        self.precision = 4  # digits after the decimal point
        self.threshold = 1000  # summarise tensors with more elements than this
        self.edgeitems = 3  # entries kept at each end of a summarised dimension
        self.linewidth = 80  # characters per line before wrapping
        self.sci_mode: bool | None = None  # None: choose per tensor (rule 1 above)


OPTIONS = PrintOptions()

# profile name -> (precision, threshold, edgeitems, linewidth), PyTorch's three presets
_PROFILES = {
    "default": (4, 1000, 3, 80),
    "short": (2, 1000, 2, 80),
    "full": (4, math.inf, 3, 80),
}


@register(function=True)
def set_printoptions(precision: int | None = None, threshold: float | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """Change how tensors print, as `torch.set_printoptions`.

    `profile` ("default", "short" or "full") first resets the four numeric options to a
    preset; the other arguments then override it where given. `sci_mode` is always set:
    omitting it returns to choosing scientific notation per tensor.
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}; expected one "
                             f"of {sorted(_PROFILES)}")
        (OPTIONS.precision, OPTIONS.threshold, OPTIONS.edgeitems,
         OPTIONS.linewidth) = _PROFILES[profile]
    if precision is not None:
        OPTIONS.precision = precision
    if threshold is not None:
        OPTIONS.threshold = threshold
    if edgeitems is not None:
        OPTIONS.edgeitems = edgeitems
    if linewidth is not None:
        OPTIONS.linewidth = linewidth
    OPTIONS.sci_mode = sci_mode


def get_printoptions() -> dict:
    """The current options, as keyword arguments that `set_printoptions` accepts."""
    return {name: getattr(OPTIONS, name) for name in PrintOptions.__slots__}


@contextlib.contextmanager
def printoptions(**options) -> Iterator[None]:
    """`with printoptions(precision=2): ...` changes the options inside the block only."""
    saved = get_printoptions()
    set_printoptions(**options)
    try:
        yield
    finally:
        set_printoptions(**saved)


# ---------------------------------------------------------------------------------------
# Numbers (rules 1 and 2)
# ---------------------------------------------------------------------------------------


class NumberFormat:
    """Writes every number of one tensor in one style, right-aligned to one width.

    `values` are the Python numbers that will be shown (after summarising); `floating` says
    whether they come from a floating-point tensor. `style` is "plain" (ints and bools),
    "whole" (`3.`), "fixed" (`2.5000`) or "sci" (`1.0000e+05`).
    """

    def __init__(self, values: list, floating: bool) -> None:
        self.precision = OPTIONS.precision
        self.width = 1
        if not floating:
            self.style = "plain"
            self.width = max([1] + [len(str(v)) for v in values])
            return
        self.style = "whole"
        shown = [v for v in values if v != 0 and math.isfinite(v)]
        if not shown:  # zeros, infs and nans only: whole style, whatever sci_mode says
            return
        magnitudes = [abs(v) for v in shown]
        smallest, largest = min(magnitudes), max(magnitudes)
        if OPTIONS.sci_mode is None:
            sci = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        else:
            sci = OPTIONS.sci_mode
        if sci:
            self.style = "sci"
        elif any(v != math.ceil(v) for v in shown):
            self.style = "fixed"
        self.width = max(len(self._text(v)) for v in shown)

    def _text(self, value) -> str:
        """`value` in this style, unpadded."""
        if self.style == "plain":
            return str(value)
        if self.style == "sci":
            return f"{value:.{self.precision}e}"
        if self.style == "fixed":
            return f"{value:.{self.precision}f}"
        text = f"{value:.0f}"  # "whole": a trailing '.' marks the tensor as floating point
        return text if math.isinf(value) or math.isnan(value) else text + "."

    def __call__(self, value) -> str:
        """`value` in this style, right-aligned to the common width."""
        return self._text(value).rjust(self.width)


# ---------------------------------------------------------------------------------------
# Layout (rule 3)
# ---------------------------------------------------------------------------------------


def _shown_values(t: Tensor, summarize: bool):
    """The values that will be printed, as nested Python lists (a number for a 0-d tensor).

    When summarising, every dimension longer than 2 * edgeitems keeps only its first and
    last `edgeitems` entries (PyTorch bases the number style on exactly these values).
    """
    array, backend, keep = t.array, t.backend, OPTIONS.edgeitems
    if summarize:
        for axis, n in enumerate(array.shape):
            if n > 2 * keep:
                before = (slice(None),) * axis
                head = backend.getitem(array, before + (slice(0, keep),))
                tail = backend.getitem(array, before + (slice(n - keep, n),))
                array = backend.concatenate([head, tail], axis=axis)
    return Tensor._make(array, backend).tolist()


def _flatten(values) -> Iterator:
    if isinstance(values, list):
        for v in values:
            yield from _flatten(v)
    else:
        yield values


def _row(values: list, cut: bool, indent: int, fmt: NumberFormat) -> str:
    """A 1-d block: as many numbers per line as fit in `linewidth - indent`."""
    cells = [fmt(v) for v in values]
    if cut:
        cells.insert(OPTIONS.edgeitems, " ...")
    per_line = max(1, int(math.floor((OPTIONS.linewidth - indent) / (fmt.width + 2))))
    lines = [", ".join(cells[i:i + per_line]) for i in range(0, len(cells), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _block(values, cuts: tuple, indent: int, fmt: NumberFormat) -> str:
    """The nested brackets of a tensor whose dimensions were summarised where `cuts` say.

    `indent` is the column of this block's opening bracket; a d-dimensional block separates
    its (d-1)-dimensional parts by a comma and d-1 newlines.
    """
    if not cuts:
        return fmt(values)
    if len(cuts) == 1:
        return _row(values, cuts[0], indent, fmt)
    parts = [_block(v, cuts[1:], indent + 1, fmt) for v in values]
    if cuts[0]:
        parts.insert(OPTIONS.edgeitems, "...")
    separator = "," + "\n" * (len(cuts) - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def _values_text(t: Tensor, indent: int) -> str:
    """Everything between `tensor(` and the suffixes."""
    if t.numel() == 0:
        return "[]"
    summarize = t.numel() > OPTIONS.threshold
    if summarize and OPTIONS.edgeitems == 0 and t.ndim > 0:
        return "[...]"
    values = _shown_values(t, summarize)
    fmt = NumberFormat(list(_flatten(values)), t.dtype.is_floating_point)
    cuts = tuple(summarize and n > 2 * OPTIONS.edgeitems for n in t.shape)
    return _block(values, cuts, indent, fmt)


# ---------------------------------------------------------------------------------------
# Suffixes (rule 4) and the Tensor methods
# ---------------------------------------------------------------------------------------


def _device_text(t: Tensor) -> str:
    """PyTorch names its first GPU 'cuda:0'; smolgrad has one device of each kind."""
    kind = t.device.type
    return "cuda:0" if kind == "cuda" else kind


def _suffixes(t: Tensor) -> list[str]:
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{_device_text(t)}'")
    default_float = dt.get_default_dtype()
    if t.numel() == 0:
        if t.ndim != 1:
            suffixes.append(f"size={tuple(t.shape)}")
        show_dtype = t.dtype is not default_float
    else:
        if OPTIONS.edgeitems == 0:
            suffixes.append(f"size={tuple(t.shape)}")
        show_dtype = t.dtype not in (default_float, dt.int64, dt.bool_)
    if show_dtype:
        suffixes.append(f"dtype=torch.{t.dtype.name}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return suffixes


def _with_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    """Append `, suffix` for each suffix, starting a new indented line where it won't fit."""
    # PyTorch measures the last line as its length + 2, as if ", " were already there
    line_length = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if line_length + len(suffix) + 2 > OPTIONS.linewidth:
            text += ",\n" + " " * indent + suffix
            line_length = indent + len(suffix)
        else:
            text += ", " + suffix
            line_length += len(suffix) + 2
    return text + ")"


@register("__repr__")
def tensor_repr(self: Tensor) -> str:
    """`tensor([1.0000, 2.5000], requires_grad=True)`: the values, then what is not default.

    smolgrad's own tensor classes (Tensor, nn.Parameter, ...) print as `tensor(...)`; a
    user's subclass prints under its own class name, as in PyTorch.
    """
    cls = type(self)
    prefix = "tensor(" if cls.__module__.startswith("smolgrad") else f"{cls.__name__}("
    text = prefix + _values_text(self, len(prefix))
    return _with_suffixes(text, _suffixes(self), len(prefix))


@register("__str__")
def tensor_str(self: Tensor) -> str:
    """The same text as repr (nn.Parameter's repr adds its `Parameter containing:` line)."""
    return repr(self)


@register("__format__")
def tensor_format(self: Tensor, spec: str) -> str:
    """`f"{loss:.4f}"`: a 0-d Tensor formats as its Python number.

    Any other tensor (and, as in PyTorch, a 0-d tensor of a Tensor subclass such as
    nn.Parameter) takes only the empty spec, which gives `str(t)`; other specs raise
    TypeError.
    """
    if self.ndim == 0 and type(self) is Tensor:
        return format(self.item(), spec)
    return object.__format__(self, spec)
