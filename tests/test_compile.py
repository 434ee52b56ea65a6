"""sg.compile: a recorded training step replays bit-identically to eager steps.

Each test trains two identical models side by side, one eagerly and one through
`sg.compile`, and compares every parameter bit for bit after 20 steps (random draws
included: both runs start from the same seed). The models are the benchmark workloads
in small: W1 (MLP, BCE, SGD), W2 (MLP, cross-entropy, SGD with momentum), W5 (a GPT
block with dropout, AdamW) and W6 (a CNN). Other tests check the guard (a new shape
records again), the fallbacks (values read back to Python), and the printed program.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import smolgrad as sg
import smolgrad.nn as nn
import smolgrad.nn.functional as F

STEPS = 20


def _snapshot(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _twin(make, device):
    """Two models with the same weights (the second loads the first's state dict)."""
    a, b = make().to(device), make().to(device)
    b.load_state_dict(a.state_dict())
    return a, b


def _train(step_fn, batches, seed: int = 7) -> list:
    sg.manual_seed(seed)
    return [step_fn(*batch) for batch in batches]


def _assert_same_training(make_model, make_opt, loss_fn, batches, device, compiled_min=1):
    """Train eagerly and compiled from the same weights and seed; every parameter and
    every returned loss must be bit-identical. Returns the compiled function."""
    eager_model, compiled_model = _twin(make_model, device)
    eager_opt, compiled_opt = make_opt(eager_model), make_opt(compiled_model)

    def eager_step(*batch):
        eager_opt.zero_grad()
        loss = loss_fn(eager_model, *batch)
        loss.backward()
        eager_opt.step()
        return loss

    @sg.compile
    def compiled_step(*batch):
        compiled_opt.zero_grad()
        loss = loss_fn(compiled_model, *batch)
        loss.backward()
        compiled_opt.step()
        return loss

    eager_losses = _train(eager_step, batches)
    compiled_losses = _train(compiled_step, batches)
    for e, c in zip(eager_losses, compiled_losses):
        assert np.array_equal(e.detach().numpy(), c.detach().numpy())
    expected, got = _snapshot(eager_model), _snapshot(compiled_model)
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name
    assert compiled_step.replays >= compiled_min, compiled_step.programs
    if compiled_min:  # replayed results are new tensors without a graph
        assert sg.is_tensor(compiled_losses[-1]) and not compiled_losses[-1].requires_grad
    return compiled_step


def _batches(device, shape, classes=None, n=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = sg.tensor(rng.standard_normal(shape).astype(np.float32), device=device)
        if classes is None:
            y = sg.tensor((rng.random((shape[0], 1)) > 0.5).astype(np.float32), device=device)
        else:
            y = sg.tensor(rng.integers(0, classes, shape[0]), device=device)
        out.append((x, y))
    return out


# ---------------------------------------------------------------------------------------
# The workloads, small
# ---------------------------------------------------------------------------------------


def test_w1_mlp_bce_sgd(device):
    def make():
        return nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 10), nn.ReLU(),
                             nn.Linear(10, 1), nn.Sigmoid())

    step = _assert_same_training(make, lambda m: sg.optim.SGD(m.parameters(), lr=0.1),
                                 lambda m, x, y: F.binary_cross_entropy(m(x), y),
                                 _batches(device, (40, 2)), device, compiled_min=15)
    assert step.recordings == 2  # .grad absent on the first call, present after


def test_w2_mlp_cross_entropy_momentum(device):
    def make():
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                             nn.Linear(32, 10))

    _assert_same_training(make, lambda m: sg.optim.SGD(m.parameters(), lr=0.05, momentum=0.9,
                                                        nesterov=True, weight_decay=1e-3),
                          lambda m, x, y: F.cross_entropy(m(x), y),
                          _batches(device, (16, 64), classes=10), device, compiled_min=15)


