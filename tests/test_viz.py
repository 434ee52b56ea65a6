"""smolgrad.viz: draw_graph and explain_backward, their numbers checked against PyTorch."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import torch

import smolgrad as sg
from smolgrad import viz
from smolgrad.viz import draw_graph, explain_backward


def _pair(rng, shape, device, grad=True):
    """The same random float32 values as a smolgrad tensor and a torch tensor."""
    a = rng.standard_normal(shape).astype(np.float32)
    return (sg.tensor(a, device=device, requires_grad=grad),
            torch.tensor(a, requires_grad=grad))


def _assert_summary(summary, expected: torch.Tensor, what: str):
    """A GradSummary against statistics computed by torch from the torch gradient."""
    e = expected.detach().double()
    assert summary.shape == tuple(e.shape), what
    want = [e.mean().item(), e.std(correction=0).item(), e.min().item(), e.max().item(),
            e.norm().item()]
    got = [summary.mean, summary.std, summary.min, summary.max, summary.norm]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


def _step(explanation, op):
    found = [s for s in explanation.steps if s.op == op]
    assert len(found) == 1, f"expected one {op} step, got {[s.op for s in explanation.steps]}"
    return found[0]


# ---------------------------------------------------------------------------------------
# explain_backward
# ---------------------------------------------------------------------------------------


def test_broadcast_add_reports_summed_axes(device):
    rng = np.random.default_rng(1)
    a, ta = _pair(rng, (3, 1), device)
    b, tb = _pair(rng, (4,), device)
    c, tc = _pair(rng, (3, 4), device, grad=False)
    loss = ((a + b) * c).sum()
    ex = explain_backward(loss, params={"a": a, "b": b, "c": c})

    ts = ta + tb
    ts.retain_grad()
    ((ts * tc).sum()).backward()

    assert [s.op for s in ex.steps] == ["Sum", "Mul", "Add"]  # the order backward visits
    add = _step(ex, "Add")
    assert add.output_shape == (3, 4)
    _assert_summary(add.grad_in, ts.grad, "incoming gradient of a + b")
    first, second = add.inputs
    assert (first.name, first.position, first.shape) == ("a", 0, (3, 1))
    assert first.raw_grad_shape == (3, 4) and first.summed_axes == (1,)
    assert (second.name, second.position, second.shape) == ("b", 1, (4,))
    assert second.raw_grad_shape == (3, 4) and second.summed_axes == (0,)
    _assert_summary(first.grad, ta.grad, "final gradient of a")
    _assert_summary(second.grad, tb.grad, "final gradient of b")
    # the Mul step: c is a constant, so only the first argument receives a gradient
    mul = _step(ex, "Mul")
    assert [(i.position, i.summed_axes) for i in mul.inputs] == [(0, ())]
    # it really ran backward: the gradients were accumulated, as backward() does
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-6)
    text = str(ex)
    assert "summed over axes (1,)" in text and "summed over axes (0,)" in text
    assert re.search(r"step 3: Add", text)


def test_matmul_step_with_batch_broadcast(device):
    rng = np.random.default_rng(2)
    x, tx = _pair(rng, (2, 3, 4), device)
    w, tw = _pair(rng, (1, 4, 5), device)  # a batch of one matrix, broadcast over x's batch
    g, tg = _pair(rng, (2, 3, 5), device, grad=False)
    loss = ((x @ w) * g).sum()
    ex = explain_backward(loss, params={"x": x, "w": w})

    tz = tx @ tw
    tz.retain_grad()
    (tz * tg).sum().backward()

    mm = _step(ex, "Matmul")
    assert "Yᵀ" in mm.rule and "Xᵀ" in mm.rule  # the docstring's rule, first paragraph
    _assert_summary(mm.grad_in, tz.grad, "incoming gradient of x @ w")
    gx, gw = mm.inputs
    assert gx.summed_axes == () and gx.raw_grad_shape == (2, 3, 4)
    assert gw.raw_grad_shape == (2, 4, 5) and gw.summed_axes == (0,)  # batch axis summed
    assert gw.shape == (1, 4, 5)
    _assert_summary(gx.grad, tx.grad, "gradient of x")
    _assert_summary(gw.grad, tw.grad, "gradient of w")
    leaves = {leaf.name: leaf for leaf in ex.leaves}
    _assert_summary(leaves["w"].grad, tw.grad, "leaf gradient of w")


def test_check_passes_on_correct_ops(device):
    rng = np.random.default_rng(3)
    x, _ = _pair(rng, (5, 4), device)        # 20 elements: checked element by element
    w, _ = _pair(rng, (4, 6), device)        # 24 elements: a random direction
    b, _ = _pair(rng, (6,), device)
    h = (x @ w + b).tanh()
    loss = (h * h.exp()).mean() / 3.0 - b.sum()
    ex = explain_backward(loss, check=True)
    checks = ex.checks
    assert len(checks) == sum(len(s.inputs) for s in ex.steps) > 0
    assert {c.method for c in checks} == {"full", "directional"}
    for c in checks:
        assert c.passed is True, str(c)
        assert c.max_abs_error < 1e-4
        assert len(c.analytic) == len(c.numerical) >= 1
    assert ex.passed is True
    assert "FAIL" not in str(ex)


def test_check_passes_across_op_families(device):
    """Ops whose nodes hold non-tensor arguments (dims, index keys, einsum specs, dtypes)
    and constant tensor arguments (indices, masks) are recomputed correctly by the check."""
    rng = np.random.default_rng(7)
    x, _ = _pair(rng, (4, 5), device)
    w, _ = _pair(rng, (5, 3), device)
    h = sg.cat([x, x * 2], dim=1)[:, 1:6]
    h = sg.einsum("ij,jk->ik", h, w)
    s = h.softmax(dim=-1).log() + h.log_softmax(dim=-1)
    g = s.gather(1, sg.tensor([[0], [2], [1], [2]], device=device))
    m = sg.where(g > 0, g, g * 0.1).to(sg.float64).float()
    v = m.reshape(2, 2).transpose(0, 1).flatten()[sg.tensor([0, 3], device=device)]
    loss = v.sum() + x.amax() + x.var() + (x.abs() + 1).sqrt().prod(dim=0).mean()
    ex = explain_backward(loss, check=True)
    ops = {s.op for s in ex.steps}
    assert {"Cat", "GetItem", "Einsum", "Softmax", "LogSoftmax", "Gather", "Where"} <= ops
    failed = [(s.op, str(i.check)) for s in ex.steps for i in s.inputs
              if i.check.passed is not True]
    assert not failed
    dot = draw_graph(loss).dot
    assert "GetItem([:, 1:6])" in dot and "Einsum('ij,jk->ik')" in dot


class _Square(sg.autograd.Function):
    """y = x²      dy/dx = 2x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class _WrongSquare(sg.autograd.Function):
    """y = x²      dy/dx = 3x  (deliberately wrong)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * grad


@pytest.mark.parametrize("shape", [(3,), (6, 7)])
def test_check_catches_a_wrong_backward(device, shape):
    rng = np.random.default_rng(4)
    x, _ = _pair(rng, shape, device)
    w, _ = _pair(rng, shape, device)
    loss = (_WrongSquare.apply(x) * w).sum() + (_Square.apply(w)).sum()
    ex = explain_backward(loss, check=True, params={"x": x, "w": w})
    wrong = _step(ex, "_WrongSquare")
    assert wrong.rule.startswith("y = x²")
    (inp,) = wrong.inputs
    assert inp.check.passed is False
    # the numbers behind the verdict: analytic = <3x·g, v>, numerical ≈ <2x·g, v>
    analytic, numerical = np.array(inp.check.analytic), np.array(inp.check.numerical)
    np.testing.assert_allclose(analytic, 1.5 * numerical, rtol=1e-3, atol=1e-5)
    right = _step(ex, "_Square")
    assert right.inputs[0].check.passed is True
    assert ex.passed is False
    text = str(ex)
    assert "check: FAIL" in text and "SOME CHECKS FAILED" in text


class _Noisy(sg.autograd.Function):
    """y = x + noise   dy/dx = 1"""

    @staticmethod
    def forward(ctx, x):
        return x + sg.rand(*x.shape, dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx, grad):
        return grad


def test_check_skips_random_forward(device):
    x = sg.ones(3, device=device, requires_grad=True)
    ex = explain_backward(_Noisy.apply(x).sum(), check=True)
    check = _step(ex, "_Noisy").inputs[0].check
    assert check.passed is None and "random" in check.note
    assert "SKIPPED" in str(ex)


def test_accumulate_like_backward_or_not(device):
    rng = np.random.default_rng(5)
    x, tx = _pair(rng, (4,), device)
    loss = (x * x).sum()
    explain_backward(loss, accumulate=False)
    assert x.grad is None  # only looked
    explain_backward(loss)
    explain_backward(loss)  # the graph was retained, so a second pass works and adds up
    (tx * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * tx.grad.numpy(), rtol=1e-5)


def test_x_times_x_reports_both_arguments(device):
    x = sg.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    ex = explain_backward((x * x).sum(), check=True)
    mul = _step(ex, "Mul")
    assert [i.position for i in mul.inputs] == [0, 1]
    for i in mul.inputs:  # each argument's gradient is x·g (one factor each), norm |x|
        assert i.grad.norm == pytest.approx(np.sqrt(14.0), rel=1e-6)
        assert i.check.passed is True
    (leaf,) = ex.leaves
    assert leaf.grad.norm == pytest.approx(2 * np.sqrt(14.0), rel=1e-6)


def test_non_scalar_needs_gradient(device):
    x = sg.ones(2, 3, device=device, requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"explain_backward.*\(2, 3\).*gradient="):
        explain_backward(y)
    seed = sg.full((2, 3), 0.5, device=device)
    ex = explain_backward(y, gradient=seed)
    assert ex.seed.mean == pytest.approx(0.5)
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 1.0))


def test_freed_graph_is_a_clear_error(device):
    x = sg.ones(3, device=device, requires_grad=True)
    loss = (x.exp() * 2.0).sum()
    loss.backward()
    for fn in (draw_graph, explain_backward):
        with pytest.raises(RuntimeError, match="retain_graph=True") as err:
            fn(loss)
        assert fn.__name__ in str(err.value) and "freed" in str(err.value)


def test_no_graph_is_a_clear_error(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        draw_graph(sg.ones(3, device=device) * 2)


def test_html_page_sections_match_the_steps(device, tmp_path):
    rng = np.random.default_rng(7)
    a, ta = _pair(rng, (3, 1), device)
    b, tb = _pair(rng, (4,), device)
    loss = ((a + b) ** 2).sum()
    ex = explain_backward(loss, check=True, params={"a": a, "b": b, "L": loss})
    (ta + tb).pow(2).sum().backward()
    path = ex.save_html(tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert path == str(tmp_path / "page.html") and page.startswith("<!DOCTYPE html>")
    sections = re.findall(r'<section class="sgx-step[^"]*" data-step="([^"]+)" '
                          r'data-node="([^"]*)" data-inputs="([^"]*)">', page)
    assert [s[0] for s in sections] == [str(s.index) for s in ex.steps] + ["end"]
    index = {n.name: str(i) for i, n in enumerate(ex.graph.nodes)}
    for (_, node, inputs), step in zip(sections, ex.steps):
        assert node == index[step.output_name]
        assert inputs.split() == [index[i.name] for i in step.inputs]
    assert sections[-1][2].split() == [index["a"], index["b"]]
    # every graph box is in the inline SVG, and the page loads nothing from elsewhere
    assert page.count('class="sg-node"') == len(ex.graph.nodes)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script src" not in page and "<link" not in page
    # the broadcast sum is spelled out, with the gradient before and after it
    add = _step(ex, "Add")
    assert add.inputs[0].raw_grad is not None and add.inputs[0].raw_grad.shape == (3, 4)
    assert "summed over axes <b>(1,)</b>" in page and "summed over axes <b>(0,)</b>" in page
    np.testing.assert_allclose(np.array(ex.leaves[0].grad.values), ta.grad.numpy(),
                               rtol=1e-5, atol=1e-6)
    assert "finite-difference check: PASS" in page and "FAIL" not in page
    with pytest.raises(ValueError, match="save_html"):
        ex.save_html(tmp_path / "page.txt")


def test_notebook_html_is_the_same_walkthrough(device):
    a = sg.ones(3, 1, device=device, requires_grad=True)
    b = sg.ones(4, device=device, requires_grad=True)
    ex = explain_backward((a + b).sum(), params={"a": a, "b": b})
    first, second = ex._repr_html_(), ex._repr_html_()
    ids = [re.search(r'<div class="sgx" id="([\w-]+)"', h).group(1) for h in (first, second)]
    assert ids[0] != ids[1]  # two cells of one notebook do not steer each other
    assert first.count('<section class="sgx-step') == len(ex.steps) + 1 == 3
    assert "(1,)" in first and "Add" in first and "<html" not in first


def test_small_gradients_keep_their_values(device):
    rng = np.random.default_rng(8)
    w, tw = _pair(rng, (4, 3), device)
    big, tbig = _pair(rng, (9, 9), device)   # 81 elements: over the limit
    ex = explain_backward((w.tanh().sum() + (big * 2).sum()), params={"w": w, "big": big})
    (tw.tanh().sum() + (tbig * 2).sum()).backward()
    leaves = {leaf.name: leaf for leaf in ex.leaves}
    np.testing.assert_allclose(np.array(leaves["w"].grad.values), tw.grad.numpy(),
                               rtol=1e-5, atol=1e-6)
    assert leaves["big"].grad.values is None


# ---------------------------------------------------------------------------------------
# draw_graph
# ---------------------------------------------------------------------------------------


class _TinyModel:
    """Anything with named_parameters() names the graph's leaves (as nn.Module does)."""

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias

    def named_parameters(self):
        return [("layer.weight", self.weight), ("layer.bias", self.bias)]


