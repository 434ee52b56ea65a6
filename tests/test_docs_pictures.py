"""docs/img is current: the tutorial's pictures are what docs/make_pictures.py makes now.

The SVG and the walk-through page are regenerated and compared with the committed files
as text, numbers up to one unit in their last printed digit (the rule of test_docs.py:
float rounding may differ between machines' math libraries, structure and labels may
not). The screenshot carries the SHA-256 of the page it shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

from test_docs import same_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import make_pictures  # noqa: E402

IMG = ROOT / "docs" / "img"
HOW = "regenerate with: .venv/bin/python docs/make_pictures.py"


def test_pictures_are_current(tmp_path):
    for fresh in make_pictures.write_pictures(tmp_path):
        committed = IMG / fresh.name
        assert committed.exists(), f"docs/img/{fresh.name} is missing; {HOW}"
        assert same_output(fresh.read_text(encoding="utf-8"),
                           committed.read_text(encoding="utf-8")), \
            f"docs/img/{fresh.name} is not what docs/make_pictures.py makes now; {HOW}"


def test_screenshot_shows_the_committed_page():
    stamp = make_pictures.read_png_text((IMG / "mlp_backward.png").read_bytes())
    assert stamp.get(make_pictures.STAMP_KEY) == \
        make_pictures.page_digest(IMG / "mlp_backward.html"), \
        f"docs/img/mlp_backward.png was taken of another version of the page; {HOW}"


def test_stamp_round_trip():
    png = (IMG / "mlp_backward.png").read_bytes()
    stamped = make_pictures.stamp_png(png, "k", "v")
    assert make_pictures.read_png_text(stamped)["k"] == "v"


def test_tutorial_shows_the_pictures():
    text = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    for name in ("img/neuron_graph.svg", "img/mlp_backward.png", "img/mlp_backward.html",
                 "pytorch.md"):
        assert name in text, f"docs/tutorial.md does not link {name}"
