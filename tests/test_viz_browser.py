"""The walk-through page as a person sees it: headless Chromium opens the file, the test
clicks Next (and presses the arrow keys) through every step, and what is shown is checked
against the Explanation's numbers. Screenshots are kept as artefacts.

Needs the system's Chromium (Debian: `apt-get install chromium`; `make test` installs it
when run as root). Without it the test is skipped, saying so. Never downloads a browser.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from chromium import BrowserError, Chromium, find_chromium

import smolgrad as sg
from smolgrad import nn
from smolgrad.nn import functional as F
from smolgrad.viz import explain_backward

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed and could not be (Debian: apt-get install chromium; "
           "`make test` does it when run as root)")

ARTEFACTS = Path(os.environ.get("SMOLGRAD_ARTEFACTS",
                                Path(tempfile.gettempdir()) / "smolgrad-artefacts"))


def _shown_text(page) -> str:
    """The text of the step on screen (innerText: what is rendered, not hidden parts)."""
    return page.evaluate("Array.from(document.querySelectorAll('.sgx-step'))"
                         ".filter(s => !s.hidden).map(s => s.innerText).join('\\n')")


def _highlighted(page, state: str) -> list:
    return page.evaluate(f"Array.from(document.querySelectorAll('.sg-node.{state}'))"
                         f".map(g => Number(g.dataset.node)).sort((a, b) => a - b)")


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _assert_values_shown(text: str, values, what: str) -> None:
    for v in np.ravel(values):
        assert _fmt(float(v)) in text, f"{what}: value {_fmt(float(v))} is not shown"


def _check_step(page, ex, step, index: dict) -> None:
    text = _shown_text(page)
    assert page.evaluate("document.querySelector('.sgx-position').textContent") == \
        f"Step {step.index} of {len(ex.steps)}"
    assert f"{step.op} → {step.output_name}" in text
    assert f"∂{ex.root_name}/∂{step.output_name}" in text
    assert _fmt(step.grad_in.norm) in text and _fmt(step.grad_in.mean) in text
    if step.grad_in.values is not None:
        _assert_values_shown(text, step.grad_in.values, f"step {step.index} incoming")
    for item in step.inputs:
        assert f"∂{ex.root_name}/∂{item.name}" in text
        assert _fmt(item.grad.norm) in text
        if item.summed_axes:
            assert f"summed over axes {item.summed_axes}" in text
        if item.grad.values is not None:
            _assert_values_shown(text, item.grad.values, f"step {step.index} {item.name}")
        assert "finite-difference check: PASS" in text
    # the graph: this node is the current one, its inputs receive, earlier ones are done
    assert _highlighted(page, "is-current") == [index[step.output_name]]
    assert _highlighted(page, "is-input") == sorted({index[i.name] for i in step.inputs})
    done = {index[s.output_name] for s in ex.steps[:step.index - 1]}
    assert set(_highlighted(page, "is-done")) == done - {index[step.output_name]}


@pytest.mark.timeout(120)
def test_walkthrough_in_chromium(tmp_path):
    sg.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    x, target = sg.randn(4, 2), sg.randn(4, 1)
    loss = F.mse_loss(mlp(x), target)
    names = {"x": x, "target": target, "loss": loss, **dict(mlp.named_parameters())}
    ex = explain_backward(loss, check=True, params=names)
    path = Path(ex.save_html(tmp_path / "walkthrough.html"))
    index = {n.name: i for i, n in enumerate(ex.graph.nodes)}
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shots = []

    try:
        browser = Chromium(timeout=30)
    except (BrowserError, OSError) as err:
        pytest.skip(f"Chromium could not start here: {err}")
    with browser:
        page = browser.open(path.as_uri(), width=1400, height=900)
        page.wait_for("document.querySelector('.sgx').classList.contains('sgx-ready')")
        assert page.evaluate("document.querySelector('.sgx-prev').disabled") is True
        _check_step(page, ex, ex.steps[0], index)
        shots.append(page.screenshot(str(ARTEFACTS / "walkthrough_step1.png")))
        for step in ex.steps[1:]:
            page.click(".sgx-next")           # a real mouse click on the button
            _check_step(page, ex, step, index)
        page.click(".sgx-next")                # past the last step: the leaves' gradients
        text = _shown_text(page)
        assert page.evaluate("document.querySelector('.sgx-position').textContent") == \
            "After backward"
        assert page.evaluate("document.querySelector('.sgx-next').disabled") is True
        for leaf in ex.leaves:
            grad = dict(mlp.named_parameters())[leaf.name].grad.numpy()
            assert f"{leaf.name}.grad" in text
            _assert_values_shown(text, grad, f"{leaf.name}.grad")
        assert "Finite-difference checks of every step: all passed" in text
        assert _highlighted(page, "is-input") == sorted(index[leaf.name] for leaf in ex.leaves)
        time.sleep(0.4)   # let the colour transitions finish before the picture
        shots.append(page.screenshot(str(ARTEFACTS / "walkthrough_last.png")))

        # the keyboard: left arrow goes back a step, right arrow forward again
        page.press("ArrowLeft")
        _check_step(page, ex, ex.steps[-1], index)
        page.press("ArrowRight")
        assert "leaves’ gradients" in _shown_text(page)
        page.press("Home")
        _check_step(page, ex, ex.steps[0], index)
        # nothing was fetched: the page is one self-contained file
        assert page.requested_urls() == [path.as_uri()]
    for shot in shots:
        assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        print(f"screenshot: {shot}")


def test_summed_axes_shown_in_chromium(tmp_path):
    """A broadcast add: the page shows the (3, 4) gradient before summing and the summed
    axes, as numbers equal to what backward computed."""
    a = sg.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    b = sg.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)
    loss = ((a + b) * sg.arange(12.0).reshape(3, 4)).sum()
    ex = explain_backward(loss, params={"a": a, "b": b, "L": loss})
    path = Path(ex.save_html(tmp_path / "broadcast.html"))
    try:
        browser = Chromium(timeout=30)
    except (BrowserError, OSError) as err:
        pytest.skip(f"Chromium could not start here: {err}")
    with browser:
        page = browser.open(path.as_uri(), width=1200, height=800)
        page.press("End")
        page.press("ArrowLeft")       # the Add step is the last one
        text = _shown_text(page)
    assert "summed over axes (1,)" in text and "summed over axes (0,)" in text
    assert re.search(r"before summing", text)
    _assert_values_shown(text, a.grad.numpy(), "a.grad")   # row sums of arange(12)
    _assert_values_shown(text, b.grad.numpy(), "b.grad")