def _model_graph(device):
    rng = np.random.default_rng(6)
    w, tw = _pair(rng, (3, 2), device)
    b, tb = _pair(rng, (2,), device)
    x, tx = _pair(rng, (5, 3), device, grad=False)
    return (w, b, x), (tw, tb, tx)


def test_draw_graph_before_and_after_backward(device):
    (w, b, x), (tw, tb, tx) = _model_graph(device)
    model = _TinyModel(w, b)
    z = (x @ w + b).relu()
    loss = (z * z).mean()

    before = draw_graph(loss, params=model)
    assert "grad norm" not in before.dot
    for text in ("Matmul", "Add", "Relu", "Mul", "Div", "layer.weight", "layer.bias",
                 "(3, 2)", "(2,)", "(5, 3)", "(5, 2)", "float32", "constant"):
        assert text in before.dot, text
    assert before.dot.startswith("digraph") and before.dot.rstrip().endswith("}")

    loss.backward(retain_graph=True)
    g = draw_graph(loss, params=model)
    tz = (tx @ tw + tb).relu()
    tz.retain_grad()
    (tz * tz).mean().backward()
    by_name = {n.name: n for n in g.nodes}
    assert by_name["layer.weight"].grad_norm == pytest.approx(tw.grad.norm().item(), rel=1e-5)
    assert by_name["layer.bias"].grad_norm == pytest.approx(tb.grad.norm().item(), rel=1e-5)
    relu = [n for n in g.nodes if n.op == "Relu"][0]
    assert relu.grad_norm == pytest.approx(tz.grad.norm().item(), rel=1e-5)
    assert [n for n in g.nodes if n.kind == "output"][0].grad_norm == pytest.approx(1.0)
    assert by_name[[n for n in g.nodes if n.kind == "constant"][0].name].grad_norm is None
    for n in g.nodes:  # every node's norm is in the DOT text as printed
        if n.grad_norm is not None:
            assert f"grad norm {n.grad_norm:.4g}" in g.dot
    # the recomputed norms stored nothing: the leaves' .grad is what backward left
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)
    # one box per tensor: x, w, b and six op results (mean is Sum then Div); one edge per
    # tensor argument: Matmul 2, Add 2, Relu 1, Mul 2 (z twice), Sum 1, Div 1
    assert len(g.nodes) == 9
    assert g.dot.count("->") == sum(len(n.inputs) for n in g.nodes) == 9