class _Block(nn.Module):
    """A GPT block (pre-norm attention + GELU MLP) with dropout, embeddings and a head."""

    def __init__(self, vocab=17, d=16, heads=2, block=8, p=0.2):
        super().__init__()
        self.heads = heads
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(block, d)
        self.ln1, self.ln2, self.ln = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        b, t = idx.shape
        x = self.drop(self.tok(idx) + self.pos(sg.arange(t, device=idx.device)))
        c = x.shape[-1]
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.reshape(b, t, self.heads, c // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        x = x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))
        return self.head(self.ln(x))


def _token_batches(device, n=STEPS, vocab=17, b=4, t=8):
    rng = np.random.default_rng(3)
    return [(sg.tensor(rng.integers(0, vocab, (b, t)), device=device),
             sg.tensor(rng.integers(0, vocab, (b, t)), device=device)) for _ in range(n)]


def _gpt_loss(model, idx, target):
    logits = model(idx)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def test_w5_gpt_block_adamw_dropout(device):
    def adamw(m):
        return sg.optim.AdamW(m.parameters(), lr=1e-2, capturable=True)

    _assert_same_training(_Block, adamw, _gpt_loss, _token_batches(device), device,
                          compiled_min=15)


def test_w6_cnn(device):
    def make():
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(8 * 3 * 3, 10))

    _assert_same_training(make, lambda m: sg.optim.SGD(m.parameters(), lr=0.05),
                          lambda m, x, y: F.cross_entropy(m(x), y),
                          _batches(device, (4, 1, 14, 14), classes=10), device,
                          compiled_min=15)


def test_adam_without_capturable_runs_eagerly_and_says_why(device):
    """Adam's step count is a Python int by default: each call changes it, so the
    recording cannot be replayed; the step runs eagerly, and the warning names the fix."""
    def make():
        return nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))

    with pytest.warns(RuntimeWarning, match="capturable=True"):
        step = _assert_same_training(make, lambda m: sg.optim.Adam(m.parameters(), lr=0.01),
                                     lambda m, x, y: F.mse_loss(m(x), y),
                                     _batches(device, (8, 8)), device, compiled_min=0)
    assert step.replays == 0


# ---------------------------------------------------------------------------------------
# The guard, the fallbacks, the program
# ---------------------------------------------------------------------------------------


def _mlp_step(device):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).to(device)
    opt = sg.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, step


def test_a_new_shape_records_again(device):
    _, step = _mlp_step(device)
    step = sg.compile(step)
    x8, y8 = sg.randn(8, 3, device=device), sg.randn(8, 1, device=device)
    x4, y4 = sg.randn(4, 3, device=device), sg.randn(4, 1, device=device)
    for _ in range(3):
        step(x8, y8)
    assert (step.recordings, step.replays) == (2, 1)
    step(x4, y4)
    assert step.recordings == 3
    step(x4, y4)
    step(x8, y8)
    assert (step.recordings, step.replays) == (3, 3)
    step(x8.double(), y8.double()) if device == "cpu" else step(x8[:5], y8[:5])
    assert step.recordings == 4
    with sg.no_grad():  # grad mode is part of the key (backward then fails, eagerly)
        with pytest.raises(RuntimeError):
            step(x8, y8)
    assert step.recordings == 4  # a call that raises records nothing


