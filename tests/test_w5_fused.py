"""The fused paths written for W5's speed (issue 12, item 3) against PyTorch and gradcheck:
Adam/AdamW's update on arrays, GELU's unrecorded backward, attention's skipped zeroing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close

import smolgrad as sg
import smolgrad.nn.functional as F


@pytest.mark.parametrize("capturable", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_on_arrays_keeps_float32_and_matches_torch(device, capturable, amsgrad):
    """Float32 parameters and moments stay float32, and 5 steps equal PyTorch's."""
    rng = np.random.default_rng(0)
    w0, x = (rng.standard_normal(s).astype(np.float32) for s in ((6, 5), (4, 6)))
    w = sg.tensor(w0, device=device, requires_grad=True)
    wt = torch.tensor(w0, requires_grad=True)
    opt = sg.optim.AdamW([w], lr=0.05, amsgrad=amsgrad, capturable=capturable)
    opt_t = torch.optim.AdamW([wt], lr=0.05, amsgrad=amsgrad)
    for _ in range(5):
        for p, o, lib in ((w, opt, sg), (wt, opt_t, torch)):
            o.zero_grad()
            (lib.tanh(lib.tensor(x, device=p.device) @ p) ** 2).sum().backward()
            o.step()
    state = opt.state[w]
    assert w.dtype == sg.float32 and state["exp_avg"].dtype == sg.float32
    assert state["exp_avg_sq"].dtype == sg.float32
    assert_close(w, wt.detach(), atol=2e-5, rtol=2e-4)  # test_optim.py's tolerance


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward_on_arrays_gradcheck(approximate):
    x = sg.tensor(np.linspace(-4, 4, 35).reshape(5, 7), dtype=sg.float64, requires_grad=True)
    assert sg.autograd.gradcheck(lambda a: F.gelu(a, approximate=approximate), (x,))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward_on_arrays_matches_torch(device, approximate):
    x0 = np.random.default_rng(1).standard_normal((3, 16, 8)).astype(np.float32) * 3
    g0 = np.random.default_rng(2).standard_normal((3, 16, 8)).astype(np.float32)
    x = sg.tensor(x0, device=device, requires_grad=True)
    F.gelu(x, approximate=approximate).backward(sg.tensor(g0, device=device))
    xt = torch.tensor(x0, requires_grad=True)
    torch.nn.functional.gelu(xt, approximate=approximate).backward(torch.tensor(g0))
    assert x.grad.dtype == sg.float32
    assert_close(x.grad, xt.grad)  # float32: ½(1 + tanh u) cancels for x ≪ 0


@pytest.mark.parametrize("dead_row", [False, True])
def test_attention_with_and_without_rows_that_see_no_key(device, dead_row):
    """The zeroing of rows with no allowed key is skipped only when there is none."""
    rng = np.random.default_rng(3)
    q0, k0, v0 = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(3))
    mask = np.tril(np.ones((5, 5), bool))
    if dead_row:
        mask[2] = False
    ours = [sg.tensor(a, device=device, requires_grad=True) for a in (q0, k0, v0)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q0, k0, v0)]
    y = F.scaled_dot_product_attention(*ours, attn_mask=sg.tensor(mask, device=device))
    yt = torch.nn.functional.scaled_dot_product_attention(*theirs,
                                                          attn_mask=torch.tensor(mask))
    y.sum().backward()
    yt.sum().backward()
    assert_close(y, yt.detach(), rtol=1e-5, atol=1e-6)
    for a, at in zip(ours, theirs):
        assert_close(a.grad, at.grad, rtol=1e-5, atol=1e-5)


def test_causal_attention_reads_nothing_back_to_python():
    # whether a row sees no key is known from the mask's kind (a causal mask never has one),
    # so the step has no host read-back: nothing for sg.compile to guard on (on a GPU: no sync)
    q, k, v = (sg.randn(2, 5, 3, requires_grad=True) for _ in range(3))

    def step(q, k, v):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.sum().backward()
        return out

    compiled = sg.compile(step)
    for _ in range(3):
        compiled(q, k, v)
    assert compiled.replays >= 1 and compiled.program.guards == []
