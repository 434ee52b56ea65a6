"""smolgrad.utils.data against torch.utils.data: batches, collation, samplers, splits."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
import torch.utils.data as tdata
from oracle import assert_close

import smolgrad as sg
from smolgrad.random import Generator
from smolgrad.utils import data


def _xy(device, n=10):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = np.arange(n, dtype=np.int64)
    return x, y, sg.tensor(x, device=device), sg.tensor(y, device=device)


def _assert_batches_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert type(o) is list and type(t) is list
        for a, b in zip(o, t):
            assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("batch_size,drop_last", [(1, False), (3, False), (3, True),
                                                  (10, False), (16, True)])
def test_tensor_dataset_batches_match_torch(device, batch_size, drop_last):
    x, y, sx, sy = _xy(device)
    ours = list(data.DataLoader(data.TensorDataset(sx, sy), batch_size=batch_size,
                                drop_last=drop_last))
    theirs = list(tdata.DataLoader(tdata.TensorDataset(torch.tensor(x), torch.tensor(y)),
                                   batch_size=batch_size, drop_last=drop_last))
    _assert_batches_equal(ours, theirs)
    assert len(data.DataLoader(data.TensorDataset(sx, sy), batch_size=batch_size,
                               drop_last=drop_last)) == len(theirs)
    for xb, _ in ours:
        assert str(xb.device) == sg.device(device).type


def test_generic_dataset_batches_match_torch(device):
    """A user Dataset of (array, float, int, str, dict) samples, collated per field."""

    class Items(data.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return (np.full((2,), i, dtype=np.float32), i * 0.5, i, f"s{i}",
                    {"k": np.int64(i), "b": i % 2 == 0})

    class TItems(tdata.Dataset):
        __len__ = Items.__len__
        __getitem__ = Items.__getitem__

    ours = list(data.DataLoader(Items(), batch_size=3))
    theirs = list(tdata.DataLoader(TItems(), batch_size=3))
    assert len(ours) == len(theirs) == 3
    for o, t in zip(ours, theirs):
        assert isinstance(o, list) and len(o) == 5
        for a, b in zip(o[:3], t[:3]):
            assert_close(a, b, atol=0, rtol=0)
            assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        assert o[3] == t[3]
        assert set(o[4]) == {"k", "b"}
        assert_close(o[4]["k"], t[4]["k"], atol=0, rtol=0)
        assert o[4]["b"].dtype == sg.bool and o[4]["b"].tolist() == t[4]["b"].tolist()


def test_default_collate_structures():
    Point = collections.namedtuple("Point", "x y")
    batch = [Point(sg.tensor([1.0, 2.0]), 3), Point(sg.tensor([4.0, 5.0]), 6)]
    out = data.default_collate(batch)
    assert isinstance(out, Point)
    assert out.x.shape == (2, 2) and out.y.tolist() == [3, 6] and out.y.dtype == sg.int64
    assert data.default_collate([1.5, 2.5]).dtype == sg.float64
    assert data.default_collate([True, False]).dtype == sg.bool
    assert data.default_collate(["a", "b"]) == ["a", "b"]
    nested = data.default_collate([[1, [2.0]], [3, [4.0]]])
    assert nested[0].tolist() == [1, 3] and nested[1][0].tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="equal size"):
        data.default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="equal size"):
        data.default_collate([sg.zeros(2), sg.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        data.default_collate([object(), object()])


def test_shuffle_is_a_permutation_reproducible_with_generator(device):
    _, _, sx, sy = _xy(device, n=23)
    ds = data.TensorDataset(sx, sy)

    def epoch(loader):
        return [i for _, yb in loader for i in yb.tolist()]

    loader = data.DataLoader(ds, batch_size=5, shuffle=True,
                             generator=Generator().manual_seed(7))
    first, second = epoch(loader), epoch(loader)
    assert sorted(first) == list(range(23)) and sorted(second) == list(range(23))
    assert first != second, "each epoch should be a new permutation"
    again = data.DataLoader(ds, batch_size=5, shuffle=True,
                            generator=Generator().manual_seed(7))
    assert epoch(again) == first
    sg.manual_seed(3)
    a = epoch(data.DataLoader(ds, batch_size=4, shuffle=True))
    sg.manual_seed(3)
    b = epoch(data.DataLoader(ds, batch_size=4, shuffle=True))
    assert a == b and sorted(a) == list(range(23)) and a != list(range(23))


def test_rows_stay_paired_when_shuffled(device):
    x, _, sx, sy = _xy(device, n=12)
    for xb, yb in data.DataLoader(data.TensorDataset(sx, sy), batch_size=5, shuffle=True):
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])


@pytest.mark.parametrize("lengths", [[7, 3], [0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [0.9, 0.1]])
def test_random_split_sizes_match_torch(lengths):
    ds = data.TensorDataset(sg.arange(10))
    parts = data.random_split(ds, lengths, generator=Generator().manual_seed(0))
    t_parts = tdata.random_split(tdata.TensorDataset(torch.arange(10)), lengths,
                                 generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [len(p) for p in t_parts]
    seen = [int(p[i][0].item()) for p in parts for i in range(len(p))]
    assert sorted(seen) == list(range(10))
    again = data.random_split(ds, lengths, generator=Generator().manual_seed(0))
    assert [list(p.indices) for p in again] == [list(p.indices) for p in parts]


def test_random_split_errors_and_subset_loading(device):
    _, _, sx, sy = _xy(device, n=10)
    ds = data.TensorDataset(sx, sy)
    with pytest.raises(ValueError, match="Sum of input lengths"):
        data.random_split(ds, [3, 3])
    train, test = data.random_split(ds, [0.8, 0.2])
    batches = list(data.DataLoader(train, batch_size=3))
    ids = [i for _, yb in batches for i in yb.tolist()]
    assert ids == [train.indices[i] for i in range(8)]


def test_samplers():
    ds = list(range(10))
    assert list(data.SequentialSampler(ds)) == list(range(10))
    assert list(data.BatchSampler(data.SequentialSampler(ds), 4, False)) == \
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(data.BatchSampler(range(10), 4, True)) == 2
    r = data.RandomSampler(ds, replacement=True, num_samples=25,
                           generator=Generator().manual_seed(1))
    draws = list(r)
    assert len(draws) == 25 == len(r) and all(0 <= d < 10 for d in draws)
    r = data.RandomSampler(ds, num_samples=15, generator=Generator().manual_seed(1))
    draws = list(r)
    assert len(draws) == 15 and sorted(draws[:10]) == list(range(10))
    sub = list(data.SubsetRandomSampler([2, 4, 6], generator=Generator().manual_seed(0)))
    assert sorted(sub) == [2, 4, 6]
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        data.BatchSampler(range(3), 0, False)
    weighted = list(data.WeightedRandomSampler([0.0, 1.0, 3.0], 400,
                                               generator=Generator().manual_seed(0)))
    counts = np.bincount(weighted, minlength=3)
    assert counts[0] == 0 and 60 < counts[1] < 140 and counts[1] + counts[2] == 400
    no_repeat = list(data.WeightedRandomSampler(sg.tensor([1.0, 2.0, 3.0]), 3,
                                                replacement=False))
    assert sorted(no_repeat) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="without replacement"):
        data.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


def test_loader_options():
    ds = data.TensorDataset(sg.arange(6))
    custom = list(data.DataLoader(ds, batch_size=2, collate_fn=lambda b: len(b)))
    assert custom == [2, 2, 2]
    unbatched = list(data.DataLoader(ds, batch_size=None))
    assert len(unbatched) == 6 and unbatched[0][0].shape == ()
    sampler = data.BatchSampler(data.SequentialSampler(ds), 4, False)
    assert [b[0].tolist() for b in data.DataLoader(ds, batch_sampler=sampler)] == \
        [[0, 1, 2, 3], [4, 5]]
    picked = list(data.DataLoader(ds, batch_size=2, sampler=[5, 1, 3]))
    assert [b[0].tolist() for b in picked] == [[5, 1], [3]]
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        data.DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        data.DataLoader(ds, batch_size=3, batch_sampler=sampler)
    with pytest.warns(UserWarning, match="num_workers"):
        data.DataLoader._warned_workers = False
        loader = data.DataLoader(ds, batch_size=3, num_workers=2)
    assert len(list(loader)) == 2


def test_iterable_dataset_and_concat():
    class Stream(data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

    batches = [b.tolist() for b in data.DataLoader(Stream(), batch_size=3)]
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(list(data.DataLoader(Stream(), batch_size=3, drop_last=True))) == 2
    with pytest.raises(ValueError, match="shuffle"):
        data.DataLoader(Stream(), shuffle=True)
    both = data.TensorDataset(sg.arange(3)) + data.TensorDataset(sg.arange(10, 12))
    assert len(both) == 5 and both[3][0].item() == 10 and both[-1][0].item() == 11


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="Size mismatch"):
        data.TensorDataset(sg.zeros(3), sg.zeros(4))


def test_generator_api():
    g = Generator()
    assert g.initial_seed() == torch.Generator().initial_seed()
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    state = g.get_state()
    first = g.randperm(10)
    g.set_state(state)
    assert g.randperm(10) == first
    assert isinstance(g.seed(), int)


# ---------------------------------------------------------------------------------------
# The package layout: PyTorch's submodule paths
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("submodule", ["dataset", "sampler", "dataloader"])
def test_every_torch_name_lives_in_the_same_submodule(submodule):
    """`from torch.utils.data.<submodule> import X` works as `smolgrad.utils.data...`, and
    X is defined where PyTorch defines it (e.g. default_collate in _utils.collate)."""
    import importlib

    theirs = importlib.import_module(f"torch.utils.data.{submodule}")
    ours = importlib.import_module(f"smolgrad.utils.data.{submodule}")
    for name in theirs.__all__:
        obj = getattr(ours, name)
        assert obj is getattr(data, name), name
        torch_home = getattr(theirs, name).__module__
        assert obj.__module__ == torch_home.replace("torch.", "smolgrad.", 1), name


def test_distributed_sampler_path():
    from smolgrad.utils.data.distributed import DistributedSampler

    assert DistributedSampler is data.DistributedSampler
    assert len(DistributedSampler(range(10), num_replicas=2, rank=1)) == 5


def test_chain_and_stack_datasets_match_torch():
    class Stream(data.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    class TStream(tdata.IterableDataset):
        __init__, __iter__, __len__ = Stream.__init__, Stream.__iter__, Stream.__len__

    chained = Stream(3) + Stream(2)
    assert isinstance(chained, data.ChainDataset)
    assert list(chained) == list(TStream(3) + TStream(2)) and len(chained) == 5
    with pytest.raises(TypeError, match="ChainDataset only supports IterableDatasets"):
        list(data.ChainDataset([Stream(1), [1, 2]]))
    a, b = sg.arange(4), sg.arange(10, 14)
    ta, tb = torch.arange(4), torch.arange(10, 14)
    pairs = data.StackDataset(data.TensorDataset(a), data.TensorDataset(b))
    t_pairs = tdata.StackDataset(tdata.TensorDataset(ta), tdata.TensorDataset(tb))
    assert len(pairs) == len(t_pairs) == 4
    assert [[x[0].item() for x in pairs[i]] for i in range(4)] == \
        [[x[0].item() for x in t_pairs[i]] for i in range(4)]
    named = data.StackDataset(x=data.TensorDataset(a), y=data.TensorDataset(b))
    batch = next(iter(data.DataLoader(named, batch_size=3)))
    assert batch["x"][0].tolist() == [0, 1, 2] and batch["y"][0].tolist() == [10, 11, 12]
    with pytest.raises(ValueError, match="Size mismatch"):
        data.StackDataset(data.TensorDataset(a), data.TensorDataset(sg.arange(3)))


# ---------------------------------------------------------------------------------------
# RandomSampler: lazy draws, distribution, reproducibility, PyTorch's errors
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("replacement", [True, False])
def test_random_sampler_with_huge_num_samples_draws_lazily(replacement):
    """PyTorch programs ask for int(1e10) samples to mean "forever": building the sampler
    and taking 100 indices must neither allocate all of them nor take long."""
    import itertools
    import time
    import tracemalloc

    def first_100():
        sampler = data.RandomSampler(range(50), replacement=replacement,
                                     num_samples=int(1e10),
                                     generator=Generator().manual_seed(0))
        return sampler, list(itertools.islice(iter(sampler), 100))

    first_100()  # warm up imports and caches outside the measurement
    tracemalloc.start()
    start = time.perf_counter()
    try:
        sampler, indices = first_100()
        seconds = time.perf_counter() - start
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sampler) == int(1e10)
    assert len(indices) == 100 and all(0 <= i < 50 for i in indices)
    assert seconds < 0.5, f"took {seconds:.3f} s"
    assert peak_bytes < 256 * 1024, f"peak {peak_bytes} bytes"
    # A DataLoader over it is lazy too
    loader = data.DataLoader(data.TensorDataset(sg.arange(50)), batch_size=8,
                             sampler=sampler)
    assert len(loader) == int(1e10) // 8
    assert next(iter(loader))[0].shape == (8,)


def test_random_sampler_with_replacement_is_uniform_and_reproducible():
    n, draws = 8, 16_000
    sampler = data.RandomSampler(range(n), replacement=True, num_samples=draws,
                                 generator=Generator().manual_seed(5))
    first = list(sampler)
    assert len(first) == draws == len(sampler)
    counts = np.bincount(first, minlength=n)
    expected = draws / n
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 24.3, counts  # the 99.9% quantile of chi-square with 7 dof
    second = list(sampler)
    assert second != first, "a second pass continues the generator's stream"
    again = data.RandomSampler(range(n), replacement=True, num_samples=draws,
                               generator=Generator().manual_seed(5))
    assert list(again) == first
    # without a generator: a fresh one per pass, seeded from the global generator
    sg.manual_seed(11)
    a = list(data.RandomSampler(range(n), replacement=True, num_samples=70))
    sg.manual_seed(11)
    b = list(data.RandomSampler(range(n), replacement=True, num_samples=70))
    assert a == b and len(a) == 70


@pytest.mark.parametrize("num_samples", [5, 8, 21])
def test_random_sampler_without_replacement_matches_torch_structure(num_samples):
    """Whole permutations one after the other, the last cut short (PyTorch's rule); the
    numbers differ from PyTorch's (another generator) but the structure must not."""
    n = 8
    ours = list(data.RandomSampler(range(n), num_samples=num_samples,
                                   generator=Generator().manual_seed(0)))
    theirs = list(tdata.RandomSampler(range(n), num_samples=num_samples,
                                      generator=torch.Generator().manual_seed(0)))
    for sequence in (ours, theirs):
        assert len(sequence) == num_samples
        for start in range(0, num_samples, n):
            block = sequence[start:start + n]
            assert len(set(block)) == len(block) and set(block) <= set(range(n))


@pytest.mark.parametrize("kwargs", [
    {"replacement": 1}, {"replacement": "yes"}, {"num_samples": 0}, {"num_samples": -3},
    {"num_samples": 2.5}, {"num_samples": np.int64(4)}, {"data_source": []},
])
def test_random_sampler_validation_matches_torch(kwargs):
    kwargs = dict(kwargs)
    source = kwargs.pop("data_source", range(4))
    with pytest.raises(Exception) as theirs:
        tdata.RandomSampler(source, **kwargs)
    with pytest.raises(Exception) as ours:
        data.RandomSampler(source, **kwargs)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_random_sampler_errors_at_iteration():
    with pytest.raises(ValueError, match="RandomSampler: cannot draw 3 samples from an empty"):
        list(data.RandomSampler([], num_samples=3))
    with pytest.raises(TypeError, match="RandomSampler: generator must be an sg.Generator"):
        list(data.RandomSampler(range(3), generator=torch.Generator()))