def test_item_in_the_middle_falls_back_and_matches_eager(device):
    """A loss read back with .item() and used in Python: the replay checks that value
    (a value guard), finds it changed, and the function runs eagerly from then on."""
    def run(compiled: bool):
        sg.manual_seed(0)
        model, _ = _mlp_step(device)
        opt = sg.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            scale = 1.0 if loss.item() < 1.0 else 0.5  # Python decides on a value
            (loss * scale).backward()
            opt.step()
            return loss

        fn = sg.compile(step) if compiled else step
        for x, y in _batches(device, (6, 3)):
            fn(x, y[:, :1])
        return model, fn

    eager, _ = run(False)
    with pytest.warns(RuntimeWarning, match="changes from call to call"):
        compiled, fn = run(True)
    assert fn.replays >= 1  # tried, and gave up after the guard failed
    for a, b in zip(eager.parameters(), compiled.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_returning_item_at_the_end_replays(device):
    model, step = _mlp_step(device)

    def step_item(x, y):
        return step(x, y).item()

    compiled = sg.compile(step_item)
    x, y = sg.randn(5, 3, device=device), sg.randn(5, 1, device=device)
    losses = [compiled(x, y) for _ in range(5)]
    assert compiled.replays == 3
    assert all(isinstance(v, float) for v in losses)
    assert losses[0] > losses[-1]  # it trains: each replay reads the new loss
    assert losses[-1] == F.mse_loss(model(x), y).item() or losses[-1] != losses[-2]


def test_numpy_conversion_inside_falls_back(device):
    _, step = _mlp_step(device)

    def step_numpy(x, y):
        return step(x, y).detach().numpy()

    compiled = sg.compile(step_numpy)
    x, y = sg.randn(5, 3, device=device), sg.randn(5, 1, device=device)
    with pytest.warns(RuntimeWarning, match="conversion to NumPy"):
        values = [float(compiled(x, y)) for _ in range(4)]
    assert compiled.replays == 0 and values[0] > values[-1]


def test_a_failing_value_guard_reruns_eagerly_and_raises_its_error(device):
    """binary_cross_entropy checks that its input lies in [0, 1]: a value guard. Replaying
    on a bad input stops at that guard and the eager rerun raises the op's own error."""
    loss_of = sg.compile(lambda p, y: F.binary_cross_entropy(p, y))
    y = sg.ones(4, device=device)
    for _ in range(3):
        loss_of(sg.full((4,), 0.5, device=device), y)
    assert loss_of.replays == 2
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        loss_of(sg.full((4,), 2.0, device=device), y)


def test_printed_program_is_one_line_per_backend_call(device):
    _, step = _mlp_step(device)
    step = sg.compile(step)
    x, y = sg.randn(8, 3, device=device), sg.randn(8, 1, device=device)
    for _ in range(3):
        step(x, y)
    text = str(step.program)
    calls = [line for line in text.splitlines()
             if re.match(r"\s+(t\d+(, t\d+)* = |if )?\w+\(", line)]
    assert len(calls) == len(step.program)
    assert any(re.match(r"\s+t\d+ = matmul\(t\d+, t\d+\)", line) for line in calls)
    assert any(re.match(r"\s+t\d+ = multiply\(", line) for line in calls)
    assert re.match(r"# .*step: \d+ backend calls", text.splitlines()[0])
    assert "def replay(a0, a1):" in text
    assert "._grad = _make(" in text  # the new .grad tensors, written back


def test_dropout_draws_fresh_numbers_on_every_replay(device):
    drop = nn.Dropout(0.5)
    masks = sg.compile(lambda x: drop(x))
    x = sg.ones(64, device=device)
    outs = [masks(x).numpy() for _ in range(4)]
    assert masks.replays == 3
    assert not any(np.array_equal(outs[i], outs[j]) for i in range(4) for j in range(i))
    sg.manual_seed(5)
    again = [drop(x).numpy() for _ in range(2)]
    sg.manual_seed(5)
    replayed = [masks(x).numpy() for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(again, replayed))


def test_compile_module_replays_inference_and_runs_training_eagerly(device):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device)
    compiled = sg.compile(model)
    assert isinstance(compiled, nn.Module) and compiled._orig_mod is model
    assert getattr(compiled, "0") is model[0]  # attributes come from the original
    x = sg.randn(5, 3, device=device)
    with sg.no_grad():
        outs = [compiled(x) for _ in range(3)]
        expected = model(x)
    assert compiled._compiled.replays == 2 and compiled.program is not None
    assert all(np.array_equal(o.numpy(), expected.numpy()) for o in outs)
    with pytest.warns(RuntimeWarning, match="still carries a graph"):
        compiled(x).sum().backward()  # training: eager, so the graph is there
    assert model[0].weight.grad is not None
    assert list(compiled.state_dict())[0].startswith("_orig_mod.")


