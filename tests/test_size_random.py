"""sg.Size (the type of Tensor.shape), the default generator and torch.random's functions,
and small top-level names (is_floating_point, is_complex, numel, is_nonzero), against
PyTorch."""

import json
import pickle
import subprocess
import sys

import pytest
import torch

import smolgrad as sg


def _raises(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return type(e)
    return None


# -- Size ------------------------------------------------------------------------------------
def test_shape_and_size_are_sizes_that_print_as_pytorch(device):
    x, tx = sg.zeros(2, 3, device=device), torch.zeros(2, 3)
    for ours, theirs in ((x.shape, tx.shape), (x.size(), tx.size()), (x[0].shape, tx[0].shape),
                         (sg.zeros((), device=device).shape, torch.zeros(()).shape)):
        assert isinstance(ours, sg.Size)
        assert repr(ours) == repr(theirs) and str(ours) == str(theirs)
        assert f"{ours}" == f"{theirs}" and ours.numel() == theirs.numel()


def test_size_is_a_tuple_as_in_pytorch():
    ours, theirs = sg.zeros(2, 3, 4).shape, torch.zeros(2, 3, 4).shape
    assert ours == (2, 3, 4) and len(ours) == 3 and hash(ours) == hash((2, 3, 4))
    assert (ours == [2, 3, 4]) == (theirs == [2, 3, 4])
    b, t, c = ours
    assert (b, t, c) == (2, 3, 4) and ours[-1] == 4 and type(ours[0]) is int
    for make in (lambda s: s[1:], lambda s: s + (5,), lambda s: (1,) + s, lambda s: s * 2,
                 lambda s: 2 * s[:1]):
        assert type(make(ours)) is sg.Size and type(make(theirs)) is torch.Size
        assert repr(make(ours)) == repr(make(theirs))
    assert _raises(lambda: ours + [5]) is _raises(lambda: theirs + [5]) is TypeError
    assert json.dumps(ours) == json.dumps(theirs)
    again = pickle.loads(pickle.dumps(ours))
    assert type(again) is sg.Size and again == ours


def test_size_construction_checks_its_items():
    assert sg.Size([sg.tensor(2), 3]) == torch.Size([torch.tensor(2), 3])
    for bad in ([2.5], 3, "ab"):
        ours, theirs = _raises(lambda b=bad: sg.Size(b)), _raises(lambda b=bad: torch.Size(b))
        assert ours is theirs is TypeError
    with pytest.raises(TypeError, match=r"Size\(\) takes an iterable of 'int' \(item 0 is "):
        sg.Size([2.5])


def test_a_size_is_accepted_wherever_a_shape_is(device):
    x = sg.arange(6.0, device=device).reshape(2, 3)
    s = x.shape
    for made in (x.view(s), x.reshape(*s), x.reshape(s), sg.zeros(s, device=device),
                 sg.ones(sg.Size([2, 3]), device=device), x.expand(s), sg.randn(s),
                 sg.full(s, 1.0)):
        assert made.shape == (2, 3)
    assert x.view(s[::-1]).shape == (3, 2)


# -- seeding and the default generator ----------------------------------------------------
def test_manual_seed_returns_the_default_generator():
    ours, theirs = sg.manual_seed(5), torch.manual_seed(5)
    assert ours is sg.default_generator and theirs is torch.default_generator
    assert isinstance(ours, sg.Generator)
    assert ours.initial_seed() == sg.initial_seed() == theirs.initial_seed() == 5
    assert repr(ours).startswith("<torch._C.Generator object at 0x") and repr(ours) == repr(
        theirs).replace(hex(id(theirs)), hex(id(ours)))


@pytest.mark.parametrize("seed", [0, -1, 2**64 - 1, 3.7, "12"])
def test_seeds_wrap_and_convert_as_pytorch(seed):
    assert sg.manual_seed(seed).initial_seed() == torch.manual_seed(seed).initial_seed()


@pytest.mark.parametrize("seed", [2**64, -2**63 - 1])
def test_seed_out_of_range(seed):
    assert _raises(lambda: sg.manual_seed(seed)) is _raises(lambda: torch.manual_seed(seed))
    with pytest.raises(ValueError, match="manual_seed: seed .* out of range"):
        sg.manual_seed(seed)


def test_same_seed_same_draws(device):
    sg.manual_seed(3)
    first = (sg.rand(4, device=device).tolist(), sg.randn(2, device=device).tolist())
    sg.manual_seed(3)
    assert (sg.rand(4, device=device).tolist(), sg.randn(2, device=device).tolist()) == first


def test_seed_and_initial_seed():
    chosen = sg.seed()
    assert isinstance(chosen, int) and chosen == sg.initial_seed()
    assert sg.random.seed is sg.seed and sg.random.initial_seed is sg.initial_seed


def test_rng_state_round_trip_reproduces_draws():
    sg.manual_seed(11)
    state = sg.get_rng_state()
    assert isinstance(state, sg.Tensor) and state.ndim == 1 and not state.is_floating_point()
    drawn = sg.rand(5).tolist() + sg.randint(0, 100, (3,)).tolist()
    sg.manual_seed(99)
    sg.set_rng_state(state)
    assert sg.initial_seed() == 11 == torch.manual_seed(11).initial_seed()
    assert sg.rand(5).tolist() + sg.randint(0, 100, (3,)).tolist() == drawn


def test_rng_state_survives_save_and_load(tmp_path):
    state = sg.get_rng_state()
    drawn = sg.randn(3).tolist()
    sg.save({"rng": state}, tmp_path / "state.pt")
    sg.set_rng_state(sg.load(tmp_path / "state.pt")["rng"])
    assert sg.randn(3).tolist() == drawn


def test_generator_state_round_trip():
    g = sg.Generator().manual_seed(4)
    state = g.get_state()
    first = sg.rand(3, generator=g).tolist()
    assert g.set_state(state) is g and sg.rand(3, generator=g).tolist() == first


def test_default_generator_draws_the_default_stream():
    sg.manual_seed(8)
    a = sg.rand(3).tolist()
    sg.manual_seed(8)
    assert sg.rand(3, generator=sg.default_generator).tolist() == a
    assert sg.rand(3, generator=sg.Generator().manual_seed(8)).tolist() == a


def test_set_rng_state_rejects_what_is_not_a_state():
    assert _raises(lambda: torch.set_rng_state(torch.zeros(3))) is TypeError
    with pytest.raises(RuntimeError, match=r"set_rng_state: the RNG state must be a 1-D "
                                           r"integer tensor of 48 bytes.*\(3,\)"):
        sg.set_rng_state(sg.zeros(3))
    with pytest.raises(TypeError, match="set_rng_state: the RNG state must be a Tensor"):
        sg.set_rng_state([0] * 48)


def test_fork_rng_restores_the_state(device):
    sg.manual_seed(2)
    with torch.random.fork_rng(), sg.random.fork_rng():
        sg.rand(4, device=device)
        sg.manual_seed(123)
        sg.rand(4, device=device)
    assert sg.initial_seed() == 2
    after = sg.rand(4, device=device).tolist()
    sg.manual_seed(2)
    assert sg.rand(4, device=device).tolist() == after
    with sg.random.fork_rng(enabled=False):
        sg.rand(1)
    assert sg.rand(4, device=device).tolist() != after


def test_torch_random_namespace_under_the_alias():
    names = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
             "fork_rng"]
    assert all(callable(getattr(sg.random, name)) for name in names)
    assert all(callable(getattr(torch.random, name)) for name in names)


