"""`python -m smolgrad.demo`: a tiny in-process run checks every output; the full run
(marked slow) checks the promised >= 97% test accuracy."""

from __future__ import annotations

import os
import re

import pytest

from smolgrad import demo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _accuracy(text: str) -> float:
    match = re.search(r"test accuracy: ([\d.]+)% \((\d+)/(\d+)\)", text)
    assert match, text
    value, correct, total = float(match.group(1)), int(match.group(2)), int(match.group(3))
    assert total == 360 and abs(100 * correct / total - value) < 0.01
    return value


def test_quick_demo_writes_plot_and_graph(tmp_path, device, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out), "--device", device,
                      "--no-progress"]) == 0
    text = capsys.readouterr().out
    accuracy = _accuracy(text)
    assert accuracy > 30.0   # two short epochs are already far above chance (10%)
    plot = out / "training_curves.png"
    assert plot.read_bytes()[:8] == PNG_SIGNATURE and plot.stat().st_size > 5000
    dot = (out / "model_graph.dot").read_text()
    assert dot.lstrip().startswith("digraph") and dot.rstrip().endswith("}")
    for name in ("images", "loss", "conv1.weight", "conv2.bias", "fc1.weight", "fc2.weight"):
        assert name in dot, f"parameter {name} is not named in the graph"
    svg = out / "model_graph.svg"
    if svg.exists():
        assert "<svg" in svg.read_text()
    assert str(plot) in text and str(out / "model_graph.dot") in text


def test_run_demo_returns_history(tmp_path, device):
    result = demo.run_demo(epochs=2, train_limit=200, device=device, out=str(tmp_path),
                           progress=False)
    assert len(result.history["loss"]) == 2 and len(result.history["test_acc"]) == 2
    assert result.history["loss"][1] < result.history["loss"][0]
    assert os.path.isfile(result.plot_path)


def test_demo_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--device", "--out", "--batch-size", "--seed", "--quick"):
        assert flag in text
    with pytest.raises(SystemExit, match="at least 1"):
        demo.main(["--epochs", "0"])


def test_split_is_stratified_and_fixed():
    train_x, train_y, test_x, test_y = demo.load_digits_split()
    assert train_x.shape == (1437, 1, 8, 8) and test_x.shape == (360, 1, 8, 8)
    counts = [(test_y == k).sum() for k in range(10)]
    assert min(counts) >= 35 and max(counts) <= 37     # ~20% of each of the ~180 per class
    again = demo.load_digits_split()
    assert (again[3] == test_y).all()


@pytest.mark.slow
def test_full_demo_reaches_97_percent(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--no-progress"]) == 0
    accuracy = _accuracy(capsys.readouterr().out)
    assert accuracy >= 97.0
