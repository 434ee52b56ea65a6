"""The backends behind one seam: NumPy (cpu), MLX (mlx), CuPy (cuda).

1. The contract (smolgrad/arrays/contract.py): every backend provides every required
   kernel; every primitive smolgrad's code calls on a backend is in the contract; each
   derived primitive, run from the required kernels alone, gives the native answer; a
   kernel a library lacks fails only the op that needs it, with a clear error.
2. The primitives that libraries spell or check differently (indexing, scatter, windows,
   0-d reductions, masks, bounds) give NumPy's answers on every device.
3. The same MLP, same weights, same batches, trained with SGD on every available device,
   gives the same losses (float32 tolerance).
"""

from __future__ import annotations

import ast
import pathlib
import sys
import types

import numpy as np
import pytest

import smolgrad as sg
from smolgrad import dtypes as dt
from smolgrad.arrays import get_backend
from smolgrad.arrays.contract import ATTRIBUTES, DERIVED, REQUIRED, Backend, MissingKernel
from smolgrad.arrays.numpy_backend import NumpyBackend

AVAILABLE = [d for d in ("cpu", "mlx", "cuda") if sg.is_available(d)]
SMOLGRAD = pathlib.Path(sg.__file__).parent


def _np(a) -> np.ndarray:
    """A backend array as NumPy (float32 for bfloat16)."""
    for name in AVAILABLE:
        b = get_backend(name)
        if b.is_array(a):
            return b.to_numpy(a)
    return np.asarray(a)


# -- 1. the contract ----------------------------------------------------------------------


def test_every_backend_provides_every_required_kernel(device):
    b = get_backend(device)
    stubs = sorted(n for n in REQUIRED if getattr(getattr(b, n), "required", False))
    assert not stubs, f"backend {b!r} lacks the required kernels {stubs}"
    assert all(callable(getattr(b, n)) for n in DERIVED)
    assert all(hasattr(b, n) for n in ATTRIBUTES)
    assert isinstance(b.lazy, bool) and b.device == device
    assert isinstance(b, Backend)


def test_contract_is_small_and_split_in_two():
    """A few dozen kernels are required; everything else is derived from them once."""
    assert not set(REQUIRED) & set(DERIVED)
    assert 30 <= len(REQUIRED) <= 60, REQUIRED
    for name in REQUIRED + DERIVED:
        doc = getattr(Backend, name).__doc__
        assert doc and doc.strip(), f"Backend.{name} states no contract"


def test_docs_list_the_contract():
    """docs/backends.md, "Writing a backend", names exactly the required and derived sets."""
    import re

    text = (SMOLGRAD.parent / "docs" / "backends.md").read_text()
    section = text[text.index("## Writing a backend"):]
    required = section[section.index("**Required kernels**"):section.index("**Derived")]
    derived = section[section.index("**Derived"):section.index("Override one")]
    table = "\n".join(line for line in required.splitlines() if line.startswith("|"))
    assert set(re.findall(r"`(\w+)`", table)) == set(REQUIRED)
    assert set(re.findall(r"`(\w+)`", derived)) == set(DERIVED)
    assert f"({len(REQUIRED)};" in required and f"({len(DERIVED)};" in derived


def test_cupy_backend_imports_lazily_and_explains_what_is_missing():
    """The module imports without CuPy; constructing the backend says what to install."""
    from smolgrad.arrays import cupy_backend

    assert issubclass(cupy_backend.CupyBackend, NumpyBackend)
    if "cuda" in AVAILABLE:
        pytest.skip("CuPy and a GPU are present")
    with pytest.raises(RuntimeError, match="cuda.*cupy.*NVIDIA GPU"):
        cupy_backend.CupyBackend()
    assert sg.is_available("cuda") is False


# Which names does smolgrad call on a backend? Read from the source (smolgrad/ outside
# smolgrad/arrays): attributes of a backend expression (`x.backend.exp`, `ctx.backend.exp`,
# `get_backend(d).exp`, `b.exp` where b holds a backend), getattr(backend, "exp"), and
# the names that reach a backend through getattr(backend, kernel) with a variable: string
# constants bound to a name containing "kernel" (`kernel = "max"`, `Triangle.apply(x,
# "tril", k)` into forward(ctx, x, kernel, k)) and the steps of `as_view(..., ("reshape",
# shape))`.

def _is_backend(node: ast.AST, names: set) -> bool:
    """`<anything>.backend`, a call of a function whose name ends in "backend", or a name
    known to hold a backend."""
    if isinstance(node, ast.Attribute):
        return node.attr == "backend"
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name.endswith("backend")
    return False


