"""Sampling and counting: `multinomial`, `histogram`, `histc`, `unique`.

None of these is differentiable: their results are indices and counts. They are written in
Tensor ops on detached inputs, so they run unchanged on every backend, and they follow
PyTorch's argument names, defaults, dtypes, edge cases and error messages.
"""

from __future__ import annotations

import math
from collections import namedtuple

from .. import dtypes as dt
from ..engine import Tensor, register
from ..random import Generator
from .common import normalize_dim
from .creation import full, ones, rand, zeros
from .elementwise import minimum, where
from .movement import cat

# torch.histogram returns a named tuple with these fields
histogram_result = namedtuple("histogram", ["hist", "bin_edges"])

# at most this many elements in one (rows, samples, categories) comparison of multinomial
_MAX_COMPARISONS = 1 << 24


def _require_tensor(op: str, name: str, value) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be a Tensor, got "
                        f"{type(value).__name__}")


def _require_int(op: str, name: str, value) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{op}(): argument '{name}' must be int, not "
                        f"{type(value).__name__}")
    return value.__index__()


def _work_dtype(x: Tensor) -> dt.dtype:
    """float64 where the device has it (MLX's GPU does not), else float32."""
    return dt.float64 if x.backend.has_float64 else dt.float32


# ---------------------------------------------------------------------------------------
# multinomial
# ---------------------------------------------------------------------------------------


@register("multinomial", function=True)
def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """Draw `num_samples` category indices from each row of weights.

    `input` is (C,) or (N, C): non-negative, finite weights, not all zero in a row; they
    need not sum to 1 (row i draws category j with probability p_ij / Σ_j p_ij). Returns
    int64 indices of shape (num_samples,) or (N, num_samples).

    With replacement (inverse CDF): for u ~ U[0, 1) and cdf = cumsum(p), the index is
    #{j : cdf_j <= u · Σp}, the category whose slice [cdf_{j-1}, cdf_j) holds u · Σp.

    Without replacement (an exponential race): with E_j ~ Exp(1) = -ln(1 - u_j) the keys
    E_j / p_j are independent exponentials of rate p_j; the category with the smallest key
    is a draw from p, the next one a draw from the rest renormalised, and so on. The
    `num_samples` smallest keys, in increasing order, are the sample. Zero-weight
    categories have key ∞ and come last, so asking for more samples than there are
    non-zero weights returns zero-weight categories, as PyTorch does.

    Random numbers come from `generator` (an `sg.Generator`) or from the device's
    generator (seeded by `sg.manual_seed`); they are not PyTorch's numbers for the same seed.
    """
    _require_tensor("multinomial", "input", input)
    num_samples = _require_int("multinomial", "num_samples", num_samples)
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"multinomial(): argument 'generator' must be sg.Generator, not "
                        f"{type(generator).__name__}")
    _check_distribution(input, num_samples, replacement)
    weights = input.detach().to(_work_dtype(input))
    rows = weights if input.ndim == 2 else weights.unsqueeze(0)  # (N, C)
    if rows.shape[0] == 0:
        return zeros(0, num_samples, dtype=dt.int64, device=input.device)
    draw = _draw_with_replacement if replacement else _draw_without_replacement
    index = draw(rows, num_samples, generator)
    return index if input.ndim == 2 else index[0]