def test_draw_graph_save(device, tmp_path, monkeypatch):
    (w, b, x), _ = _model_graph(device)
    g = draw_graph((x @ w + b).sum(), params={"w": w, "b": b, "x": x})
    written = g.save(tmp_path / "graph.dot")
    assert written == [str(tmp_path / "graph.dot")]
    assert (tmp_path / "graph.dot").read_text() == g.dot

    # without Graphviz the built-in layout draws the picture: no warning, SVG and PNG
    monkeypatch.setattr(viz.graph, "_dot_program", lambda: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert g.save(tmp_path / "pic.svg") == [str(tmp_path / "pic.dot"),
                                                 str(tmp_path / "pic.svg")]
        g.save(tmp_path / "pic.png")
    assert (tmp_path / "pic.svg").read_text() == g.svg()
    assert (tmp_path / "pic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert g._repr_svg_() == g.svg()
    with pytest.raises(RuntimeError, match="Graphviz"):
        g.render("png", renderer="graphviz")
    with pytest.raises(ValueError, match="renderer"):
        g.render("svg", renderer="dot")

    # neither Graphviz nor networkx: only the DOT text, and a warning that says why
    monkeypatch.setattr(viz.graph, "_missing_modules", lambda fmt: ["networkx"])
    with pytest.warns(UserWarning, match="networkx"):
        written = g.save(tmp_path / "none.svg")
    assert written == [str(tmp_path / "none.dot")] and not (tmp_path / "none.svg").exists()
    assert g._repr_svg_() is None and "<pre>" in g._repr_html_()

    # with Graphviz present, its drawing is preferred, next to the DOT file
    monkeypatch.setattr(viz.graph, "_dot_program", lambda: "/usr/bin/dot")
    monkeypatch.setattr(viz.graph, "_render", lambda dot, fmt: f"<{fmt} of {len(dot)}>".encode())
    g2 = draw_graph((x @ w).sum(), format="png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = g2.save(tmp_path / "plain")
    assert written == [str(tmp_path / "plain.dot"), str(tmp_path / "plain.png")]
    assert (tmp_path / "plain.png").read_bytes() == f"<png of {len(g2.dot)}>".encode()
    assert g2._repr_html_().startswith("<svg")


@pytest.mark.skipif(not viz.Graph.has_graphviz(), reason="Graphviz's dot program not installed")
def test_real_graphviz_svg(device, tmp_path):
    x = sg.ones(2, device=device, requires_grad=True)
    g = draw_graph((x * 3).sum())
    g.save(tmp_path / "g.svg", renderer="graphviz")
    assert "<svg" in (tmp_path / "g.svg").read_text()


def _svg_texts(svg: str) -> tuple:
    """(the <g class="sg-node"> elements, every text line in them) of a built-in SVG."""
    root = ElementTree.fromstring(svg)   # it parses as XML
    ns = "{http://www.w3.org/2000/svg}"
    boxes = [g for g in root.iter(f"{ns}g") if g.get("class") == "sg-node"]
    return boxes, [[t.text for t in g.iter(f"{ns}text")] for g in boxes]


def test_builtin_svg_parses_and_shows_every_label(device):
    (w, b, x), (tw, tb, tx) = _model_graph(device)
    loss = ((x @ w + b).relu() ** 2).mean()
    loss.backward(retain_graph=True)
    g = draw_graph(loss, params={"w": w, "b": b, "x": x, "loss": loss})
    boxes, texts = _svg_texts(g.svg())
    assert [int(box.get("data-node")) for box in boxes] == list(range(len(g.nodes)))
    for node, lines in zip(g.nodes, texts):
        assert lines == node.label_lines()   # op, shape, dtype and grad norm, as in DOT
        assert f"{node.shape} {node.dtype}" in lines
        if node.op is not None:
            assert node.op in lines[0]
    ((tx @ tw + tb).relu() ** 2).mean().backward()
    by_name = {n.name: lines for n, lines in zip(g.nodes, texts)}
    assert f"grad norm {tw.grad.norm().item():.4g}" in by_name["w"]
    edges = re.findall(r'class="sg-edge" data-from="(\d+)" data-to="(\d+)"', g.svg())
    index = {n.name: i for i, n in enumerate(g.nodes)}
    assert sorted((int(f), int(t)) for f, t in edges) == sorted(
        (index[s], i) for i, n in enumerate(g.nodes) for s in n.inputs)


def test_builtin_layout_puts_inputs_above_results(device):
    (w, b, x), _ = _model_graph(device)
    z = x @ w + b
    g = draw_graph((z * z).sum(), params={"w": w, "b": b, "x": x})
    layout = g.layout()
    boxes = layout.boxes
    index = {n.name: i for i, n in enumerate(g.nodes)}
    for i, n in enumerate(g.nodes):
        for s in n.inputs:   # every arrow points down
            assert boxes[index[s]].y + boxes[index[s]].height / 2 < \
                boxes[i].y - boxes[i].height / 2
    for one in boxes:        # no two boxes overlap
        for other in boxes:
            if one is not other and abs(one.y - other.y) < 1:
                assert abs(one.x - other.x) >= (one.width + other.width) / 2
    assert all(0 <= b.x - b.width / 2 and b.x + b.width / 2 <= layout.width for b in boxes)
    assert len(layout.arrows) == sum(len(n.inputs) for n in g.nodes)  # z * z: two arrows
    assert g.svg() == draw_graph((z * z).sum(), params={"w": w, "b": b, "x": x}).svg()


def _two_block_model(device):
    from smolgrad import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(4)
            self.fc = nn.Linear(4, 4)

        def forward(self, h):
            return h + self.fc(self.norm(h).tanh())

    sg.manual_seed(0)
    return nn.Sequential(Block(), Block(), nn.Linear(4, 2)).to(device)


def test_group_by_module(device):
    model = _two_block_model(device)
    loss = model(sg.randn(3, 4, device=device)).pow(2).mean()
    full = draw_graph(loss, params=model)
    owning = draw_graph(loss, params=model, group_by="module")
    blocks = draw_graph(loss, params=model, group_by="module", group_depth=1)
    kinds = {n.name: n.kind for n in owning.nodes}
    assert {k for k, v in kinds.items() if v == "module"} == {"0.norm", "0.fc", "1.norm",
                                                              "1.fc", "2"}
    modules = {n.name: n for n in blocks.nodes if n.kind == "module"}
    assert set(modules) == {"0", "1", "2"}
    # a block's box holds its parameters, the ops that use them and the tanh between
    # them; the residual sum h + ... that leaves the block keeps its own box
    ops = {n.name: n.op for n in full.nodes}
    assert sorted(ops[m] for m in modules["0"].members if ops[m]) == \
        ["Add", "Linear", "Mul", "Tanh"]   # LayerNorm's affine Mul/Add, fc, tanh
    assert "0.fc.weight" in modules["0"].members
    residual = [n for n in blocks.nodes if n.op == "Add"]
    assert len(residual) == 2 and "0" in residual[0].inputs
    assert len(blocks.nodes) < len(owning.nodes) < len(full.nodes)
    assert "0 (module)" in blocks.dot and "(3, 4) float32" in blocks.dot
    _, texts = _svg_texts(blocks.svg())
    assert ["0 (module)"] == [lines[0] for lines in texts if lines[0].startswith("0 ")]
    with pytest.raises(ValueError, match="group_by"):
        draw_graph(loss, group_by="layer")
    with pytest.raises(ValueError, match="group_depth"):
        draw_graph(loss, group_depth=2)


def test_shared_weight_is_not_collapsed(device):
    from smolgrad import nn

    emb = nn.Embedding(5, 3).to(device)   # used first and last, like GPT-2's tied wte
    head = nn.Linear(3, 3).to(device)
    idx = sg.tensor([1, 2], device=device)
    logits = nn.functional.linear(head(emb(idx).tanh()), emb.weight)  # tied, as GPT-2
    model = nn.ModuleDict({"emb": emb, "head": head})
    g = draw_graph(logits.sum(), params=model, group_by="module")
    names = [n.name for n in g.nodes]
    assert "emb.weight" in names and "head" in names  # no box of emb: it would loop
    g.layout()   # a loop would make the layered layout impossible


def test_max_nodes_keeps_the_end_and_says_so(device):
    x = sg.ones(3, device=device, requires_grad=True)
    h = x
    for _ in range(30):
        h = (h * 1.01).tanh()
    g = draw_graph(h.sum(), max_nodes=10)
    assert len(g.nodes) == 10 and g.nodes[0].kind == "more"
    assert "showing 9 of 62 boxes" in g.note and "max_nodes" in g.note
    assert g.note in g.dot and g.note in g.svg()
    assert [n.op for n in g.nodes[-3:]] == ["Mul", "Tanh", "Sum"]   # the end is kept
    assert g.nodes[1].inputs == [g.nodes[0].name]
    with pytest.raises(ValueError, match="max_nodes"):
        draw_graph(h.sum(), max_nodes=1)


def test_draw_graph_names_nn_module_parameters(device):
    from smolgrad import nn

    model = nn.Linear(3, 2).to(device)
    x = sg.randn(4, 3, device=device)
    loss = model(x).sum()
    ex = explain_backward(loss, params=model)
    names = {leaf.name: leaf for leaf in ex.leaves}
    assert set(names) == {"weight", "bias"}
    assert names["weight"].kind == "parameter" and names["weight"].shape == (2, 3)
    # d(sum(x @ W.T + b))/dW[i, j] = sum over rows of x[:, j]; d/db = number of rows
    expected_w = np.tile(x.numpy().sum(axis=0), (2, 1))
    np.testing.assert_allclose(model.weight.grad.numpy(), expected_w, rtol=1e-5, atol=1e-6)
    assert names["bias"].grad.mean == pytest.approx(4.0)
    dot = draw_graph(loss, params=dict(model.named_parameters())).dot
    assert "weight (parameter)" in dot and "bias (parameter)" in dot
    assert re.search(r"grad norm [0-9.]+", dot)


def test_demo_leaves_a_picture_and_a_page_without_graphviz(device, tmp_path, monkeypatch):
    from smolgrad import demo

    monkeypatch.setattr(viz.graph, "_dot_program", lambda: None)   # a fresh machine
    sg.manual_seed(0)
    model = demo.DigitsCNN().to(device)
    images = sg.randn(2, 1, 8, 8, device=device)
    labels = sg.tensor([3, 7], device=device)
    written = demo.save_graph(model, images, labels, str(tmp_path))
    assert [Path(p).name for p in written] == ["model_graph.dot", "model_graph.svg",
                                               "model_graph.png"]
    _, texts = _svg_texts((tmp_path / "model_graph.svg").read_text())
    firsts = [lines[0] for lines in texts]
    for name in ("images (constant)", "conv1.weight (parameter)", "fc2.bias (parameter)"):
        assert name in firsts
    assert (tmp_path / "model_graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = Path(demo.save_walkthrough(str(tmp_path), device))
    assert page.name == "backward_walkthrough.html"
    assert "Finite-difference checks of every step: <b>all passed</b>" in page.read_text()


def test_explanation_writes_shapes_as_tuples(device, tmp_path):
    # shapes are torch.Size objects; the walk-through reads better with plain (2, 3)
    w = sg.randn(2, 3, requires_grad=True, device=device)
    ex = explain_backward((w * 2.0).sum())
    text, page = str(ex), Path(ex.save_html(tmp_path / "steps.html")).read_text()
    assert "shape (2, 3)" in text and "shape (2, 3)" in page
    assert "Size" not in text and "torch.Size" not in page