def _assigned_pairs(node: ast.Assign) -> list:
    """(target, value) pairs of an assignment; value None when it cannot be matched."""
    pairs = []
    for target in node.targets:
        if isinstance(target, ast.Tuple):
            values = node.value.elts if (isinstance(node.value, ast.Tuple) and
                                         len(node.value.elts) == len(target.elts)) else None
            pairs += zip(target.elts, values or [None] * len(target.elts))
        else:
            pairs.append((target, node.value))
    return pairs


def _backend_names(func: ast.FunctionDef) -> set:
    """Names holding a backend inside `func`: unannotated parameters named `backend` or
    `b` (not the operand pair `a, b`), loop variables named `backend`, and names assigned
    only from backend expressions."""
    params = [a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs]
    holders = {a.arg for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs
               if a.arg in ("backend", "b") and a.annotation is None}
    if "a" in params:
        holders.discard("b")
    others = set()
    for node in ast.walk(func):
        if isinstance(node, ast.For):  # `for backend, arrays in by_backend.values():`
            targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
            holders |= {t.id for t in targets if getattr(t, "id", "") == "backend"}
        if isinstance(node, ast.Assign):
            for target, value in _assigned_pairs(node):
                if isinstance(target, ast.Name):
                    is_backend = value is not None and _is_backend(value, set())
                    (holders if is_backend else others).add(target.id)
    return holders - others


def _kernel_parameters(tree: ast.Module) -> dict:
    """Callable name -> its parameter names, for the module's functions and, under
    "<Class>.apply", its Function classes' forward (without cls and ctx)."""
    params = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            params[node.name] = [a.arg for a in node.args.args]
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "forward":
                    names = [a.arg for a in item.args.args]
                    params[f"{node.name}.apply"] = [n for n in names if n not in ("cls", "ctx")]
    return params


def _dispatched_names(tree: ast.Module) -> set:
    """String constants that reach getattr(backend, <variable>) (see the comment above)."""
    params = _kernel_parameters(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target, value in _assigned_pairs(node):
                label = getattr(target, "id", getattr(target, "attr", ""))
                if "kernel" in label and isinstance(value, ast.Constant):
                    found.add(value.value)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            callee = func.id
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            callee = f"{func.value.id}.{func.attr}"
        else:
            continue
        bound = list(zip(params.get(callee, []), node.args))
        bound += [(k.arg, k.value) for k in node.keywords]
        for param, arg in bound:
            if param and "kernel" in param and isinstance(arg, ast.Constant):
                found.add(arg.value)
        if callee == "as_view":
            found |= {a.elts[0].value for a in node.args if isinstance(a, ast.Tuple)
                      and a.elts and isinstance(a.elts[0], ast.Constant)}
    return {n for n in found if isinstance(n, str) and n.isidentifier()}


def _uses_in(source: str, where: str, uses: dict) -> None:
    """Add the backend names used in one module's `source` to `uses` (name -> places)."""
    tree = ast.parse(source)
    scopes = [(tree, set())] + [(f, _backend_names(f)) for f in ast.walk(tree)
                                if isinstance(f, ast.FunctionDef)]
    for scope, names in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Attribute) and _is_backend(node.value, names):
                uses.setdefault(node.attr, set()).add(f"{where}:{node.lineno}")
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr"
                    and len(node.args) >= 2 and _is_backend(node.args[0], names)
                    and isinstance(node.args[1], ast.Constant)):
                uses.setdefault(node.args[1].value, set()).add(f"{where}:{node.lineno}")
    for name in _dispatched_names(tree):
        uses.setdefault(name, set()).add(f"{where} (dispatched by name)")


def backend_uses() -> dict:
    """Every name smolgrad's code uses on a backend object -> where ("file:line")."""
    uses: dict = {}
    for path in sorted(SMOLGRAD.rglob("*.py")):
        if "arrays" not in path.relative_to(SMOLGRAD).parts:
            _uses_in(path.read_text(), str(path.relative_to(SMOLGRAD)), uses)
    return uses


def test_the_scan_sees_every_way_of_reaching_a_backend():
    source = """
class Tri(Function):
    kernel = "k_class"
    def forward(ctx, x, kernel, k):
        return getattr(ctx.backend, kernel)(x.array, k) + ctx.backend.k_attr(x)
def f(x, device, items):
    b = x.backend
    b.k_local(getattr(get_backend(device), "k_getattr"))
    for backend, arrays in items:
        backend.k_loop(*arrays)
    log_base, log_kernel = 10.0, "k_tuple"
    Tri.apply(x, "k_apply", 0)
    return as_view(x, x, ("k_step", (2, 3)))
def g(a, b, backend: str):
    a, b = promote(a, b)
    return b.not_a_backend, backend.lower()
"""
    uses: dict = {}
    _uses_in(source, "snippet", uses)
    assert set(uses) == {"k_class", "k_attr", "k_local", "k_getattr", "k_loop", "k_tuple",
                         "k_apply", "k_step"}, sorted(uses)