def _check_distribution(input: Tensor, num_samples: int, replacement: bool) -> None:
    """PyTorch's checks on multinomial's arguments, in PyTorch's order."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got a tensor of "
                           f"shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype.name}; convert the weights with .float()")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (got "
                           f"num_samples={num_samples})")
    categories = input.shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           f"without replacement (num_samples={num_samples}, "
                           f"{categories} categories); pass replacement=True")
    if categories == 0:
        raise RuntimeError(f"multinomial: cannot sample from zero categories (input of shape "
                           f"{tuple(input.shape)})")
    if categories > 2**24:  # PyTorch's limit: float32 cannot tell more categories apart
        raise RuntimeError(f"multinomial: number of categories cannot exceed 2^24, got "
                           f"{categories}")
    if input.numel() == 0:
        return
    if ((input < 0) | ~input.isfinite()).any().item():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    if (input.sum(-1) <= 0).any().item():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0): a row of weights is all zeros")


def _uniform(rows: Tensor, count: int, generator) -> Tensor:
    """(N, count) uniforms in [0, 1), in the dtype and on the device of `rows`."""
    return rand(rows.shape[0], count, dtype=rows.dtype, device=rows.device,
                generator=generator)


def _draw_with_replacement(rows: Tensor, num_samples: int, generator) -> Tensor:
    """Inverse-CDF draws from rows (N, C) of weights -> (N, num_samples) indices."""
    n, c = rows.shape
    cdf = rows.cumsum(-1)                                           # (N, C)
    targets = _uniform(rows, num_samples, generator) * cdf[:, -1:]  # (N, S), in [0, Σp)
    # the comparison (N, S, C) is built a few samples at a time to bound its memory
    step = max(1, _MAX_COMPARISONS // (n * c))
    pieces = [(cdf.unsqueeze(1) <= targets[:, s:s + step].unsqueeze(-1)).sum(-1)
              for s in range(0, num_samples, step)]
    index = cat(pieces, 1) if len(pieces) > 1 else pieces[0]
    # u·Σp can round up to Σp itself (a chance of about 2⁻⁵³): stay on the last category
    # that has weight, never step past it
    last_with_weight = c - 1 - (rows > 0).flip(-1).to(dt.int32).argmax(-1, keepdim=True)
    return minimum(index, last_with_weight)


def _draw_without_replacement(rows: Tensor, num_samples: int, generator) -> Tensor:
    """Exponential race over rows (N, C) of weights -> (N, num_samples) distinct indices."""
    exponential = -(-_uniform(rows, rows.shape[1], generator)).log1p()  # -ln(1 - u) < ∞
    positive = rows > 0
    keys = where(positive, exponential / where(positive, rows, 1.0), math.inf)
    return keys.argsort(-1)[:, :num_samples]


# ---------------------------------------------------------------------------------------
# histogram, histc
# ---------------------------------------------------------------------------------------


@register("histogram", function=True)
def histogram(input, bins=100, *, range: tuple | None = None, weight=None,  # noqa: A002
              density: bool = False) -> histogram_result:
    """Counts (or summed `weight`s) of input's elements in bins: returns (hist, bin_edges).

    `bins` is a number of equal-width bins over `range` = (min, max) (default: the data's
    min and max; an empty range [a, a] becomes [a - 0.5, a + 0.5]), or a 1-D tensor of
    increasing edges. Bin i holds edges[i] <= x < edges[i + 1]; the last bin also holds
    x == edges[-1]. Elements outside the edges, and NaN, are not counted. With
    `density=True`, hist / (Σ hist · bin width), so that hist integrates to 1. The input
    is flattened; hist and bin_edges have input's (floating point) dtype.
    """
    _require_tensor("histogram", "input", input)
    _check_float_input("histogram", input)
    values = input.detach().reshape(-1)
    weights = _histogram_weights(values, weight, input.shape)
    if isinstance(bins, Tensor):
        if range is not None:
            raise TypeError("histogram(): range= goes only with a number of bins, not with "
                            "a tensor of bin edges")
        edges = _checked_edges(bins, input)
        index = _bin_by_search(values, edges)
    else:
        bins = _require_int("histogram", "bins", bins)
        _check_bins("histogram", bins)
        if range is None:
            low, high = _data_range(values, default=(0.0, 1.0))  # NumPy's default too
        else:
            low, high = (float(v) for v in range)
        low, high = _checked_range("histogram", low, high, widen_empty_by=0.5)
        edges = _linspace_edges(low, high, bins + 1, values)
        index = _bin_by_division(values, edges, local_search=True)
    hist = _count(index, weights, edges.shape[0] - 1)
    if density:
        hist = hist / hist.sum() / (edges[1:] - edges[:-1])
    return histogram_result(hist, edges)


@register("histc", function=True)
def histc(input, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Counts of input's elements in `bins` equal-width bins over [min, max] (flattened).

    When min == max, the data's min and max are used instead; if those are equal too
    (one distinct value a), the range is [a - 1, a + 1]. Elements outside the range,
    and NaN, are not counted. Element x goes to bin trunc((x - min) · bins / (max - min)),
    the last bin holding x == max too. Returns a (bins,) tensor of input's dtype.
    """
    _require_tensor("histc", "input", input)
    _check_float_input("histc", input)
    bins = _require_int("histc", "bins", bins)
    _check_bins("histc", bins)
    values = input.detach().reshape(-1)
    low, high = float(min), float(max)
    if low > high:
        raise RuntimeError(f"histc: max must be larger than min (got min={min}, max={max})")
    if low == high:
        low, high = _data_range(values, default=(low, high))
    low, high = _checked_range("histc", low, high, widen_empty_by=1.0)
    edges = _linspace_edges(low, high, bins + 1, values)
    index = _bin_by_division(values, edges, local_search=False)
    return _count(index, ones(values.shape, dtype=values.dtype, device=values.device), bins)