def test_torch_compile_forms():
    model = nn.Linear(2, 2)
    assert sg.compile(model, disable=True) is model

    @sg.compile(mode="reduce-overhead", fullgraph=False, dynamic=None, backend="inductor")
    def double(x):
        return x * 2

    x = sg.ones(3)
    assert np.array_equal(double(x).numpy(), [2.0, 2.0, 2.0])
    assert np.array_equal(double(x).numpy(), [2.0, 2.0, 2.0]) and double.replays == 1
    with pytest.raises(TypeError, match="Module or a function"):
        sg.compile(3)


def test_fullgraph_raises_instead_of_falling_back():
    def step(x):
        return x.sum().detach().numpy()

    with pytest.raises(RuntimeError, match="fullgraph=True"):
        sg.compile(step, fullgraph=True)(sg.ones(2))


def test_nested_compiled_function_is_recorded_into_the_outer_one():
    inner = sg.compile(lambda x: x * 3)
    for _ in range(3):
        inner(sg.ones(2))  # inner has its own recording and replays

    @sg.compile
    def outer(x):
        return inner(x) + 1

    for _ in range(3):
        out = outer(sg.ones(2))
    assert outer.replays == 2
    assert np.array_equal(out.numpy(), [4.0, 4.0])


def test_cache_size_limit(device):
    double = sg.compile(lambda x: x * 2)
    double.cache_size_limit = 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 5):
            assert double(sg.ones(n, device=device)).shape == (n,)
    assert double.recordings == 2
    assert any("cache_size_limit" in str(w.message) for w in caught)


def test_a_tensor_it_cannot_reach_is_refused(device):
    """A tensor the walk cannot find (held only by an object the function reads) would be
    captured by value: the compiled function says so and runs eagerly instead."""
    holder = type("Holder", (), {})()
    holder.scale = sg.full((3,), 2.0, device=device)

    def scaled(x):
        return x * next(iter(vars(holder).values()))

    compiled = sg.compile(scaled)
    with pytest.warns(RuntimeWarning, match="cannot reach"):
        compiled(sg.ones(3, device=device))
    holder.scale = sg.full((3,), 5.0, device=device)
    assert np.array_equal(compiled(sg.ones(3, device=device)).numpy(), [5.0, 5.0, 5.0])


def test_the_docs_example_prints_what_the_page_shows():
    """docs/compile.md: its example runs and prints exactly the program the page shows."""
    import contextlib
    import io
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "compile.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", page, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/compile.md", "exec"), {})  # noqa: S102
    assert out.getvalue() == "2 1\n" + shown


def test_capturable_adam_follows_the_default_path_closely(device):
    """AdamW(capturable=True) keeps t in a float32 tensor: the same steps as the default
    path up to float32 rounding of the bias corrections (1 - 0.999 in float32 is off by
    1e-5 relative, so parameters moved by lr 0.05 differ by a few 1e-6)."""
    a, b = _twin(lambda: nn.Linear(4, 3), device)
    opts = [sg.optim.AdamW(m.parameters(), lr=0.05, capturable=c) for m, c in ((a, False),
                                                                              (b, True))]
    x = sg.randn(6, 4, device=device)
    for _ in range(10):
        for m, opt in zip((a, b), opts):
            opt.zero_grad()
            (m(x) ** 2).mean().backward()
            opt.step()
    assert sg.is_tensor(opts[1].state[b.weight]["step"]) and opts[0].state[a.weight]["step"] == 10
    for p, q in zip(a.parameters(), b.parameters()):
        assert np.allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=2e-5)


def test_a_replay_frees_each_temporary_after_its_last_use():
    """The program deletes each intermediate array after the last line that reads it, so a
    replay's peak memory is eager's (a few arrays), not every temporary of the step."""
    import tracemalloc

    def chain(x):
        for _ in range(12):
            x = x * 1.5 + 1.0
        return x.sum()

    step = sg.compile(chain)
    x = sg.ones(2**20)  # 4 MiB of float32
    with sg.no_grad():
        for _ in range(3):
            step(x)
        assert step.replays >= 1
        tracemalloc.start()
        tracemalloc.reset_peak()
        step(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert "del " in str(step.program)
    assert peak < 4 * 4 * 2**20, f"a replay held {peak / 2**20:.0f} MiB at its peak"