def test_every_primitive_smolgrad_uses_is_in_the_contract():
    uses = backend_uses()
    for sure in ("exp", "reshape", "matmul", "getitem", "maximum", "tril", "argmax", "any",
                 "transpose", "log10", "logical_xor"):  # the scan sees every kind of use
        assert sure in uses, f"the scan missed {sure!r}"
    contract = set(REQUIRED) | set(DERIVED) | set(ATTRIBUTES)
    outside = {name: sorted(at) for name, at in uses.items() if name not in contract}
    assert not outside, f"used on backends but not in the contract: {outside}"


# Each derived primitive, computed from the required kernels alone ("bare": the device's
# backend class with every derived primitive reset to the contract's derivation and only
# its required kernels bound), must give what the device's native version gives.

F = np.array([[-1.5, -0.5, 0.0, 0.5], [1.5, 2.5, np.nan, np.inf]], np.float32)
G = np.array([[1.0, -np.inf, 2.0, 0.25], [1.5, 0.0, -3.0, np.nan]], np.float32)
FIN = np.array([[-1.5, -0.5, 0.0, 0.5], [1.5, 2.5, -2.0, 3.0]], np.float32)
POS = np.array([0.5, 1.0, 2.0, 80.0], np.float32)
INT = np.array([[0, 3, -2], [4, 0, 1]], np.int64)
CUBE = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11.5
HALVES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 1.2345, -7.77, 3.0],
                  np.float32)
LSE = np.array([[-np.inf, -np.inf, -np.inf], [1000.0, 1000.0, 999.0]], np.float32)
NO_ROWS = np.zeros((0, 3), bool)
INDEX = np.array([[0, 2, 2], [1, 1, 0]])
WINDOWS = np.arange(16, dtype=np.float32).reshape(1, 2, 4, 2, 1)[..., [0, 0]] * 0.5

# name, positional arguments (NumPy arrays become arrays of the backend), keyword arguments
DERIVED_CASES = [
    ("native", (dt.float32,), {}), ("dtype_of", (F,), {}), ("item", (np.float32(2.5),), {}),
    ("contiguous", (CUBE[:, ::2],), {}),
    ("zeros", ((2, 3), dt.float32), {}), ("ones", ((2, 3), dt.int64), {}),
    ("empty", ((2, 3), dt.int32), {}),
    ("eye", (3, 4, dt.float32), {}), ("eye", (2, None, dt.int32), {}),
    ("linspace", (0.0, 1.0, 5, dt.float32), {}), ("linspace", (2.0, 3.0, 1, dt.float32), {}),
    ("linspace", (-1.0, 1.0, 0, dt.float32), {}),
    ("seed", (5,), {}),
    ("not_equal", (F, G), {}), ("greater", (F, G), {}), ("less_equal", (F, 0.5), {}),
    ("greater_equal", (0.0, F), {}), ("logical_xor", (F, G), {}),
    ("logical_xor", (INT, True), {}),
    ("isnan", (F,), {}), ("isinf", (F,), {}), ("isfinite", (F,), {}), ("isfinite", (INT,), {}),
    ("any", (INT,), {"axis": 1}), ("all", (INT,), {"axis": 0, "keepdims": True}),
    ("any", (F,), {}), ("all", (NO_ROWS,), {"axis": 0}), ("any", (NO_ROWS,), {"axis": 0}),
    ("square", (F,), {}), ("log10", (POS,), {}), ("log2", (POS,), {}), ("log1p", (POS,), {}),
    ("expm1", (POS,), {}), ("ceil", (F,), {}), ("clip", (F, -1.0, 1.0), {}),
    ("clip", (F, None, 0.5), {}), ("round", (HALVES,), {}), ("round", (HALVES, 2), {}),
    ("round", (INT,), {}), ("erf", (FIN,), {}), ("outer", (POS, FIN[0]), {}),
    ("mean", (FIN,), {"axis": 1}), ("mean", (INT,), {}),
    ("mean", (FIN,), {"axis": (0, 1), "keepdims": True}),
    ("logsumexp", (LSE, 1), {}), ("logsumexp", (LSE, 1, True), {}), ("logsumexp", (FIN, None), {}),
    ("stack", ([F, G],), {"axis": -1}), ("flip", (F,), {}), ("flip", (F,), {"axis": 1}),
    ("flip", (CUBE,), {"axis": (0, 2)}), ("roll", (F, 1), {"axis": 1}), ("roll", (F, -3), {}),
    ("roll", (CUBE, (1, 5)), {"axis": (0, 2)}),
    ("tril", (CUBE, 0), {}), ("tril", (CUBE, -1), {}), ("triu", (CUBE, 1), {}),
    ("triu", (INT > 0, 0), {}),
    ("pad", (FIN, ((1, 2), (0, 1)), 7.0), {}), ("pad", (INT, ((0, 1), (2, 0)), 0), {}),
    ("take_along_axis", (FIN, INDEX, 1), {}),
    ("scatter_add", (np.zeros((3, 3), np.float32), 0, INDEX, FIN[:, :3]), {}),
    ("nonzero", (INT,), {}),
    ("sliding_windows", (CUBE.transpose(0, 2, 1), (2, 3), (1, 2)), {}),
    ("fold_windows", (WINDOWS, (1, 5, 6), (2, 1), (1, 2)), {}),
]