# -- small top-level names --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["is_floating_point", "is_complex", "numel"])
@pytest.mark.parametrize("values", [[1.5, 2.0], [1, 2], [True], [[1.0, 2.0, 3.0]]])
def test_top_level_queries(name, values):
    assert getattr(sg, name)(sg.tensor(values)) == getattr(torch, name)(torch.tensor(values))


@pytest.mark.parametrize("values", [[1.5], [0.0], [0], [[True]], 3, []])
def test_is_nonzero(values):
    ours, theirs = (lambda: sg.is_nonzero(sg.tensor(values)),
                    lambda: torch.is_nonzero(torch.tensor(values)))
    assert _raises(ours) is _raises(theirs)
    if _raises(theirs) is None:
        assert ours() == theirs()


def test_is_nonzero_names_the_problem():
    with pytest.raises(RuntimeError, match=r"is_nonzero: a tensor with 2 values \(shape \(2,\)"):
        sg.is_nonzero(sg.tensor([1, 2]))


def test_default_dtype_and_threads_exist_as_in_pytorch():
    assert sg.get_default_dtype() is sg.float32 and repr(sg.get_default_dtype()) == repr(
        torch.get_default_dtype())
    sg.set_default_dtype(sg.float64)
    try:
        assert sg.tensor([1.0]).dtype is sg.float64
    finally:
        sg.set_default_dtype(sg.float32)
    threads = sg.get_num_threads()
    sg.set_num_threads(1)
    assert sg.get_num_threads() == 1
    sg.set_num_threads(threads)


@pytest.mark.parametrize("device_name", ["cpu", "mlx"])
def test_dropout_follows_manual_seed_on_a_backend_loaded_after_it(device_name):
    # a fresh process: the backend is loaded after the seed, and dropout is its first draw
    code = ("import smolgrad as sg; sg.manual_seed(5); "
            f"x = sg.ones(64, device={device_name!r}); "
            "print(sg.nn.functional.dropout(x, 0.5).tolist())")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1]
