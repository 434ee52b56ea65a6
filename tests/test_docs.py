"""The documentation's code runs: every ```python block of docs/tutorial.md and README.md.

The blocks of one file run in order in one shared namespace, as a reader would type them.
In the tutorial, a ```text block right after a ```python block is the output that block
prints; on the CPU (NumPy) backend that shown output must be exactly what it prints, so
the page can never show numbers the code does not produce.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import smolgrad as sg

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"
README = ROOT / "README.md"

_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")


def _fenced(text: str) -> list:
    """Fenced code blocks as (language, code, first code line, closing fence line);
    line numbers count from 1."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = _FENCE.match(lines[i].strip())
        if not opening:
            i += 1
            continue
        fence, lang, start = opening.group(1), opening.group(2).lower(), i + 2
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        blocks.append((lang, "\n".join(body) + "\n", start, i + 1))
        i += 1
    return blocks


def extract_blocks(text: str) -> list:
    """Fenced code blocks as (language, code, first code line), in document order."""
    return [(lang, code, start) for lang, code, start, _ in _fenced(text)]


def python_blocks_with_output(text: str) -> list:
    """(code, line, expected output or None) for each python block; the expected output is
    a ```text block that follows it with only blank lines in between."""
    blocks, lines = _fenced(text), text.splitlines()
    result = []
    for k, (lang, code, start, end) in enumerate(blocks):
        if lang not in ("python", "py"):
            continue
        expected = None
        if k + 1 < len(blocks) and blocks[k + 1][0] == "text":
            gap = lines[end:blocks[k + 1][2] - 2]  # between the closing and opening fences
            if all(not s.strip() for s in gap):
                expected = blocks[k + 1][1]
        result.append((code, start, expected))
    return result


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def same_output(got: str, want: str) -> bool:
    """Shown output == printed output, text exactly (trailing spaces aside), numbers up to
    one unit in their last printed digit (or 1e-6): float rounding may differ between
    machines' math libraries, but a shape, a count or a verdict may not."""
    got_lines = [s.rstrip() for s in got.rstrip().splitlines()]
    want_lines = [s.rstrip() for s in want.rstrip().splitlines()]
    if len(got_lines) != len(want_lines):
        return False
    for g, w in zip(got_lines, want_lines):
        if _NUMBER.split(g) != _NUMBER.split(w):
            return False
        for a, b in zip(_NUMBER.findall(g), _NUMBER.findall(w)):
            if not any(c in b for c in ".eE"):  # integers (shapes, steps, counts): exact
                if a != b:
                    return False
                continue
            mantissa, _, exponent = b.lower().partition("e")
            decimals = len(mantissa.partition(".")[2])
            unit = 10.0 ** (int(exponent or 0) - decimals)
            if abs(float(a) - float(b)) > unit + 1e-6:
                return False
    return True


def test_same_output_rule():
    assert same_output("loss 0.0080\nshape (3, 4)\n", "loss 0.0079\nshape (3, 4)")
    assert same_output("max |error| 3.1e-11", "max |error| 2.51e-11")
    assert not same_output("loss 0.0082", "loss 0.0079")
    assert not same_output("shape (3, 5)", "shape (3, 4)")
    assert not same_output("check: FAIL", "check: PASS")
    assert not same_output("a\nb", "a")


def test_extract_blocks_finds_fences_and_outputs():
    doc = ("intro\n```python\nprint(1)\n```\n\n```text\n1\n```\nprose\n```bash\nls\n```\n"
           "```python\nx = 2\n```\nmore prose\n```text\nnot an output\n```\n")
    blocks = extract_blocks(doc)
    assert [b[0] for b in blocks] == ["python", "text", "bash", "python", "text"]
    assert blocks[0][1:] == ("print(1)\n", 3)
    assert python_blocks_with_output(doc) == [("print(1)\n", 3, "1\n"), ("x = 2\n", 14, None)]


def _run_file(path: Path, device: str, compare_output: bool, tmp_path, monkeypatch) -> int:
    blocks = python_blocks_with_output(path.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip(f"{path.name} has no ```python blocks")
    monkeypatch.chdir(tmp_path)  # files a block writes land in a temporary folder
    monkeypatch.setenv("MPLBACKEND", "Agg")
    previous = sg.get_default_device()
    sg.set_default_device(device)
    namespace = {"__name__": "__main__"}
    try:
        for code, line, expected in blocks:
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                try:
                    exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
                except Exception as err:
                    raise AssertionError(f"the python block at {path.name} line {line} "
                                         f"raised {type(err).__name__}: {err}") from err
            if compare_output and expected is not None:
                got = stdout.getvalue()
                assert same_output(got, expected), (
                    f"{path.name} line {line}: the output shown in the ```text block below "
                    f"the code is not what it prints; it prints:\n{got}")
    finally:
        sg.set_default_device(previous)
    return len(blocks)


def test_tutorial_runs(device, tmp_path, monkeypatch):
    # the exact numbers shown come from NumPy's random generator and float32 order of
    # operations; other backends run the same code and must not fail
    assert _run_file(TUTORIAL, device, device == "cpu", tmp_path, monkeypatch) >= 8


def test_readme_runs(device, tmp_path, monkeypatch):
    if not README.exists():
        pytest.skip("no README.md")
    _run_file(README, device, False, tmp_path, monkeypatch)
