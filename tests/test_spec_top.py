"""SPEC §3 (nn.functional), §4 (nn, optim, data, io) and §5 (models, viz, demo,
distributed) read sentence by sentence, checked the way a PyTorch user's script would use
them: `import smolgrad as torch`, then the same calls, compared with PyTorch."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

import smolgrad as sg
from smolgrad import viz
from smolgrad.utils.data import DataLoader, TensorDataset


def _arr(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


# ---------------------------------------------------------------- nn.Module vs torch


def _build(lib):
    """The same nested architecture in either library (layers whose state_dict keys have a
    PyTorch naming rule of their own)."""
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, 8), nn.ReLU())
            self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Sequential(nn.LayerNorm(8))])
            self.register_buffer("scale", lib.ones(8))
            self.emb = nn.Embedding(10, 8)
            self.lstm = nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)
            self.gru = nn.GRU(8, 6)
            self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
            self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

        def forward(self, img, ids):
            h = self.head(self.bn(self.conv(img)))
            for block in self.blocks:
                h = block(h) * self.scale
            seq = self.emb(ids) + h[:, None, :]
            att, _ = self.mha(seq, seq, seq)
            seq = self.enc(att)
            out, _ = self.lstm(seq)
            g, _ = self.gru(seq)
            return out.sum() + g.sum()

    return Net()


def test_state_dict_keys_orders_and_outputs_match_torch(device):
    torch.manual_seed(0)
    tm = _build(torch).eval()
    sm = _build(sg).to(device).eval()
    tsd = tm.state_dict()
    assert list(sm.state_dict()) == list(tsd)
    assert [n for n, _ in sm.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in sm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in sm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert sm.state_dict()["bn.num_batches_tracked"].dtype is sg.int64
    # PyTorch's weights as NumPy arrays load and give PyTorch's outputs
    assert not sm.load_state_dict({k: v.numpy() for k, v in tsd.items()}).missing_keys
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    ids = rng.integers(0, 10, (2, 4))
    want = tm(torch.tensor(img), torch.tensor(ids)).item()
    got = sm(sg.tensor(img, device=device), sg.tensor(ids, device=device)).item()
    assert abs(got - want) <= 1e-4 * max(1.0, abs(want))


def test_load_safetensors_written_by_torch(device, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                             torch.nn.Linear(4, 2)).eval()
    save_file(tm.state_dict(), str(tmp_path / "m.safetensors"))
    sm = sg.nn.Sequential(sg.nn.Linear(3, 4), sg.nn.BatchNorm1d(4),
                          sg.nn.Linear(4, 2)).to(device).eval()
    sm.load_state_dict(sg.load(str(tmp_path / "m.safetensors")))
    x = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(_arr(sm(sg.tensor(x, device=device))),
                               _arr(tm(torch.tensor(x))), atol=1e-5)


def test_strict_false_reports_keys_like_torch(device):
    m = sg.nn.Linear(2, 3).to(device)
    sd = {"weight": np.zeros((3, 2), np.float32), "extra": np.zeros(1, np.float32)}
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    missing, unexpected = result
    assert (missing, unexpected) == (["bias"], ["extra"])
    with pytest.raises(RuntimeError, match="bias"):
        m.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=r"weight.*\(4, 2\).*\(3, 2\)"):
        m.load_state_dict({"weight": np.zeros((4, 2), np.float32), "bias": np.zeros(3)})


def test_module_to_dtype_keeps_integer_buffers(device):
    m = sg.nn.Sequential(sg.nn.Linear(2, 2), sg.nn.BatchNorm1d(2)).to(device)
    assert m.to(sg.float16) is m
    assert m[0].weight.dtype is sg.float16 and m[1].running_mean.dtype is sg.float16
    assert m[1].num_batches_tracked.dtype is sg.int64


# ---------------------------------------------------------------- nn.init


INIT_WITH_GENERATOR = ["uniform_", "normal_", "trunc_normal_", "xavier_uniform_",
                       "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]


@pytest.mark.parametrize("name", INIT_WITH_GENERATOR)
def test_init_generator_makes_draws_reproducible(name, device):
    fn = getattr(sg.nn.init, name)
    a = fn(sg.empty(4, 6, device=device), generator=sg.Generator().manual_seed(3))
    b = fn(sg.empty(4, 6, device=device), generator=sg.Generator().manual_seed(3))
    c = fn(sg.empty(4, 6, device=device), generator=sg.Generator().manual_seed(4))
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


# ---------------------------------------------------------------- optim and schedulers


def _train(lib, make_opt, make_sched=None, steps=8, device=None):
    kw = {} if lib is torch else {"device": device}
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    b0 = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    w = lib.tensor(w0, requires_grad=True, **kw)
    b = lib.tensor(b0, requires_grad=True, **kw)
    opt = make_opt(lib, w, b)
    sched = make_sched(lib, opt) if make_sched else None
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        ((lib.tensor(x, **kw) @ w.T + b) ** 2).mean().backward()
        opt.step()
        if sched is not None:
            sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    return _arr(w), _arr(b), lrs


OPTIMIZERS = {
    "sgd-nesterov-groups": lambda L, w, b: L.optim.SGD(
        [{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1, momentum=0.9,
        nesterov=True, weight_decay=0.01),
    "adam-amsgrad": lambda L, w, b: L.optim.Adam([w, b], lr=0.01, amsgrad=True,
                                                 weight_decay=0.1),
    "adamw-groups": lambda L, w, b: L.optim.AdamW(
        [{"params": [w], "weight_decay": 0.5}, {"params": [b]}], lr=0.01),
    "rmsprop-centered": lambda L, w, b: L.optim.RMSprop([w, b], lr=0.01, momentum=0.9,
                                                        centered=True),
    "adagrad": lambda L, w, b: L.optim.Adagrad([w, b], lr=0.1, lr_decay=0.01,
                                               initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_match_torch(name, device):
    tw, tb, _ = _train(torch, OPTIMIZERS[name])
    sw, sb, _ = _train(sg, OPTIMIZERS[name], device=device)
    np.testing.assert_allclose(sw, tw, atol=1e-5)
    np.testing.assert_allclose(sb, tb, atol=1e-5)


def _sched(name):
    def make(L, opt):
        S = L.optim.lr_scheduler
        return {
            "step": lambda: S.StepLR(opt, step_size=3, gamma=0.5),
            "multistep": lambda: S.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.5),
            "exp": lambda: S.ExponentialLR(opt, gamma=0.9),
            "cos": lambda: S.CosineAnnealingLR(opt, T_max=5, eta_min=0.001),
            "linear": lambda: S.LinearLR(opt, start_factor=0.25, total_iters=4),
            "lambda": lambda: S.LambdaLR(opt, [lambda e: 0.9 ** e, lambda e: 1 / (e + 1)]),
            "onecycle": lambda: S.OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=8,
                                             anneal_strategy="linear", three_phase=True),
            "sequential": lambda: S.SequentialLR(
                opt, [S.LinearLR(opt, start_factor=0.1, total_iters=3),
                      S.ExponentialLR(opt, gamma=0.9)], milestones=[3]),
        }[name]()
    return make


@pytest.mark.parametrize("name", ["step", "multistep", "exp", "cos", "linear", "lambda",
                                  "onecycle", "sequential"])
def test_schedulers_match_torch(name):
    make_opt = OPTIMIZERS["sgd-nesterov-groups"]
    if name == "onecycle":
        make_opt = OPTIMIZERS["adamw-groups"]
    _, _, tl = _train(torch, make_opt, _sched(name))
    _, _, sl = _train(sg, make_opt, _sched(name))
    np.testing.assert_allclose(sl, tl, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make,match", [
    (lambda o: sg.optim.lr_scheduler.StepLR(o, step_size=0), "StepLR.*step_size"),
    (lambda o: sg.optim.lr_scheduler.CosineAnnealingLR(o, T_max=0), "CosineAnnealingLR.*T_max"),
    (lambda o: sg.optim.lr_scheduler.LinearLR(o, start_factor=2.0), "factor"),
    (lambda o: sg.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1), "total_steps"),
])
def test_bad_scheduler_args_raise_when_built(make, match):
    opt = sg.optim.SGD([sg.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=match):
        make(opt)


@pytest.mark.parametrize("make,match", [
    (lambda p: sg.optim.SGD(p, lr=-1.0), "learning rate"),
    (lambda p: sg.optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: sg.optim.Adam(p, betas=(1.0, 0.9)), "beta"),
    (lambda p: sg.optim.AdamW(p, weight_decay=-1), "weight_decay"),
    (lambda p: sg.optim.SGD(p[0], lr=0.1), "Tensor"),
])
def test_bad_optimizer_args_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([sg.zeros(2, requires_grad=True)])


def test_optimizer_state_dict_survives_save_load(device, tmp_path):
    def fresh():
        w = sg.ones(3, device=device, requires_grad=True)
        return w, sg.optim.Adam([w], lr=0.1, amsgrad=True)

    w, opt = fresh()
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    sg.save(opt.state_dict(), str(tmp_path / "opt.sg"))
    w2, opt2 = fresh()
    w2.data = w.data
    opt2.load_state_dict(sg.load(str(tmp_path / "opt.sg")))
    for o, p in ((opt, w), (opt2, w2)):
        o.zero_grad()
        (p * p).sum().backward()
        o.step()
    np.testing.assert_allclose(_arr(w2), _arr(w), atol=1e-7)
    assert opt2.state_dict()["state"][0]["step"] == 4


# ---------------------------------------------------------------- data


def test_dataloader_generator_drop_last_collate(device):
    ds = TensorDataset(sg.arange(10, device=device).float(), sg.arange(10, device=device))

    def order(seed):
        g = sg.Generator().manual_seed(seed)
        return [b[1].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, generator=g)]

    assert order(1) == order(1) and order(1) != order(2)
    assert sorted(sum(order(1), [])) == list(range(10))
    assert [len(b[0]) for b in DataLoader(ds, batch_size=4, drop_last=True)] == [4, 4]
    assert len(DataLoader(ds, batch_size=4)) == 3
    sizes = list(DataLoader(ds, batch_size=3, collate_fn=len))
    assert sizes == [3, 3, 3, 1]


# ---------------------------------------------------------------- io


def test_load_refuses_pickle_without_running_it(tmp_path):
    flag = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(Exception, match="pickle"):
        sg.load(str(path))
    assert not flag.exists()


def test_load_truncated_or_random_bytes_names_the_file(tmp_path):
    good = tmp_path / "good.sg"
    sg.save({"a": sg.ones(4), "n": {"b": [1, 2.5, "s"]}}, str(good))
    raw = good.read_bytes()
    (tmp_path / "cut.sg").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "noise.sg").write_bytes(np.random.default_rng(0).bytes(500))
    for name in ("cut.sg", "noise.sg"):
        with pytest.raises(Exception, match=name):
            sg.load(str(tmp_path / name))


# ---------------------------------------------------------------- viz, demo, distributed


def test_draw_graph_rejects_non_tensors_by_name():
    for bad in (3, None, [sg.ones(1), 2]):
        with pytest.raises(TypeError, match="draw_graph"):
            viz.draw_graph(bad)


def test_explain_backward_reports_broadcast_sum_and_check(device):
    x = sg.randn(3, 4, device=device, requires_grad=True)
    w = sg.randn(4, device=device, requires_grad=True)
    text = str(viz.explain_backward((x * w).sum(), check=True))
    assert "summed over axes (0,)" in text
    assert "PASS" in text and "FAIL" not in text
    np.testing.assert_allclose(_arr(w.grad), _arr(x).sum(0), rtol=1e-5)


def test_demo_rejects_unknown_device(tmp_path):
    from smolgrad import demo

    with pytest.raises(SystemExit, match="tpu"):
        demo.main(["--device", "tpu", "--quick", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_distributed_world_of_one(device):
    import smolgrad.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_rank()
    dist.init_process_group()
    try:
        assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
        t = sg.tensor([1.0, 2.0], device=device)
        dist.all_reduce(t)
        dist.broadcast(t, src=0)
        dist.barrier()
        assert t.tolist() == [1.0, 2.0]
        model = sg.nn.Linear(3, 2).to(device)
        ddp = dist.DistributedDataParallel(model)
        ddp(sg.randn(4, 3, device=device)).sum().backward()
        assert model.weight.grad is not None
        ds = TensorDataset(sg.arange(10, device=device))
        sampler = dist.DistributedSampler(ds, num_replicas=3, rank=1, shuffle=False)
        assert list(sampler) == [1, 4, 7, 0]
    finally:
        dist.destroy_process_group()



def test_optimizer_load_state_dict_checks_buffer_shapes(device):
    p = sg.ones(3, device=device, requires_grad=True)
    source = sg.optim.Adam([p], lr=0.1)
    p.grad = sg.ones(3, device=device)
    source.step()
    q = sg.ones(4, device=device, requires_grad=True)
    target = sg.optim.Adam([q], lr=0.1)
    with pytest.raises(ValueError, match=r"Adam.*exp_avg.*\(3,\).*\(4,\)"):
        target.load_state_dict(source.state_dict())
    assert target.state_dict()["state"] == {}  # nothing half-loaded


def test_data_misuse_names_the_function(device):
    from smolgrad.utils.data import random_split

    ds = TensorDataset(sg.arange(6, device=device))
    with pytest.raises(TypeError, match="random_split: generator"):
        random_split(ds, [3, 3], generator=5)
    with pytest.raises(KeyError, match="default_collate.*sample 1"):
        next(iter(DataLoader([{"a": 1}, {"b": 2}], batch_size=2)))
    assert [len(s) for s in random_split(ds, [0.5, 0.5])] == [3, 3]


def test_save_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "no" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match="save: cannot write .*model.safetensors"):
        sg.save({"a": sg.ones(2)}, str(target))
    with pytest.raises(IsADirectoryError, match="save"):
        sg.save({"a": sg.ones(2)}, str(tmp_path))
