"""repr/str/format of tensors, compared byte for byte with PyTorch's for the same values.

Every case builds a smolgrad tensor and a torch tensor from the same NumPy array. On the
cpu the two texts must be identical. On other devices smolgrad adds `device='mlx'` (or
'cuda:0') as PyTorch does for a non-cpu tensor; those runs check the device suffix and
compare the rest with PyTorch's cpu text.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import smolgrad as sg
import smolgrad.nn.functional as F
from smolgrad.ops.printing import get_printoptions, printoptions

F32, F64, F16 = np.float32, np.float64, np.float16


def _randn(seed: int, *shape, scale: float = 1.0, dtype=F32) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# (id, array): the same NumPy array becomes sg.tensor(array) and torch.tensor(array)
CASES = [
    # 0-d
    ("0d-whole", np.array(3.0, F32)),
    ("0d-fixed", np.array(2.5, F32)),
    ("0d-neg-zero", np.array(-0.0, F32)),
    ("0d-zero", np.array(0.0, F32)),
    ("0d-inf", np.array(np.inf, F32)),
    ("0d-nan", np.array(np.nan, F32)),
    ("0d-tiny", np.array(1e-5, F32)),
    ("0d-huge", np.array(1e10, F32)),
    ("0d-int", np.array(3, np.int64)),
    ("0d-neg-int", np.array(-42, np.int64)),
    ("0d-bool", np.array(True)),
    ("0d-f64", np.array(0.1, F64)),
    ("0d-f16", np.array(0.1, F16)),
    ("0d-int32", np.array(7, np.int32)),
    # 1-d floats: the choice of style
    ("whole", np.array([1, 2, 3], F32)),
    ("fixed", np.array([1.0, 2.5], F32)),
    ("fixed-neg", np.array([-1.5, 2.25, 100.125], F32)),
    ("sci-large", np.array([1e5, 1.0, 0.5], F32)),
    ("sci-small", np.array([1e-5, 1.0], F32)),
    ("sci-min-below-1e-4", np.array([0.00009, 0.0002], F32)),
    ("fixed-min-1e-4", np.array([0.0001, 0.05], F32)),
    ("whole-ratio-1000", np.array([1, 1000], F32)),
    ("whole-ratio-1001", np.array([1, 1001], F32)),
    ("fixed-ratio-1000", np.array([0.5, 500], F32)),
    ("whole-1e8", np.array([1e8, 3e7], F32)),
    ("whole-above-1e8", np.array([1.5e8, 2e8], F32)),
    ("big-fixed", np.array([123456.789, 1000.5], F32)),
    ("float32-max", np.array([3e38, -3e38], F32)),
    ("denormal", np.array([1e-45, 1.0], F32)),
    ("neg-zero", np.array([-0.0, 1.0], F32)),
    ("neg-zero-fixed", np.array([-0.0, 1.5], F32)),
    ("all-zero", np.array([0.0, 0.0, -0.0], F32)),
    ("non-finite", np.array([np.inf, -np.inf, np.nan], F32)),
    ("inf-and-fixed", np.array([np.inf, 1.5, -np.inf], F32)),
    ("nan-and-whole", np.array([np.nan, 2.0, -3.0], F32)),
    ("inf-and-sci", np.array([np.inf, 1e-7, 3.0], F32)),
    ("round-up-width", np.array([9.99996, 0.5], F32)),
    ("one-third", np.array([1 / 3, 2 / 3], F32)),
    # ints and bools
    ("ints", np.array([1, -22, 333], np.int64)),
    ("int-big", np.array([2**62, -(2**62)], np.int64)),
    ("int32", np.array([1, -22, 333], np.int32)),
    ("bools", np.array([True, False, True])),
    ("bools-2d", np.array([[True, False], [False, False]])),
    ("ints-2d", np.arange(-6, 6, dtype=np.int64).reshape(3, 4)),
    # 2-d .. 4-d
    ("2d", _randn(1, 3, 4)),
    ("2d-column", _randn(2, 4, 1)),
    ("2d-row", _randn(3, 1, 4)),
    ("3d", _randn(4, 2, 3, 4)),
    ("4d", _randn(5, 2, 2, 3, 2)),
    ("3d-sci", _randn(6, 2, 2, 2, scale=1e6)),
    ("3d-whole", np.arange(24, dtype=F32).reshape(2, 3, 4)),
    ("4d-int", np.arange(16, dtype=np.int64).reshape(2, 2, 2, 2)),
    ("2d-singletons", _randn(7, 1, 1)),
    # wide rows wrap at 80 columns
    ("wide-fixed", _randn(8, 30)),
    ("wide-sci", _randn(9, 25, scale=1e-6)),
    ("wide-ints", np.arange(100, dtype=np.int64)),
    ("wide-2d", _randn(10, 3, 20)),
    ("wide-3d", _randn(11, 2, 2, 17)),
    ("wide-bools", np.arange(40) % 3 == 0),
    # summarised (more than 1000 elements)
    ("sum-1d-ints", np.arange(2000, dtype=np.int64)),
    ("sum-1d", _randn(12, 1001)),
    ("just-1000", _randn(13, 1000)),
    ("sum-2d", _randn(14, 40, 50)),
    ("sum-2d-one-axis-cut", _randn(15, 3, 400)),
    ("sum-2d-first-axis-cut", _randn(16, 400, 3)),
    ("sum-3d", _randn(17, 11, 11, 11)),
    ("sum-4d", _randn(18, 7, 7, 7, 7)),
    ("sum-sci", np.arange(2000, dtype=F32).reshape(40, 50)),
    ("sum-bools", np.arange(1500) % 2 == 0),
    # style decided by the kept values only (the middle one would make it fixed)
    ("sum-middle-ignored", np.concatenate([np.ones(600), [0.5], np.ones(600)]).astype(F32)),
    # empty
    ("empty", np.zeros((0,), F32)),
    ("empty-2d", np.zeros((0, 3), F32)),
    ("empty-3d", np.zeros((2, 0, 4), F32)),
    ("empty-int", np.zeros((0,), np.int64)),
    ("empty-int-2d", np.zeros((3, 0), np.int64)),
    ("empty-bool", np.zeros((0,), bool)),
    ("empty-f64", np.zeros((0,), F64)),
    # other dtypes
    ("f64", np.array([1.0, 2.5, 1 / 3], F64)),
    ("f64-2d", _randn(19, 2, 3, dtype=F64)),
    ("f64-wide", _randn(20, 20, dtype=F64)),
    ("f16", np.array([0.1, 1.0, 65504.0], F16)),
    ("f16-whole", np.array([1, 2, 3], F16)),
    ("f16-2d", _randn(21, 3, 3, dtype=F16)),
    ("f16-inf", np.array([np.inf, 0.5], F16)),
    ("int32-2d", np.arange(6, dtype=np.int32).reshape(2, 3)),
]

GRAD_CASES = [
    ("grad-1d", _randn(30, 3)),
    ("grad-0d", np.array(1.5, F32)),
    ("grad-wrap-suffix", _randn(31, 9)),  # requires_grad=True moves to the next line
    ("grad-2d", _randn(32, 2, 3)),
    ("grad-wide", _randn(33, 2, 20)),
    ("grad-f64", _randn(34, 4, dtype=F64)),  # dtype and requires_grad suffixes together
    ("grad-f64-wrap", _randn(35, 8, dtype=F64)),
    ("grad-summarised", _randn(36, 1200)),
    # the line would be exactly 80 characters with the suffix: PyTorch already wraps
    ("grad-suffix-at-80", np.array([-1e-5, 2e-5, 3e-5, 4e-5], F32)),
]

_OTHER_DEVICE_SUFFIX = re.compile(r",\s*device='[^']*'")
_SUFFIX_BREAK = re.compile(r",\n +(?=(?:size|dtype|requires_grad|grad_fn)=)")


def _device_text(device: str) -> str:
    return "cuda:0" if device == "cuda" else device


def _supported(array: np.ndarray, device: str) -> None:
    if array.dtype == F64 and not sg.tensor([1.0], device=device).backend.has_float64:
        pytest.skip(f"device '{device}' has no float64")


def _assert_prints_like(ours: sg.Tensor, theirs: torch.Tensor, device: str) -> None:
    """repr and str equal PyTorch's; off the cpu, up to the device suffix PyTorch adds."""
    expected = repr(theirs)
    got = repr(ours)
    assert str(ours) == got
    if device == "cpu":
        assert got == expected, f"\nours:\n{got}\ntorch:\n{expected}"
        return
    # the device suffix comes first, right after the values
    device_suffix = f"device='{_device_text(device)}'"
    assert got.count(device_suffix) == 1
    assert "=" not in got.split(device_suffix)[0], got
    without = _SUFFIX_BREAK.sub(", ", _OTHER_DEVICE_SUFFIX.sub("", got))
    assert without == _SUFFIX_BREAK.sub(", ", expected), f"\nours:\n{got}\ntorch:\n{expected}"


