"""The op registry (smolgrad/registry.py): what `register(...)` records and what is derived
from it - the package exports, the in-place variants, the committed type stubs."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import smolgrad as sg
from smolgrad import registry

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Every public name of `smolgrad` before the exports came from the registry (dir(smolgrad),
# captured then): the package must keep exporting all of them.
EXPORTED_BEFORE = """
BFloat16Tensor BoolTensor ByteTensor CharTensor DoubleTensor FloatTensor Generator HalfTensor
IntTensor LongTensor ShortTensor Size Tensor abs accelerator add all allclose amax amin amp any
arange are_deterministic_algorithms_enabled argmax argmin argsort arrays as_tensor autocast
autograd backends bfloat16 bincount bmm bool broadcast_shapes broadcast_tensors broadcast_to
cast cat ceil chunk clamp clamp_max clamp_min clip clone compat compile concat concatenate cos
count_nonzero cuda cumsum device distributed div divide dot double dtype dtypes einsum empty
empty_like enable_grad engine eq equal erf exp expand expm1 eye finfo flatten flip float
float16 float32 float64 floor floor_divide from_numpy full full_like gather ge
get_default_device get_default_dtype get_float32_matmul_precision get_num_interop_threads
get_num_threads gt half histc histogram hstack iinfo index_add index_select inference_mode
install_as_torch int int32 int64 io is_available is_deterministic_algorithms_warn_only_enabled
is_grad_enabled is_tensor isclose isfinite isinf isnan le lerp linspace load log log10 log1p
log2 log_softmax logical_and logical_not logical_or logical_xor logsumexp long lt manual_seed
masked_fill masked_select matmul max maximum mean min minimum mm movedim mul multinomial
multiply mv narrow ne neg negative nn no_grad nonzero norm ones ones_like onnx ops optim outer
pad permute pow prod promote_types rand rand_like randint randn randn_like random randperm
reciprocal relu remainder repeat_interleave reshape roll round rsqrt save scatter_add
serialization set_default_device set_default_dtype set_float32_matmul_precision
set_grad_enabled set_num_interop_threads set_num_threads set_printoptions sigmoid sign sin
softmax sort split sqrt square squeeze stack std std_mean sub subtract sum swapaxes t
take_along_dim tanh tensor tensor_split to topk torch_alias transpose tril triu unbind
unflatten unique unsqueeze use_deterministic_algorithms utils var var_mean viz vstack where
zeros zeros_like
""".split()

# The in-place methods of the hand-written table that the registry flags replaced.
INPLACE_BEFORE = """
add_ __iadd__ sub_ __isub__ mul_ __imul__ div_ __itruediv__ pow_ __ipow__ clamp_ clip_
masked_fill_ neg_ exp_ log_ sqrt_ tanh_ sigmoid_ relu_ abs_ lerp_ clamp_min_ clamp_max_
floor_ round_
""".split()


# ---------------------------------------------------------------------------------------
# Package exports
# ---------------------------------------------------------------------------------------


def test_all_keeps_every_name_exported_before():
    missing = sorted(set(EXPORTED_BEFORE) - set(sg.__all__))
    assert not missing, f"smolgrad.__all__ lost {missing}"
    for name in sg.__all__:
        assert hasattr(sg, name), name


def test_star_import_gives_the_same_names():
    namespace: dict = {}
    exec("from smolgrad import *", namespace)
    assert set(EXPORTED_BEFORE) <= set(namespace)


def test_registered_functions_are_the_package_functions():
    exports = registry.exports()
    assert {"exp", "sum", "matmul", "where", "einsum", "var_mean", "cast"} <= set(exports)
    for name, fn in exports.items():
        assert getattr(sg, name) is fn, name
    assert sg.subtract is sg.sub and sg.multiply is sg.mul and sg.divide is sg.div
    assert sg.clip is sg.clamp and sg.negative is sg.neg


def _defined_in_ops(obj) -> bool:
    """Is obj (a function, or an instance such as sg.FloatTensor) defined in smolgrad/ops/?"""
    return not isinstance(obj, types.ModuleType) and str(
        getattr(obj, "__module__", "")).startswith("smolgrad.ops.")


def test_top_level_ops_are_exactly_the_registered_functions():
    """Every top-level name whose object lives in smolgrad/ops/ comes from the registry,
    and the registry exports nothing else: the rest of `__all__` (modules, classes, dtypes,
    grad mode, io, compat) is defined outside the ops."""
    from_ops = {name for name in sg.__all__ if _defined_in_ops(getattr(sg, name))}
    assert from_ops == set(registry.exports())
    assert {"zeros", "cat", "concatenate", "reshape", "clone", "unique", "FloatTensor",
            "set_printoptions"} <= from_ops


def test_init_imports_no_name_from_an_ops_module():
    """smolgrad/__init__.py takes the ops' functions from the registry: no
    `from .ops.<family> import ...` (nor `from .ops import <family-member>`) is left."""
    tree = ast.parse((ROOT / "smolgrad" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names = [a.name for a in node.names]
            assert node.module != "ops" and not node.module.startswith("ops."), (
                f"smolgrad/__init__.py line {node.lineno} imports {names} from "
                f".{node.module}: register them with function=True instead")


# SPEC §3's op lists, as written there ("clamp/clip" is two names).
SPEC_OPS = """
multinomial histogram histc unique log10 log2 nelement new_zeros new_ones new_full new_empty
new_tensor type LongTensor FloatTensor DoubleTensor HalfTensor BFloat16Tensor IntTensor
BoolTensor
neg abs sign exp log log1p expm1 sqrt rsqrt sin cos tanh sigmoid relu erf pow reciprocal
clamp clip floor ceil round maximum minimum where masked_fill lerp
sum mean prod max min amax amin argmax argmin var std logsumexp cumsum softmax log_softmax
norm all any
reshape view flatten unflatten squeeze unsqueeze permute transpose expand broadcast_to repeat
flip roll tril triu contiguous cat concatenate stack split chunk unbind gather scatter_add
index_select take_along_dim
matmul einsum outer
""".split()  # and pad, which torch has as torch.nn.functional.pad only (test_ops_movement)


@pytest.mark.parametrize("name", SPEC_OPS)
def test_spec_op_has_the_forms_torch_has(name):
    """SPEC §3: "method and function forms": sg.<name> where torch.<name> exists,
    Tensor.<name> where torch.Tensor.<name> does."""
    as_function, as_method = hasattr(torch, name), hasattr(torch.Tensor, name)
    assert as_function or as_method, f"torch has no {name}: a typo in SPEC_OPS"
    if as_function:
        assert callable(getattr(sg, name, None)), f"sg.{name} is missing (torch.{name} exists)"
    if as_method:
        assert hasattr(sg.Tensor, name), f"Tensor.{name} is missing (torch.Tensor has it)"


THROWAWAY_OP = """
from smolgrad.engine import register