def _bare(device: str) -> Backend:
    """The device's backend with only its required kernels (see above)."""
    cls = type(get_backend(device))
    body = {name: vars(Backend)[name] for name in DERIVED}
    body["LIBRARY_FUNCTIONS"] = tuple(n for n in cls.LIBRARY_FUNCTIONS if n in REQUIRED)
    return type(f"Bare{cls.__name__}", (cls,), body)()


def _on(b: Backend, value):
    """A case's argument on backend `b`: NumPy arrays converted, lists element by element."""
    if isinstance(value, (np.ndarray, np.generic)):
        return b.asarray(value)
    if isinstance(value, list):
        return [_on(b, v) for v in value]
    return value


def _assert_same(b: Backend, got, ref: Backend, want, name: str) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), name
        for g, w in zip(got, want):
            _assert_same(b, g, ref, w, name)
    elif ref.is_array(want):
        assert b.dtype_of(got) is ref.dtype_of(want), f"{name}: {b.dtype_of(got)}"
        g, w = b.to_numpy(got), ref.to_numpy(want)
        assert g.shape == w.shape, f"{name}: shape {g.shape}, expected {w.shape}"
        if name != "empty":
            np.testing.assert_allclose(g, w, rtol=2e-6, err_msg=name)
    else:
        assert got == want, name


def test_bare_backend_has_only_the_contracts_derivations(device):
    bare = _bare(device)
    assert bare.xp is get_backend(device).xp
    for name in DERIVED:
        assert getattr(type(bare), name) is vars(Backend)[name]
        assert name not in vars(bare) or name in REQUIRED


@pytest.mark.parametrize("case", range(len(DERIVED_CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DERIVED_CASES)])
def test_derived_primitive_matches_the_native_one(device, case):
    name, args, kwargs = DERIVED_CASES[case]
    bare, ref = _bare(device), get_backend(device)
    got = getattr(bare, name)(*[_on(bare, a) for a in args], **kwargs)
    want = getattr(ref, name)(*[_on(ref, a) for a in args], **kwargs)
    _assert_same(bare, got, ref, want, name)


def test_derived_random_draws_match_seed_for_seed(device):
    bare, ref = _bare(device), get_backend(device)
    if device == "cuda":
        pytest.skip("CuPy draws on the GPU, with its own generator")
    for b in (bare, ref):
        b.seed(11)
    for name, args in (("uniform", ((3,), -1.0, 1.0, dt.float32)),
                       ("normal", ((2, 2), 0.5, 2.0, dt.float32)),
                       ("randint", (0, 10, (4,), dt.int64)), ("permutation", (6,))):
        _assert_same(bare, getattr(bare, name)(*args), ref, getattr(ref, name)(*args), name)
    ref.seed(np.random.SeedSequence().entropy % 2**32)  # leave the shared backend unseeded


def test_ops_run_end_to_end_on_a_bare_backend(device):
    """conv2d, max_pool2d, logsumexp, gather, roll, tril: forward and backward on the bare
    backend (tensors moved onto it) equal the native device's."""
    bare = _bare(device)
    rng = np.random.default_rng(0)
    host_x = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)
    host_w = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)
    results = []
    for backend in (get_backend(device), bare):
        x = sg.tensor(host_x, device=device, requires_grad=True)
        w = sg.tensor(host_w, device=device, requires_grad=True)
        x.backend = w.backend = backend  # the leaves live on this backend
        y = sg.nn.functional.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2))
        y = sg.nn.functional.max_pool2d(y, 2, stride=1).roll(1, dims=3)
        flat = y.flatten(2)
        z = flat.logsumexp(2, keepdim=True) + flat.tril(1).gather(2, flat.argsort(2))
        z.sum().backward()
        results.append([t.detach().numpy() for t in (z, x.grad, w.grad)])
    for native, derived in zip(*results):
        np.testing.assert_allclose(derived, native, rtol=1e-5, atol=1e-5)