@pytest.fixture(autouse=True)
def _default_print_options():
    """Every test starts from, and leaves behind, both libraries' default options."""
    sg.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")
    yield
    sg.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize("name,array", CASES, ids=[c[0] for c in CASES])
def test_repr_matches_torch(name, array, device):
    _supported(array, device)
    _assert_prints_like(sg.tensor(array, device=device), torch.tensor(array), device)


@pytest.mark.parametrize("name,array", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_requires_grad_leaf_matches_torch(name, array, device):
    _supported(array, device)
    ours = sg.tensor(array, device=device, requires_grad=True)
    _assert_prints_like(ours, torch.tensor(array, requires_grad=True), device)
    assert repr(ours).endswith("requires_grad=True)")


@pytest.mark.parametrize("name,array", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_non_leaf_shows_grad_fn(name, array, device):
    """Values and suffixes up to grad_fn match PyTorch; grad_fn is the node's repr."""
    _supported(array, device)
    ours = sg.tensor(array, device=device, requires_grad=True) * 3
    theirs = torch.tensor(array, requires_grad=True) * 3
    got, expected = repr(ours), repr(theirs)
    assert got.endswith(f"grad_fn={ours.grad_fn!r})")
    assert "requires_grad" not in got
    if device == "cpu":
        assert got.split("grad_fn=")[0] == expected.split("grad_fn=")[0]
    _assert_prints_like(ours.detach(), theirs.detach(), device)


def test_suffix_wrapping_boundary():
    """Rows ending at every column near 80, so each suffix lands on both sides of the limit."""
    for digits in range(1, 6):
        for count in range(1, 12):
            values = np.arange(count) + 10.0 ** (digits - 1)
            for array in (values.astype(F32), values.astype(F64), (values + 0.5).astype(F64),
                          values.astype(np.int32)):
                for grad in (False, True) if array.dtype != np.int32 else (False,):
                    ours = sg.tensor(array, requires_grad=grad)
                    theirs = torch.tensor(array, requires_grad=grad)
                    assert repr(ours) == repr(theirs)


def test_parameter_repr_matches_torch():
    array = _randn(40, 2, 3)
    ours = sg.nn.Parameter(sg.tensor(array))
    theirs = torch.nn.Parameter(torch.tensor(array))
    assert repr(ours) == repr(theirs)
    assert str(ours) == str(theirs)


def test_other_device_text(device):
    """Hand-written expectations for the device suffix, including where it wraps."""
    if device == "cpu":
        pytest.skip("the cpu prints no device")
    name = _device_text(device)
    assert repr(sg.tensor([1.0, 2.0], device=device)) == f"tensor([1., 2.], device='{name}')"
    assert repr(sg.tensor(3, device=device)) == f"tensor(3, device='{name}')"
    x = sg.tensor(np.arange(9, dtype=F32) + 0.5, device=device, requires_grad=True)
    assert repr(x) == (f"tensor([0.5000, 1.5000, 2.5000, 3.5000, 4.5000, 5.5000, 6.5000, "
                       f"7.5000, 8.5000],\n       device='{name}', requires_grad=True)")
    f16 = sg.tensor(np.array([0.5, 1.0], F16), device=device)
    assert repr(f16) == f"tensor([0.5000, 1.0000], device='{name}', dtype=torch.float16)"


def test_bfloat16_matches_torch(device):
    """bfloat16 where the backend has it (NumPy has none): values, then dtype."""
    array = np.array([0.1, 1.0, 3.0, 1000.0], F32)
    try:
        ours = sg.tensor(array, device=device).to(sg.bfloat16)
    except TypeError as err:
        pytest.skip(str(err))
    _assert_prints_like(ours, torch.tensor(array).to(torch.bfloat16), device)


def test_random_tensors_match_torch():
    """Random shapes, magnitudes and special values: the style and width rules together."""
    rng = np.random.default_rng(2024)
    for _ in range(150):
        shape = tuple(int(n) for n in rng.integers(0, 6, size=rng.integers(0, 4)))
        dtype = rng.choice([F32, F64, F16])
        magnitude = 10.0 ** rng.integers(-9, 12)
        array = rng.standard_normal(shape) * magnitude
        if rng.random() < 0.3:
            array = np.round(array)
        if rng.random() < 0.2 and array.size:
            array.flat[rng.integers(array.size)] = rng.choice([np.inf, -np.inf, np.nan, -0.0])
        with np.errstate(over="ignore"):  # float16 overflows to inf, as in PyTorch
            array = np.asarray(array, dtype=dtype)
        assert repr(sg.tensor(array)) == repr(torch.tensor(array)), array


OPTION_SETS = [
    {"precision": 2},
    {"precision": 8},
    {"precision": 0},
    {"sci_mode": True},
    {"sci_mode": False},
    {"threshold": 5},
    {"threshold": 5, "edgeitems": 1},
    {"linewidth": 40},
    {"linewidth": 200},
    {"profile": "short"},
    {"profile": "full"},
    {"profile": "full", "precision": 2},
    {"threshold": 5, "edgeitems": 0},
]

OPTION_ARRAYS = [
    np.array([1.0, 2.5, 1e-3], F32),
    np.array([1e5, 1.0], F32),
    np.array([0.0, -0.0], F32),
    np.array([np.nan, 1.0, 2.0], F32),
    np.arange(12, dtype=np.int64),
    _randn(41, 4, 9),
    _randn(42, 3, 2, 4),
    _randn(43, 1500),
    np.array(2.5, F32),
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=[str(o) for o in OPTION_SETS])
def test_set_printoptions_matches_torch(options):
    sg.set_printoptions(**options)
    torch.set_printoptions(**options)
    for array in OPTION_ARRAYS:
        assert repr(sg.tensor(array)) == repr(torch.tensor(array)), (options, array)


def test_sci_mode_is_reset_when_omitted():
    """As in PyTorch, set_printoptions without sci_mode= returns to choosing per tensor."""
    sg.set_printoptions(sci_mode=True)
    assert repr(sg.tensor([1.5])) == "tensor([1.5000e+00])"
    sg.set_printoptions(precision=4)
    assert repr(sg.tensor([1.5])) == "tensor([1.5000])"


def test_printoptions_context_restores():
    before = get_printoptions()
    array = _randn(44, 12)
    with printoptions(precision=1, linewidth=30):
        torch.set_printoptions(precision=1, linewidth=30)
        assert repr(sg.tensor(array)) == repr(torch.tensor(array))
    torch.set_printoptions(profile="default")
    assert get_printoptions() == before
    assert repr(sg.tensor(array)) == repr(torch.tensor(array))


def test_unknown_profile_is_named():
    with pytest.raises(ValueError, match="unknown profile 'wide'"):
        sg.set_printoptions(profile="wide")


def test_default_dtype_float64_changes_dtype_suffix():
    """The dtype suffix is left out for the *default* float dtype, whichever that is."""
    previous = sg.get_default_dtype()
    sg.set_default_dtype(sg.float64)
    torch.set_default_dtype(torch.float64)
    try:
        for array in (np.array([1.5, 2.0], F32), np.array([1.5, 2.0], F64),
                      np.zeros((0,), F64), np.zeros((0,), F32)):
            assert repr(sg.tensor(array)) == repr(torch.tensor(array))
    finally:
        sg.set_default_dtype(previous)
        torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------------------------------
# format(t, spec)
# ---------------------------------------------------------------------------------------

FORMAT_CASES = [
    (np.array(0.123456, F32), ".4f"),
    (np.array(0.123456, F32), ">8.2f"),
    (np.array(0.123456, F32), ""),
    (np.array(-3.5, F32), "e"),
    (np.array(1e-7, F32), "g"),
    (np.array(0.5, F64), ".3%"),
    (np.array(7, np.int64), "d"),
    (np.array(7, np.int64), "04d"),
    (np.array(7, np.int64), ".2f"),
    (np.array(7, np.int32), ""),
    (np.array(True), ""),
    (np.array(True), "d"),
    (np.array(0.1, F16), ".5f"),
]


@pytest.mark.parametrize("array,spec", FORMAT_CASES,
                         ids=[f"{a.dtype}-{s or 'empty'}" for a, s in FORMAT_CASES])
def test_format_0d_like_a_number(array, spec, device):
    _supported(array, device)
    ours = sg.tensor(array, device=device)
    assert format(ours, spec) == format(torch.tensor(array), spec)
    assert f"{ours:{spec}}" == format(array.item(), spec)


def test_format_0d_that_requires_grad():
    loss = (sg.tensor([0.5, 1.25], requires_grad=True) ** 2).sum()
    expected = (torch.tensor([0.5, 1.25], requires_grad=True) ** 2).sum()
    assert f"loss {loss:.4f}" == f"loss {expected:.4f}" == "loss 1.8125"


def test_format_non_0d(device):
    array = np.array([1.0, 2.5], F32)
    ours = sg.tensor(array, device=device)
    assert f"{ours}" == str(ours)
    if device == "cpu":
        assert f"{ours}" == f"{torch.tensor(array)}"
    with pytest.raises(TypeError):
        format(torch.tensor(array), ".2f")
    with pytest.raises(TypeError, match="unsupported format string"):
        format(ours, ".2f")
    one = sg.tensor([2.5], device=device)  # one element but 1-d: still not a number
    with pytest.raises(TypeError):
        format(one, ".2f")


def test_format_0d_parameter_is_not_a_number():
    """PyTorch formats only plain 0-d Tensors as numbers; a 0-d Parameter refuses a spec."""
    ours = sg.nn.Parameter(sg.tensor(1.5))
    theirs = torch.nn.Parameter(torch.tensor(1.5))
    with pytest.raises(TypeError):
        format(theirs, ".2f")
    with pytest.raises(TypeError):
        format(ours, ".2f")
    assert format(ours, "") == format(theirs, "")


# -- grad_fn as PyTorch prints it -----------------------------------------------------------
# the same expression in both libraries (lib is sg or torch, F its functional module);
# what programs and lecture notebooks show when they print a loss or an activation
GRAD_FN_CASES = {
    "cross_entropy": lambda lib, F, x, w, v, t: F.cross_entropy(x, t),
    "cross_entropy_none": lambda lib, F, x, w, v, t: F.cross_entropy(x, t, reduction="none"),
    "nll_loss": lambda lib, F, x, w, v, t: F.nll_loss(x, t),
    "mse_loss": lambda lib, F, x, w, v, t: F.mse_loss(x, x.detach() * 0),
    "bce": lambda lib, F, x, w, v, t: F.binary_cross_entropy(x.sigmoid(), x.detach() * 0),
    "bce_logits": lambda lib, F, x, w, v, t: F.binary_cross_entropy_with_logits(x, x.detach()),
    "mean": lambda lib, F, x, w, v, t: x.mean(),
    "mean_dim": lambda lib, F, x, w, v, t: x.mean(1),
    "std": lambda lib, F, x, w, v, t: x.std(),
    "var": lambda lib, F, x, w, v, t: x.var(),
    "max": lambda lib, F, x, w, v, t: x.max(),
    "min": lambda lib, F, x, w, v, t: x.min(),
    "linear": lambda lib, F, x, w, v, t: F.linear(x, w, w[:, 0].contiguous()),
    "linear_no_bias": lambda lib, F, x, w, v, t: F.linear(x, w),
    "linear_3d": lambda lib, F, x, w, v, t: F.linear(x.view(1, 3, 4), w, w[:, 0].contiguous()),
    "mm": lambda lib, F, x, w, v, t: x @ w.T,
    "mv": lambda lib, F, x, w, v, t: x @ v,
    "dot": lambda lib, F, x, w, v, t: v @ v,
    "select": lambda lib, F, x, w, v, t: x[0],
    "slice": lambda lib, F, x, w, v, t: x[0, 1:3],
    "index": lambda lib, F, x, w, v, t: x[t],
    "view": lambda lib, F, x, w, v, t: x.view(12),
    "layer_norm": lambda lib, F, x, w, v, t: F.layer_norm(x, (4,)),
    "embedding": lambda lib, F, x, w, v, t: F.embedding(t, x),
    "mul": lambda lib, F, x, w, v, t: x * 2,
    "tanh": lambda lib, F, x, w, v, t: x.tanh(),
}


@pytest.mark.parametrize("name", list(GRAD_FN_CASES))
def test_grad_fn_prints_as_pytorch(name):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (2, 4), (4,))]
    ours = [sg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    got = GRAD_FN_CASES[name](sg, F, *ours, sg.tensor([0, 1, 2]))
    want = GRAD_FN_CASES[name](torch, TF, *theirs, torch.tensor([0, 1, 2]))
    assert repr(got.grad_fn) == f"<{type(want.grad_fn).__name__}>"
    assert repr(got).endswith(f"grad_fn=<{type(want.grad_fn).__name__}>)")
