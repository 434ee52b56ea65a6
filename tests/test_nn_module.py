"""nn.Module / Parameter / containers: registration, traversal order, state_dict exchange
with PyTorch (both ways), strict and non-strict loading errors, modes, devices, dtypes."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from nn_oracle import load_from_torch
from oracle import assert_close

import smolgrad as sg
import smolgrad.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.register_buffer("scale", sg.ones(4))
        self.register_buffer("cache", sg.zeros(2), persistent=False)

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.norm = torch.nn.LayerNorm(4)
        self.register_buffer("scale", torch.ones(4))
        self.register_buffer("cache", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


def _pair():
    """The same nested model in both libraries."""
    s = nn.Sequential(OrderedDict(
        [("embed", nn.Linear(5, 3)), ("act", nn.ReLU()), ("block", Block()),
         ("heads", nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2, bias=False)])),
         ("bn", nn.BatchNorm1d(4))]))
    t = torch.nn.Sequential(OrderedDict(
        [("embed", torch.nn.Linear(5, 3)), ("act", torch.nn.ReLU()), ("block", TorchBlock()),
         ("heads", torch.nn.ModuleList([torch.nn.Linear(4, 2),
                                        torch.nn.Linear(4, 2, bias=False)])),
         ("bn", torch.nn.BatchNorm1d(4))]))
    return s, t


# -- Parameter ------------------------------------------------------------------------------

def test_parameter_is_a_leaf_tensor(device):
    p = nn.Parameter(sg.randn(2, 3, device=device))
    assert isinstance(p, sg.Tensor) and isinstance(p, nn.Parameter)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    assert repr(p).startswith("Parameter containing:\ntensor(")
    y = p * 2
    assert type(y) is sg.Tensor and y.grad_fn is not None
    frozen = nn.Parameter(sg.ones(2, device=device), requires_grad=False)
    assert not frozen.requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(sg.tensor([1, 2], device=device))


def test_parameter_gradient_accumulates(device):
    p = nn.Parameter(sg.tensor([1.0, 2.0], device=device))
    (p * p).sum().backward()
    assert_close(p.grad, torch.tensor([2.0, 4.0]))


# -- registration and traversal order -----------------------------------------------------

def test_names_and_order_match_torch():
    s, t = _pair()
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in s.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in s.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in s.named_children()] == [n for n, _ in t.named_children()]
    assert list(s.state_dict()) == list(t.state_dict())
    assert [type(m).__name__ for m in s.modules()] == \
        [type(m).__name__.replace("TorchBlock", "Block") for m in t.modules()]
    assert [p.shape for p in s.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert [n for n, _ in s.named_parameters(prefix="m", recurse=True)][0] == "m.embed.weight"
    assert [n for n, _ in s.block.named_parameters(recurse=False)] == []


def test_shared_modules_and_parameters_appear_once():
    lin = nn.Linear(2, 2)
    s = nn.Sequential(lin, nn.ReLU(), lin)
    t_lin = torch.nn.Linear(2, 2)
    t = torch.nn.Sequential(t_lin, torch.nn.ReLU(), t_lin)
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in s.named_modules()] == [n for n, _ in t.named_modules()]
    assert list(s.state_dict()) == list(t.state_dict())  # state_dict keeps both keys
    assert len(list(s.named_modules(remove_duplicate=False))) == 4


def test_attribute_assignment_registers_and_replaces():
    m = nn.Module()
    m.w = nn.Parameter(sg.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("buf", sg.zeros(3))
    m.plain = 5
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"]
    assert list(m._buffers) == ["buf"] and m.plain == 5
    m.buf = sg.ones(3)  # a tensor assigned to a buffer name replaces the buffer
    assert m.buf.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = sg.ones(2)
    with pytest.raises(TypeError, match="child module 'sub'"):
        m.sub = 3
    m.w = None
    assert m.w is None and "w" in m._parameters
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = m.nothing
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", sg.ones(1))
    with pytest.raises(KeyError, match='contain "."'):
        m.register_parameter("a.b", nn.Parameter(sg.ones(1)))
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("q", sg.ones(1))
    leaf = nn.Parameter(sg.ones(1, requires_grad=True) * 2)  # Parameter() detaches
    assert leaf.is_leaf and leaf.requires_grad


def test_assignment_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(sg.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_buffers_persistent_and_not():
    m = Block()
    assert [n for n, _ in m.named_buffers()] == ["scale", "cache"]
    assert "cache" not in m.state_dict() and "scale" in m.state_dict()


# -- state_dict exchange --------------------------------------------------------------------

def test_state_dict_round_trip_both_ways(device):
    s, t = _pair()
    t.eval()
    s.eval()
    with torch.no_grad():
        t.bn.running_mean.uniform_(-1, 1)
        t.bn.running_var.uniform_(0.5, 2)
    load_from_torch(s, t, device)
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)

    ref = t.heads[0](t.bn(t.block(t.act(t.embed(torch.tensor(x))))))
    out = s.heads[0](s.bn(s.block(s.act(s.embed(sg.tensor(x, device=device))))))
    assert_close(out, ref.detach(), what="torch -> smolgrad")
    # and back: smolgrad's state (as NumPy) into a fresh torch model
    t2 = _pair()[1].eval()
    t2.load_state_dict({k: torch.tensor(v.cpu().numpy()) for k, v in s.state_dict().items()})
    ref2 = t2.heads[0](t2.bn(t2.block(t2.act(t2.embed(torch.tensor(x))))))
    assert_close(out, ref2.detach(), what="smolgrad -> torch")
    assert s.state_dict()["bn.num_batches_tracked"].dtype == sg.int64


def test_load_state_dict_copies_and_keeps_identity():
    m = nn.Linear(3, 2)
    w = m.weight
    src = {"weight": np.arange(6, dtype=np.float64).reshape(2, 3), "bias": sg.zeros(2)}
    m.load_state_dict(src)
    assert m.weight is w and m.weight.dtype == sg.float32 and m.weight.requires_grad
    src["weight"][0, 0] = 100.0  # later changes to the source do not leak in
    assert m.weight.tolist()[0] == [0.0, 1.0, 2.0]
    src["bias"].fill_(7.0)
    assert m.bias.tolist() == [0.0, 0.0]
    m.load_state_dict({"weight": [[1, 2, 3], [4, 5, 6]], "bias": np.ones(2)})
    assert m.weight.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_strict_errors_list_everything_and_change_nothing():
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    bad = {"0.weight": np.zeros((2, 3)), "0.bias": np.zeros(5), "1.weight": np.zeros((1, 2)),
           "extra.weight": np.zeros(1)}
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(bad)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for 0.bias" in msg and "(5,)" in msg and "(2,)" in msg
    assert "Sequential" in msg
    for k, v in m.state_dict().items():  # nothing changed, not even the valid keys
        np.testing.assert_array_equal(v.numpy(), before[k])
    # non-strict: missing / unexpected are reported, shape mismatches still raise
    with pytest.raises(RuntimeError, match="size mismatch for 0.bias"):
        m.load_state_dict(bad, strict=False)
    good = {"0.weight": np.zeros((2, 3)), "extra": np.zeros(1)}
    result = m.load_state_dict(good, strict=False)
    assert result.missing_keys == ["0.bias", "1.weight", "1.bias"]
    assert result.unexpected_keys == ["extra"]
    assert not m[0].weight.detach().numpy().any()


def test_load_state_dict_accepts_torch_tensors_and_parameters():
    t = torch.nn.Linear(3, 2)
    m = nn.Linear(3, 2)
    m.load_state_dict(dict(t.named_parameters()))  # requires_grad torch Parameters
    assert_close(m.weight.detach(), t.weight.detach())
    m.load_state_dict(t.state_dict())


def test_load_state_dict_assign():
    m = nn.Linear(2, 2)
    old = m.weight
    m.load_state_dict({"weight": sg.ones(2, 2), "bias": sg.zeros(2)}, assign=True)
    assert m.weight is not old and isinstance(m.weight, nn.Parameter)
    assert m.weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]


# -- modes, grads, devices, dtypes ----------------------------------------------------------

def test_train_eval_propagate():
    s, _ = _pair()
    assert all(m.training for m in s.modules())
    assert s.eval() is s
    assert not any(m.training for m in s.modules())
    s.train()
    assert all(m.training for m in s.modules())
    with pytest.raises(ValueError):
        s.train("yes")


def test_zero_grad_and_requires_grad(device):
    m = nn.Linear(3, 2).to(device)
    m(sg.randn(4, 3, device=device)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is not None and not m.weight.grad.numpy().any()
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())


def test_to_keeps_parameter_identity_and_int_buffers():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    params = list(m.parameters())
    m(sg.randn(4, 2)).sum().backward()
    assert m.double() is m
    assert [p is q for p, q in zip(m.parameters(), params)] == [True] * 4
    assert all(p.dtype == sg.float64 and p.grad.dtype == sg.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == sg.float64
    assert m[1].num_batches_tracked.dtype == sg.int64  # only floating point converts
    m.to(sg.float32)
    assert m[0].weight.dtype == sg.float32 and m[0].weight.requires_grad
    m.half()
    assert m[0].weight.dtype == sg.float16
    m.float()
    out = m(sg.randn(4, 2))
    assert out.dtype == sg.float32
    with pytest.raises(TypeError, match="floating point"):
        m.to(sg.int64)


def test_to_device(device):
    m = nn.Linear(2, 3)
    w = m.weight
    m.to(device)
    assert m.weight is w and str(m.weight.device) == sg.device(device).type
    out = m(sg.randn(1, 2, device=device))
    assert str(out.device) == sg.device(device).type


def test_apply_visits_children_first():
    s, _ = _pair()
    seen = []
    assert s.apply(lambda m: seen.append(type(m).__name__)) is s
    t = _pair()[1]
    t_seen = []
    t.apply(lambda m: t_seen.append(type(m).__name__))
    assert seen == [n.replace("TorchBlock", "Block") for n in t_seen]


def test_reprs_match_torch():
    cases = [
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.2)),
         torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Dropout(0.2))),
        (nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
         torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)),
        (nn.Conv1d(2, 4, 3, dilation=2, groups=2), torch.nn.Conv1d(2, 4, 3, dilation=2,
                                                                    groups=2)),
        (nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1),
         torch.nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1)),
        (nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)),
        (nn.LayerNorm(5), torch.nn.LayerNorm(5)),
        (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
        (nn.Embedding(10, 3, padding_idx=0), torch.nn.Embedding(10, 3, padding_idx=0)),
        (nn.LSTM(3, 4, num_layers=2, batch_first=True),
         torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)),
        (nn.GRU(3, 4, bidirectional=True), torch.nn.GRU(3, 4, bidirectional=True)),
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.AvgPool2d(3, 1, 1), torch.nn.AvgPool2d(3, 1, 1)),
        (nn.AdaptiveAvgPool2d((1, 1)), torch.nn.AdaptiveAvgPool2d((1, 1))),
        (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3))),
        (nn.ModuleDict({"a": nn.Identity()}), torch.nn.ModuleDict({"a": torch.nn.Identity()})),
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
    ]
    for s, t in cases:
        assert repr(s) == repr(t)


# -- containers -----------------------------------------------------------------------------

def test_sequential_indexing_slicing_append():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b)
    assert len(s) == 2 and s[0] is a and s[-1] is b
    s.append(c)
    assert s[2] is c and list(s) == [a, b, c]
    head = s[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, b]
    assert list(head.state_dict()) == ["0.weight", "0.bias"]
    assert s(sg.randn(4, 2)).shape == (4, 1)
    s[1] = nn.Tanh()
    assert isinstance(s[1], nn.Tanh)
    del s[0]
    assert list(s.state_dict()) == ["1.weight", "1.bias"] and len(s) == 2
    with pytest.raises(IndexError, match="out of range"):
        _ = s[5]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and [n for n, _ in layers.named_children()] == ["0", "1", "2"]
    layers.append(nn.ReLU())
    layers += [nn.Tanh()]
    assert len(layers) == 5 and isinstance(layers[-1], nn.Tanh)
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers.insert(0, nn.Identity())
    assert isinstance(layers[0], nn.Identity) and isinstance(layers[1], nn.Linear)
    assert [k.split(".")[0] for k in layers.state_dict()] == ["1", "1", "2", "2", "3", "3"]
    d = nn.ModuleDict({"enc": nn.Linear(2, 3), "dec": nn.Linear(3, 2)})
    assert list(d.keys()) == ["enc", "dec"] and "enc" in d and len(d) == 2
    d["act"] = nn.ReLU()
    assert list(d) == ["enc", "dec", "act"]
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert isinstance(d.pop("act"), nn.ReLU) and len(d) == 2
    plist = nn.ParameterList([nn.Parameter(sg.ones(2)), sg.zeros(3)])
    assert [n for n, _ in plist.named_parameters()] == ["0", "1"]
    assert isinstance(plist[1], nn.Parameter)


def test_module_deepcopy_is_independent():
    s, _ = _pair()
    c = copy.deepcopy(s)
    assert c.embed.weight is not s.embed.weight
    assert c.embed.weight.backend is s.embed.weight.backend
    with sg.no_grad():
        c.embed.weight.fill_(0.0)
    assert s.embed.weight.detach().numpy().any()
    assert list(c.state_dict()) == list(s.state_dict())


def test_forward_hooks():
    m = nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    h2 = m.register_forward_hook(lambda mod, args, out: out * 0)
    out = m(sg.ones(1, 2))
    assert calls == ["pre"] and not out.detach().numpy().any()
    h1.remove()
    h2.remove()
    assert m(sg.ones(1, 2)).detach().numpy().any() and calls == ["pre"]


def test_missing_forward_is_clear():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(sg.ones(1))