# A library that lacks a name: the backend still constructs; the derived primitives stand
# in for missing natives; a missing required kernel fails only the op that needs it.


class FakeBackend(NumpyBackend):
    """NumpyBackend over a stand-in library, named so that errors can be told apart."""

    name = "fake"


def _library_without(*names: str) -> types.ModuleType:
    """A stand-in array library: NumPy's namespace less `names`."""
    library = types.ModuleType("fakelib")
    library.__dict__.update({k: v for k, v in vars(np).items()
                             if k not in names and not k.startswith("__")})
    return library


def _on_fake(backend: Backend, *hosts) -> list:
    tensors = [sg.tensor(h, requires_grad=True) for h in hosts]
    for t in tensors:
        t.backend = backend
    return tensors


def test_a_missing_kernel_fails_only_the_op_that_needs_it():
    fake = FakeBackend(_library_without("einsum", "nonzero", "roll", "tril"))  # no error
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    a, c = _on_fake(fake, host, host + 1)
    with pytest.raises(MissingKernel) as info:
        sg.einsum("ij,kj->ik", a, c)
    message = str(info.value)
    assert message.startswith("the fake backend has no 'einsum' kernel (needed by "
                              "Einsum.forward); fakelib has no function of that name")
    assert "FakeBackend.einsum" in message and "docs/backends.md" in message
    assert isinstance(info.value, NotImplementedError) and info.value.kernel_name == "einsum"
    # every other op runs, missing natives replaced by the contract's derivations
    out = (a @ c.T).roll(1, 0).tril()
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), np.tril(np.roll(host @ (host + 1).T, 1, 0)))
    np.testing.assert_array_equal(a.nonzero().numpy(), np.argwhere(host))
    assert a.grad is not None and a.grad.backend is fake


def test_a_missing_kernel_under_a_derived_primitive_names_both():
    fake = FakeBackend(_library_without("concatenate", "roll"))
    (a,) = _on_fake(fake, np.arange(4.0))
    with pytest.raises(MissingKernel, match=r"the fake backend has no 'concatenate' kernel "
                                            r"\(needed by Roll.forward, through 'roll'\)"):
        a.roll(1)
    with pytest.raises(MissingKernel, match=r"'concatenate' kernel \(needed by Cat.forward\)"):
        sg.cat([a, a])
    np.testing.assert_array_equal((a * 2).detach().numpy(), [0.0, 2.0, 4.0, 6.0])


# CupyBackend's own code (bounds checks, the host path of index_add, GPU-side random
# draws) on a machine without a GPU: CuPy's API is NumPy's, so NumPy stands in for it.


class _RandomStateWithDtype:
    """cupy.random.RandomState's draws (which take dtype=) on NumPy's RandomState."""

    def __init__(self, seed=None):
        self.rng = np.random.RandomState(seed)

    def uniform(self, low, high, size, dtype):
        return self.rng.uniform(low, high, size).astype(dtype)

    def normal(self, loc, scale, size, dtype):
        return self.rng.normal(loc, scale, size).astype(dtype)

    def randint(self, low, high, size, dtype):
        return self.rng.randint(low, high, size, dtype=dtype)

    def permutation(self, n):
        return self.rng.permutation(n)


@pytest.fixture
def cupy_on_numpy(monkeypatch) -> Backend:
    """A CupyBackend whose `cupy` is NumPy plus the few names CuPy adds."""
    cupy = _library_without()
    cupy.__name__, cupy.__version__ = "cupy", "0-numpy-stand-in"
    cupy.asnumpy = np.asarray
    cupy.random = types.SimpleNamespace(RandomState=_RandomStateWithDtype)
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    special = types.ModuleType("cupyx.scipy.special")
    special.erf = np.vectorize(__import__("math").erf, otypes=[np.float64])
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = special
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy, cupyx.scatter_add = scipy, np.add.at
    for name, module in (("cupy", cupy), ("cupyx", cupyx), ("cupyx.scipy", scipy),
                         ("cupyx.scipy.special", special)):
        monkeypatch.setitem(sys.modules, name, module)
    from smolgrad.arrays.cupy_backend import CupyBackend

    return CupyBackend()