def _check_float_input(op: str, input: Tensor) -> None:
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expects a floating point input, got dtype "
                           f"{input.dtype.name}; convert it with .float()")


def _check_bins(op: str, bins: int) -> None:
    if bins <= 0:
        raise RuntimeError(f"{op}: bins must be > 0, but got {bins}")


def _histogram_weights(values: Tensor, weight, shape: tuple) -> Tensor:
    """Each element's weight, flat: `weight` checked against the input, or ones."""
    if weight is None:
        return ones(values.shape, dtype=values.dtype, device=values.device)
    _require_tensor("histogram", "weight", weight)
    if weight.shape != shape:
        raise RuntimeError(f"histogram: weight must have the input's shape {shape}, got "
                           f"{tuple(weight.shape)}")
    _check_like_input("weight", weight, values)
    return weight.detach().reshape(-1)


def _checked_edges(edges: Tensor, input: Tensor) -> Tensor:
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise RuntimeError(f"histogram: bins must be a 1-D tensor of at least 2 edges, got "
                           f"shape {tuple(edges.shape)}")
    _check_like_input("bins", edges, input)
    return edges.detach()


def _check_like_input(name: str, t: Tensor, input: Tensor) -> None:
    """histogram's `weight` and `bins` tensors must share the input's dtype and device."""
    if t.dtype != input.dtype or t.device != input.device:
        raise RuntimeError(f"histogram: {name} ({t.dtype.name} on {t.device}) must have the "
                           f"input's dtype and device ({input.dtype.name} on {input.device})")


def _data_range(values: Tensor, default: tuple) -> tuple:
    """The data's (min, max) as Python floats, or `default` when there is no data."""
    if values.numel() == 0:
        return default
    return values.min().item(), values.max().item()


def _checked_range(op: str, low: float, high: float, widen_empty_by: float) -> tuple:
    """(low, high) checked finite and ordered; an empty range [a, a] widens to
    [a - w, a + w] (so that no bin has width 0)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise RuntimeError(f"{op}: range of [{low}, {high}] is not finite; pass finite "
                           f"bounds or remove inf/NaN from the input")
    if low > high:
        raise RuntimeError(f"{op}: min should not exceed max, but got min {low} max {high}")
    if low == high:
        low, high = low - widen_empty_by, high + widen_empty_by
    return low, high


def _linspace_edges(low: float, high: float, steps: int, like: Tensor) -> Tensor:
    """`steps` evenly spaced edges from low to high, in like's dtype and on its device.

    As PyTorch's linspace computes them one at a time: the first half as low + step·i,
    the second half as high - step·(steps - 1 - i), so that both ends are exact. (Its
    vectorised CPU loop can round some middle edges an ulp differently.)
    """
    low_t = full((), low, dtype=like.dtype, device=like.device)
    high_t = full((), high, dtype=like.dtype, device=like.device)
    step = (high_t - low_t) / (steps - 1)
    i = _arange(steps, like)
    return where(i < steps // 2, low_t + step * i, high_t - step * (steps - 1 - i))


def _arange(n: int, like: Tensor) -> Tensor:
    """0, 1, ..., n - 1 in like's dtype and on its device."""
    return ones(n, dtype=like.dtype, device=like.device).cumsum(0) - 1


def _in_range(values: Tensor, edges: Tensor) -> Tensor:
    """True where edges[0] <= x <= edges[-1] (False for NaN)."""
    return (values >= edges[0]) & (values <= edges[-1])