@register("frobnicate", function=True)
def frobnicate(input):
    \"\"\"input + 1\"\"\"
    return input + 1


@register(function=("frob_zeros", "frob_zeros_alias"))
def frob_zeros(n: int):
    import smolgrad
    return smolgrad.zeros(n)
"""

ADD_AN_OP = """
import importlib.util, sys
import smolgrad
from smolgrad import registry

# a new family module in smolgrad/ops/, imported before the package reads the registry
spec = importlib.util.spec_from_file_location("smolgrad.ops.throwaway", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
importlib.reload(smolgrad)  # the package body runs again, as at a fresh import

assert smolgrad.frobnicate is module.frobnicate, "function=True: no top-level function"
assert smolgrad.frob_zeros is smolgrad.frob_zeros_alias is module.frob_zeros
assert {"frobnicate", "frob_zeros", "frob_zeros_alias"} <= set(smolgrad.__all__)
assert smolgrad.frobnicate(smolgrad.ones(2)).tolist() == [2.0, 2.0]
assert smolgrad.ones(2).frobnicate().tolist() == [2.0, 2.0]
assert not hasattr(smolgrad.Tensor, "frob_zeros")  # top-level only
tensor_stub, package_stub = registry.tensor_stub(smolgrad.Tensor), registry.package_stub(smolgrad)
assert "    # smolgrad.ops.throwaway\\n    def frobnicate(self):" in tensor_stub, tensor_stub
assert "from .ops.throwaway import frob_zeros as frob_zeros_alias" in package_stub
print("ok")
"""


def test_an_op_registered_in_a_new_module_becomes_top_level(tmp_path):
    """Adding an op touches its ops file only: `register(..., function=...)` there makes it
    sg.<name>, lists it in __all__ and in the generated stubs (run in a fresh interpreter,
    so that this process's package stays as it is)."""
    op_file = tmp_path / "throwaway.py"
    op_file.write_text(THROWAWAY_OP)
    result = subprocess.run([sys.executable, "-c", ADD_AN_OP, str(op_file)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_where_function_and_method_are_different_registrations():
    cond = sg.tensor([True, False])
    a, b = sg.tensor([1.0, 2.0]), sg.tensor([3.0, 4.0])
    np.testing.assert_array_equal(sg.where(cond, a, b).numpy(), [1.0, 4.0])
    np.testing.assert_array_equal(a.where(cond, b).numpy(), [1.0, 4.0])


def test_no_name_is_registered_twice():
    seen: dict = {}
    for op in registry.OPS:
        for name in op.methods + op.inplace:
            assert name not in seen, (f"Tensor.{name} registered by {seen[name]} and by "
                                      f"{op.family}.{op.fn.__name__}")
            seen[name] = f"{op.family}.{op.fn.__name__}"


def test_every_registration_names_its_family():
    families = {op.family for op in registry.OPS}
    assert {"elementwise", "reduce", "linalg", "movement"} <= families
    exp = next(op for op in registry.OPS if "exp" in op.methods)
    assert (exp.family, exp.functions, exp.inplace) == ("elementwise", ("exp",), ("exp_",))


def test_registry_imports_nothing_from_smolgrad():
    """registry.py sits below the engine: it may import the standard library only."""
    tree = ast.parse((ROOT / "smolgrad" / "registry.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module.split(".")[0] in sys.stdlib_module_names, \
                node.module
        elif isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in sys.stdlib_module_names for a in node.names)


# ---------------------------------------------------------------------------------------
# register's arguments
# ---------------------------------------------------------------------------------------


def _op(input):
    return input


def test_record_derives_function_and_inplace_names(monkeypatch):
    monkeypatch.setattr(registry, "OPS", [])
    pairs = registry.record(_op, ("frob", "frobnicate", "__add__"), True, True)
    assert [n for n, _ in pairs] == ["frob", "frobnicate", "__add__", "frob_", "frobnicate_",
                                     "__iadd__"]
    (op,) = registry.OPS
    assert op.functions == ("frob", "frobnicate")
    assert op.inplace == ("frob_", "frobnicate_", "__iadd__")
    assert op.family == "test_registry"
    assert registry.exports() == {"frob": _op, "frobnicate": _op}


def frobnicate(input):
    return input


def test_record_function_only_uses_its_own_name(monkeypatch):
    monkeypatch.setattr(registry, "OPS", [])
    assert registry.record(frobnicate, (), True, False) == []  # nothing to attach
    assert registry.exports() == {"frobnicate": frobnicate}


@pytest.mark.parametrize("names, function, inplace, message", [
    ((), False, False, "give the Tensor attribute names"),
    (("__neg__",), False, True, "inplace=True needs a plain name"),
    (("",), False, False, "non-empty strings"),
    (("__radd__",), True, False, "top-level names must be public"),
    (("frob",), ("_frob",), False, "top-level names must be public"),
    ((), (), False, "function= takes True, False or a tuple"),
    (("frob",), "frob", False, "function= takes True, False or a tuple"),
    (("frob",), ("frob", ""), False, "function= takes True, False or a tuple"),
])
def test_record_rejects_what_it_cannot_name(monkeypatch, names, function, inplace, message):
    monkeypatch.setattr(registry, "OPS", [])
    with pytest.raises(TypeError, match=message):
        registry.record(_op, names, function, inplace)
    assert registry.OPS == []


def test_record_function_names_given_as_a_tuple(monkeypatch):
    """function=(names): top-level under exactly those, whatever the Tensor names."""
    monkeypatch.setattr(registry, "OPS", [])
    pairs = registry.record(_op, ("frob", "frobnicate"), ("frob",), False)
    assert [n for n, _ in pairs] == ["frob", "frobnicate"]
    registry.record(frobnicate, (), ("frobnicate", "frobnicate_alias"), False)
    assert registry.exports() == {"frob": _op, "frobnicate": frobnicate,
                                  "frobnicate_alias": frobnicate}


def test_two_ops_exporting_one_name_is_an_error(monkeypatch):
    def other(input):
        return input

    monkeypatch.setattr(registry, "OPS", [])
    registry.record(_op, ("frob",), True, False)
    registry.record(other, ("frob2",), True, False)
    registry.OPS.append(registry.Op(other, "x", (), ("frob",), ()))
    with pytest.raises(RuntimeError, match="two ops export the name 'frob'"):
        registry.exports()


# ---------------------------------------------------------------------------------------
# In-place variants
# ---------------------------------------------------------------------------------------


def test_every_inplace_method_of_the_old_table_exists():
    for name in INPLACE_BEFORE:
        assert callable(getattr(sg.Tensor, name, None)), name


@pytest.mark.parametrize("name, args", [
    ("add_", (2.0,)), ("subtract_", (0.5,)), ("multiply_", (3.0,)), ("divide_", (4.0,)),
    ("true_divide_", (2.0,)), ("negative_", ()), ("exp_", ()), ("clip_", (-0.5, 0.5)),
])
def test_inplace_matches_torch(name, args, device):
    values = np.array([[-1.5, 0.25], [0.75, 2.0]], np.float32)
    x, tx = sg.tensor(values, device=device), torch.tensor(values)
    version = x._version
    out = getattr(x, name)(*args)
    getattr(tx, name)(*args)
    assert out is x and x._version == version + 1
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-6)


def test_augmented_assignment_is_the_inplace_variant(device):
    x = sg.ones(2, 3, device=device)
    x += 1
    x -= sg.ones(3, device=device)
    x *= 4
    x /= 2
    x **= 2
    np.testing.assert_array_equal(x.numpy(), np.full((2, 3), 4.0))
    with pytest.raises(RuntimeError, match=r"add_: the result of shape .*2, 3.* doesn't match"):
        y = sg.ones(3, device=device)
        y += sg.ones(2, 3, device=device)


def test_inplace_signature_and_name():
    import inspect

    assert sg.Tensor.__iadd__ is sg.Tensor.add_  # one method object per op
    assert sg.Tensor.add_.__name__ == "add_"
    assert str(inspect.signature(sg.Tensor.add_)) == \
        "(input, other, *, alpha=1) -> 'Tensor'"


# ---------------------------------------------------------------------------------------
# Type stubs
# ---------------------------------------------------------------------------------------

STUBS = {"_tensor_methods.pyi": lambda: registry.tensor_stub(sg.Tensor),
         "__init__.pyi": lambda: registry.package_stub(sg)}


@pytest.mark.parametrize("name", sorted(STUBS))
def test_committed_stub_is_current(name):
    path = ROOT / "smolgrad" / name
    assert path.exists(), f"{path} is missing; run {registry.STUB_COMMAND}"
    assert path.read_text() == STUBS[name](), (
        f"smolgrad/{name} is out of date with the op registry; run {registry.STUB_COMMAND}")


def test_tensor_stub_lists_every_registered_method():
    stub = registry.tensor_stub(sg.Tensor)
    for op in registry.OPS:
        for name in op.methods + op.inplace:
            if name.startswith("_") and not name.endswith("__"):
                continue  # private helpers (`_inplace`) are no part of the API
            assert f"    def {name}(" in stub or f"    def {name}(self" in stub, name
    assert "    def exp(self) -> Tensor: ..." in stub
    assert "    def add_(self, other, *, alpha=...) -> Tensor: ..." in stub
    assert "backward" not in stub  # written in engine.Tensor's body: the checker reads it


def test_package_stub_imports_each_name_from_its_home():
    stub = registry.package_stub(sg)
    assert "from .ops.elementwise import exp as exp" in stub
    assert "from .ops.elementwise import sub as subtract" in stub
    assert "from .dtypes import float16 as half" in stub
    assert "from . import nn as nn" in stub


def test_stub_generator_check_mode(tmp_path, monkeypatch):
    """tools/gen_stubs.py --check: 0 when current, 1 (and no writing) when stale."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_stubs
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert gen_stubs.main(["--check"]) == 0
    stale = tmp_path / "_tensor_methods.pyi"
    stale.write_text("stale\n")
    monkeypatch.setattr(gen_stubs, "stubs", lambda: {stale: "fresh\n"})
    assert gen_stubs.main(["--check"]) == 1
    assert stale.read_text() == "stale\n"
    assert gen_stubs.main([]) == 0
    assert stale.read_text() == "fresh\n"