def test_cupy_backend_logic_on_a_numpy_stand_in(cupy_on_numpy):
    b, ref = cupy_on_numpy, get_backend("cpu")
    assert not [n for n in REQUIRED if getattr(getattr(b, n), "required", False)]
    x = b.asarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 4"):
        b.getitem(x, (slice(None), b.asarray(np.array([0, 4]))))
    with pytest.raises(IndexError, match="gather: index out of bounds"):
        b.take_along_axis(x, b.asarray(np.array([[0], [5], [1]])), 1)
    for d in (dt.int64, dt.float32):  # int64: CUDA has no atomicAdd, the host path
        out = b.index_add(b.zeros((4,), d), (b.asarray(np.array([1, 1, 3])),),
                          b.asarray([2, 3, 4], d))
        assert b.dtype_of(out) is d
        np.testing.assert_array_equal(out, [0, 5, 0, 4])
    got = b.scatter_add(b.zeros((3, 3), dt.float32), 0, b.asarray(INDEX), b.asarray(FIN[:, :3]))
    want = ref.scatter_add(ref.zeros((3, 3), dt.float32), 0, INDEX, FIN[:, :3])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(b.erf(b.asarray(FIN)), ref.erf(FIN), rtol=1e-6)
    assert b.sum(b.asarray(np.float32(3.0)), axis=0) == 3.0  # lenient 0-d axis
    b.seed(3)
    first = b.normal((4,), 0.0, 1.0, dt.float16)
    b.seed(3)
    np.testing.assert_array_equal(b.normal((4,), 0.0, 1.0, dt.float16), first)
    assert b.dtype_of(first) is dt.float16 and b.dtype_of(b.permutation(5)) is dt.int64


# -- 2. primitives that libraries spell or check differently ------------------------------


def test_dtype_round_trip(device):
    b = get_backend(device)
    for d in (dt.bool_, dt.int32, dt.int64, dt.float16, dt.float32, dt.float64,
              dt.bfloat16):
        if (d is dt.bfloat16 and not b.has_bfloat16) or (d is dt.float64 and not b.has_float64):
            with pytest.raises(TypeError, match=device):
                b.native(d)
            continue
        a = b.asarray([0, 1, 2], d)
        assert b.dtype_of(a) is d
        assert sg.tensor([1, 0], dtype=d, device=device).dtype is d


def test_asarray_keeps_numpy_dtypes_and_copies(device):
    b = get_backend(device)
    host = np.array([1.5, 2.5])
    a = b.asarray(host)
    if b.has_float64:
        assert b.dtype_of(a) is dt.float64
    assert b.dtype_of(b.asarray(np.arange(3))) is dt.int64
    assert b.dtype_of(b.asarray(np.zeros((0, 3), bool))) is dt.bool_
    assert _np(b.all(b.asarray(np.zeros((0, 3), bool)))) == np.True_  # empty: all() is True


def test_setitem_and_index_add_return_new_arrays(device):
    b = get_backend(device)
    x = b.asarray(np.zeros((3, 4), np.float32))
    idx = b.asarray(np.array([0, 2, 0]))
    y = b.setitem(x, (idx, slice(1, 3)), 5.0)
    z = b.index_add(x, (idx,), b.asarray(np.ones((3, 4), np.float32)))
    assert not _np(x).any(), "the input array was mutated"
    expected = np.zeros((3, 4), np.float32)
    expected[[0, 2, 0], 1:3] = 5.0
    np.testing.assert_array_equal(_np(y), expected)
    np.testing.assert_array_equal(_np(z)[:, 0], [2.0, 0.0, 1.0])  # repeats accumulate


def test_index_add_for_every_dtype(device):
    b = get_backend(device)
    for d in (dt.int32, dt.int64, dt.float32):
        x = b.zeros((4,), d)
        out = b.index_add(x, (b.asarray(np.array([1, 1, 3])),), b.asarray([2, 3, 4], d))
        np.testing.assert_array_equal(_np(out), [0, 5, 0, 4])


def test_bool_masks_and_mixed_advanced_indexing(device):
    host = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = sg.tensor(host, device=device)
    mask = host > 10
    np.testing.assert_array_equal(x[sg.tensor(mask, device=device)].numpy(), host[mask])
    rows = sg.tensor([0, 2], device=device)
    np.testing.assert_array_equal(x[:, rows, 1:].numpy(), host[:, [0, 2], 1:])
    np.testing.assert_array_equal(x[1, ..., sg.tensor([-1, 0], device=device)].numpy(),
                                  host[1, ..., [-1, 0]])
    y = x.clone()
    y[sg.tensor(mask, device=device)] = 0.0
    np.testing.assert_array_equal(y.numpy(), np.where(mask, 0, host))


def test_out_of_bounds_indices_raise(device):
    """NumPy raises; MLX would read past the end and CuPy would wrap: all must raise."""
    x = sg.zeros(2, 3, device=device)
    with pytest.raises(IndexError, match="out of bounds"):
        x[2]
    with pytest.raises(IndexError, match="out of bounds"):
        x[-3]
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, sg.tensor([0, 3], device=device)]
    with pytest.raises(IndexError, match="out of bounds"):
        x.gather(1, sg.tensor([[0, 5]], device=device))