def _bin_by_division(values: Tensor, edges: Tensor, local_search: bool) -> Tensor:
    """Bin of each element for evenly spaced edges (-1 for those not counted).

    pos = trunc((x - edges[0]) · bins / (edges[-1] - edges[0])) (histc stops here). With
    `local_search`, pos moves one bin left or right where x falls outside
    [edges[pos], edges[pos + 1]) by rounding, so that the counts agree with the edges
    returned (histogram)."""
    bins = edges.shape[0] - 1
    inside = _in_range(values, edges)
    x = where(inside, values, edges[0])  # NaN and outsiders would not convert to int
    scaled = x if x.dtype.itemsize >= 4 else x.to(dt.float32)  # float16 math is float32
    low, high = edges[0].to(scaled.dtype), edges[-1].to(scaled.dtype)
    pos = ((scaled - low) * bins / (high - low)).to(dt.int64).clamp(0, bins)
    if local_search:
        pos = pos - (edges[pos] > x).to(dt.int64)
        pos = pos + (edges[(pos + 1).clamp(max=bins)] <= x).to(dt.int64)
    pos = minimum(pos, bins - 1)  # the last bin holds its right edge too
    return where(inside, pos, -1)


def _bin_by_search(values: Tensor, edges: Tensor) -> Tensor:
    """Bin of each element for any increasing edges (-1 for those not counted): the
    number of edges <= x, minus one, counted a slice of elements at a time."""
    bins = edges.shape[0] - 1
    step = max(1, _MAX_COMPARISONS // edges.shape[0])
    counts = [(values[s:s + step].unsqueeze(-1) >= edges).sum(-1)
              for s in range(0, values.shape[0], step)]
    pos = cat(counts) if counts else zeros(0, dtype=dt.int64, device=values.device)
    pos = minimum(pos - 1, bins - 1)
    return where(_in_range(values, edges), pos, -1)


def _count(index: Tensor, weights: Tensor, bins: int) -> Tensor:
    """hist[b] = Σ weights[i] over the elements i with index[i] == b (index -1: skipped)."""
    counted = index >= 0
    hist = zeros(bins + 1, dtype=weights.dtype, device=weights.device)
    hist = hist.scatter_add(0, where(counted, index, bins), where(counted, weights, 0.0))
    return hist[:bins]


@register("bincount", function=True)
def bincount(input, weights=None, minlength: int = 0) -> Tensor:
    """out[b] = the number of elements of the 1-d integer tensor `input` equal to b (or the
    sum of `weights` at those positions), for b = 0 .. max(max(input) + 1, minlength) - 1.

    dtype: int64 without weights; floating weights keep their dtype, others give float64
    (as PyTorch). Negative or non-integer input, or 2-d input, is an error.
    """
    _require_tensor("bincount", "input", input)
    minlength = _require_int("bincount", "minlength", minlength)
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength should be >= 0, got {minlength}")
    if input.dtype.is_floating_point or input.dtype is dt.bool_ or input.ndim != 1:
        raise RuntimeError(f"bincount: only supports 1-d non-negative integral inputs, got "
                           f"shape {list(input.shape)} and dtype {input.dtype.name}")
    values = input.detach()
    if values.numel() and int(values.min()) < 0:
        raise RuntimeError(f"bincount: only supports 1-d non-negative integral inputs, got "
                           f"the value {int(values.min())}")
    bins = max(int(values.max()) + 1 if values.numel() else 0, minlength)
    if weights is None:
        weights = ones(values.shape, dtype=dt.int64, device=values.device)
    else:
        _require_tensor("bincount", "weights", weights)
        if weights.shape != values.shape:
            raise RuntimeError(f"bincount: weights should be 1-d and have the same length as "
                               f"input, got weights of shape {list(weights.shape)} for input "
                               f"of shape {list(values.shape)}")
        weight_dtype = weights.dtype if weights.dtype.is_floating_point else dt.float64
        weights = weights.detach().to(weight_dtype)
    return _count(values, weights, bins)


# ---------------------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------------------


@register("unique", function=True)
def unique(input, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim: int | None = None):
    """The distinct values of `input`, ascending: `output`, or a tuple (output, inverse?,
    counts?) with the parts asked for.

    Without `dim` the input is flattened: output is 1-D, `inverse` (int64, input's shape)
    gives each element's position in output, so output[inverse] == input, and `counts`
    (int64) how often each value occurs. With `dim`, the distinct slices along `dim` (in
    lexicographic order): output keeps input's other sizes, inverse has shape
    (input.shape[dim],). NaN differs from every value, itself included, so each NaN is
    its own entry. PyTorch sorts even when sorted=False; so does smolgrad.
    """
    _require_tensor("unique", "input", input)
    values = input.detach()
    if dim is None:
        flat = values.reshape(-1)
        order, starts, group = _sorted_groups(flat)
        output = flat[order[starts]]
        inverse = _scatter_groups(order, group).reshape(input.shape)
    else:
        output, inverse, starts = _unique_slices(values, dim)
    counts = _group_sizes(starts, inverse.numel())
    extra = [t for t, wanted in ((inverse, return_inverse), (counts, return_counts)) if wanted]
    return (output, *extra) if extra else output


def _sorted_groups(keys: Tensor) -> tuple:
    """Sort 1-D `keys` and find its runs of equal values.

    Returns (order, starts, group): keys[order] is sorted; `starts` holds the sorted
    positions where a new value begins; group[k] is the run (0, 1, ...) that sorted
    position k belongs to. NaN != NaN, so each NaN starts a run of its own."""
    order = keys.argsort()
    ranked = keys[order]
    begins = cat([ones(min(1, keys.numel()), dtype=dt.bool_, device=keys.device),
                  ranked[1:] != ranked[:-1]])
    starts = begins.nonzero()[:, 0]
    group = begins.to(dt.int64).cumsum(0) - 1
    return order, starts, group


def _scatter_groups(order: Tensor, group: Tensor) -> Tensor:
    """inverse[order[k]] = group[k]: each original element's run, in the original order."""
    inverse = zeros(order.shape, dtype=dt.int64, device=order.device)
    if order.numel() == 0:  # (MLX cannot scatter nothing)
        return inverse
    return inverse.scatter_add(0, order, group)


def _group_sizes(starts: Tensor, total: int) -> Tensor:
    """Run lengths from the run starts: the gaps between consecutive starts (and the end)."""
    end = full((1,), total, dtype=dt.int64, device=starts.device)
    return cat([starts[1:], end]) - starts if starts.numel() else starts


def _unique_slices(values: Tensor, dim: int) -> tuple:
    """unique(dim=...): (output, inverse, starts) for the distinct slices along `dim`."""
    if values.ndim == 0:
        raise IndexError("unique: dim= needs a tensor with at least one dimension, got a "
                         "0-d tensor; leave dim=None")
    d = normalize_dim(dim, values.ndim, "unique")
    slices = values.movedim(d, 0)
    if slices.shape[0] > 0 and 0 in slices.shape[1:]:
        raise RuntimeError(f"unique: there are 0-sized dimensions other than dim={dim} in "
                           f"shape {tuple(values.shape)}, so unique cannot be applied")
    rows = slices.reshape(slices.shape[0], math.prod(slices.shape[1:]))  # a row per slice
    rank = _row_ranks(rows)
    order, starts, group = _sorted_groups(rank)
    output = slices[order[starts]].movedim(0, d)
    return output, _scatter_groups(order, group), starts


def _row_ranks(rows: Tensor) -> Tensor:
    """Dense lexicographic rank of each row of a 2-D tensor (equal rows, equal ranks).

    Column by column: the rank so far and the next column's dense rank combine into one
    integer key (rank · size + column rank) that is ranked again, which keeps every key
    below rows² (no overflow) and needs no stable sort."""
    rank = zeros(rows.shape[0], dtype=dt.int64, device=rows.device)
    for j in range(rows.shape[1]):
        column_rank = _dense_rank(rows[:, j])
        rank = _dense_rank(rank * rows.shape[0] + column_rank)
    return rank


def _dense_rank(keys: Tensor) -> Tensor:
    """0 for the smallest distinct value of 1-D `keys`, 1 for the next, ..."""
    order, _, group = _sorted_groups(keys)
    return _scatter_groups(order, group)