def test_scatter_add_and_gather_match_numpy(device):
    b = get_backend(device)
    index = np.array([[0, 2, 2], [1, 1, 0]])
    src = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = b.scatter_add(b.zeros((3, 3), dt.float32), 0, b.asarray(index), b.asarray(src))
    expected = np.zeros((3, 3), np.float32)
    for i in range(2):
        for j in range(3):
            expected[index[i, j], j] += src[i, j]
    np.testing.assert_array_equal(_np(out), expected)
    got = b.take_along_axis(b.asarray(expected), b.asarray(index), 0)
    np.testing.assert_array_equal(_np(got), np.take_along_axis(expected, index, 0))


def test_sliding_windows_match_numpy(device):
    b = get_backend(device)
    host = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    x = b.transpose(b.asarray(host), (0, 2, 1))  # a non-contiguous input
    got = b.sliding_windows(x, (2, 3), (1, 2))
    want = np.lib.stride_tricks.sliding_window_view(host.transpose(0, 2, 1), (2, 3),
                                                    axis=(1, 2))
    np.testing.assert_array_equal(_np(got), want)


def test_reductions_of_0d_arrays_and_index_dtypes(device):
    """NumPy lets axis 0 mean "everything" on a 0-d array; arg-reductions give int64."""
    b = get_backend(device)
    s = b.asarray(np.float32(3.0))
    for name in ("sum", "prod", "max", "min", "any", "all"):
        assert _np(getattr(b, name)(s, axis=0)) == _np(getattr(np, name)(np.float32(3.0)))
    np.testing.assert_array_equal(_np(b.cumsum(s, axis=0)), [3.0])
    m = b.asarray(np.array([[1.0, 5.0, 2.0]], np.float32))
    assert b.dtype_of(b.argmax(m, axis=1)) is dt.int64
    assert b.dtype_of(b.argmin(m, axis=1)) is dt.int64
    np.testing.assert_array_equal(_np(b.argmax(m, axis=1)), [1])


def test_logsumexp_nonzero_xor_erf_round_int_matmul(device):
    b = get_backend(device)
    x = b.asarray(np.array([[-np.inf, -np.inf], [1000.0, 1000.0]], np.float32))
    np.testing.assert_allclose(_np(b.logsumexp(x, 1)), [-np.inf, 1000 + np.log(2)], rtol=1e-6)
    nz = b.nonzero(b.asarray(np.array([[0, 3], [4, 0]])))
    assert [_np(i).tolist() for i in nz] == [[0, 1], [1, 0]]
    t, f = b.asarray(np.array([True, False])), b.asarray(np.array([True, True]))
    np.testing.assert_array_equal(_np(b.logical_xor(t, f)), [False, True])
    v = b.asarray(np.array([-1.0, 0.3, 2.0], np.float32))
    np.testing.assert_allclose(_np(b.erf(v)), [-0.8427008, 0.3286268, 0.9953223], rtol=1e-5)
    np.testing.assert_array_equal(_np(b.round(b.asarray(np.array([0.5, 1.5, 2.5])))),
                                  [0.0, 2.0, 2.0])  # half to even, as NumPy and PyTorch
    ai = np.array([[1, 2], [3, 4]], np.int64)
    np.testing.assert_array_equal(_np(b.matmul(b.asarray(ai), b.asarray(ai))), ai @ ai)
    np.testing.assert_array_equal(_np(b.matmul(b.asarray(ai[0]), b.asarray(ai))), ai[0] @ ai)


def test_same_seed_same_numbers(device):
    sg.manual_seed(123)
    a = sg.randn(5, device=device).numpy()
    sg.manual_seed(123)
    b = sg.randn(5, device=device).numpy()
    np.testing.assert_array_equal(a, b)
    if device == "mlx":  # documented: MLX draws with NumPy's generator, like cpu
        sg.manual_seed(123)
        np.testing.assert_array_equal(sg.randn(5).numpy(), a)


# -- 3. the same training on every backend ------------------------------------------------


def _train_mlp(device: str, steps: int = 10) -> tuple:
    """A 2-layer MLP trained with plain SGD written in tensor ops; returns (losses, W1)."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.5, (4, 16)).astype(np.float32)
    b1 = np.zeros(16, np.float32)
    w2 = rng.normal(0, 0.5, (16, 3)).astype(np.float32)
    b2 = np.zeros(3, np.float32)
    params = [sg.tensor(p, device=device, requires_grad=True) for p in (w1, b1, w2, b2)]
    losses = []
    for _ in range(steps):
        xb = sg.tensor(rng.normal(size=(8, 4)).astype(np.float32), device=device)
        yb = sg.tensor(rng.integers(0, 3, 8), device=device)
        h = (xb @ params[0] + params[1]).relu()
        logits = h @ params[2] + params[3]
        logp = logits.log_softmax(dim=1)
        loss = -logp.gather(1, yb.unsqueeze(1)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with sg.no_grad():
            for p in params:
                p -= 0.1 * p.grad
        losses.append(loss.item())
    return np.array(losses), params[0].detach().numpy()


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs two backends")
def test_same_mlp_same_losses_on_every_backend():
    ref_losses, ref_w1 = _train_mlp("cpu")
    assert ref_losses[-1] < ref_losses[0], "the reference run did not learn"
    for device in AVAILABLE[1:]:
        losses, w1 = _train_mlp(device)
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6,
                                   err_msg=f"losses on {device}")
        np.testing.assert_allclose(w1, ref_w1, rtol=1e-4, atol=1e-5,
                                   err_msg=f"weights on {device}")


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs two backends")
def test_same_nn_model_same_losses_on_every_backend():
    """nn.Linear + F.cross_entropy + optim.SGD(momentum): one state dict, every backend."""
    from smolgrad import nn, optim
    from smolgrad.nn import functional as F

    sg.manual_seed(0)
    state = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).state_dict()
    data = np.random.default_rng(3)
    batches = [(data.normal(size=(6, 5)).astype(np.float32), data.integers(0, 2, 6))
               for _ in range(10)]
    runs = {}
    for device in AVAILABLE:
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).to(device)
        model.load_state_dict(state)
        opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        losses = []
        for x, y in batches:
            loss = F.cross_entropy(model(sg.tensor(x, device=device)),
                                   sg.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs[device] = losses
    for device, losses in runs.items():
        np.testing.assert_allclose(losses, runs["cpu"], rtol=1e-5, atol=1e-6,
                                   err_msg=f"losses on {device}")


# -- MLX laziness -------------------------------------------------------------------------


@pytest.mark.skipif("mlx" not in AVAILABLE, reason="needs MLX")
def test_mlx_is_evaluated_after_backward_and_after_each_step(monkeypatch):
    """MLX only records work until something asks for numbers. smolgrad asks after each
    backward (the gradients) and each optimizer step (parameters and optimizer state), so
    a training loop's pending graph never outgrows one step."""
    from smolgrad import nn, optim
    from smolgrad.nn import functional as F

    backend = get_backend("mlx")
    assert backend.lazy is True
    evaluated = []
    real_eval = backend.eval

    def recording_eval(*arrays):
        evaluated.append(arrays)
        real_eval(*arrays)

    monkeypatch.setattr(backend, "eval", recording_eval)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to("mlx")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = F.cross_entropy(model(sg.randn(5, 4, device="mlx")),
                           sg.randint(0, 3, (5,), device="mlx"))
    loss.backward()
    grads = {id(p.grad.array) for p in model.parameters()}
    assert len(evaluated) == 1 and grads <= {id(a) for a in evaluated[0]}
    opt.step()
    params = {id(p.array) for p in model.parameters()}
    assert len(evaluated) == 2 and params <= {id(a) for a in evaluated[1]}
    momentum = [v for st in opt.state.values() for v in st.values() if isinstance(v, sg.Tensor)]
    assert momentum and {id(v.array) for v in momentum} <= {id(a) for a in evaluated[1]}


@pytest.mark.skipif("mlx" not in AVAILABLE, reason="needs MLX")
@pytest.mark.parametrize("norm", ["BatchNorm1d", "functional"])
def test_mlx_memory_stays_flat_with_running_statistics(norm):
    """State updated in the forward pass (BatchNorm's running mean/var) must be evaluated
    too: otherwise each step's graph, holding that step's input batch, stays attached to
    the buffers and memory grows by one batch per step."""
    import mlx.core as mx

    from smolgrad import nn, optim
    from smolgrad.nn import functional as F

    if norm == "BatchNorm1d":
        model = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(),
                              nn.Linear(64, 4)).to("mlx")
        forward = model
    else:
        model = nn.Sequential(nn.Linear(128, 64), nn.Linear(64, 4)).to("mlx")
        stats = (sg.zeros(64, device="mlx"), sg.ones(64, device="mlx"))

        def forward(x):
            h = F.batch_norm(model[0](x), *stats, training=True)
            return model[1](h.relu())

    opt = optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)

    def step():
        x = sg.tensor(rng.normal(size=(256, 128)).astype(np.float32), device="mlx")
        loss = F.cross_entropy(forward(x), sg.randint(0, 4, (256,), device="mlx"))
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    mx.clear_cache()
    before = mx.get_active_memory()
    for _ in range(20):
        step()
    mx.clear_cache()
    grown = mx.get_active_memory() - before
    batch = 256 * 128 * 4
    assert grown < 3 * batch, f"active memory grew by {grown} bytes over 20 steps"
