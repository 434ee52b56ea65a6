"""Regenerate the pictures of docs/tutorial.md (run from the repository root):

    .venv/bin/python docs/make_pictures.py

writes into docs/img/:

    neuron_graph.svg        section 2's neuron, drawn by draw_graph after backward
    mlp_backward.html       the demo's walk-through page of a tiny MLP (open it in a browser)
    mlp_backward.png        a screenshot of that page at step 1, taken with headless
                            Chromium when it is installed (else left as it is)

The SVG and the HTML come out the same on every machine (the built-in layout, not
Graphviz); tests/test_docs_pictures.py regenerates them and compares them with the
committed files. A screenshot's pixels depend on the machine's fonts, so the PNG instead
carries the SHA-256 of the HTML page it shows (a PNG text chunk), which the test checks.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
STAMP_KEY = "smolgrad-page-sha256"


def neuron_graph_svg() -> str:
    """Section 2 of the tutorial: L = (tanh(w·x + b) - 1)², after backward."""
    import smolgrad as sg
    from smolgrad.viz import draw_graph

    x = sg.tensor(0.5)
    w = sg.tensor(1.5, requires_grad=True)
    b = sg.tensor(-0.2, requires_grad=True)
    p = w * x
    u = p + b
    h = u.tanh()
    e = h - 1.0
    L = e ** 2
    L.backward(retain_graph=True)
    names = {"x": x, "w": w, "b": b, "p": p, "u": u, "h": h, "e": e, "L": L}
    return draw_graph(L, params=names).render("svg", renderer="builtin").decode("utf-8")


def write_pictures(folder: Path) -> list:
    """Write the SVG and the HTML page into `folder`; returns their paths."""
    from smolgrad.demo import save_walkthrough

    folder.mkdir(parents=True, exist_ok=True)
    svg = folder / "neuron_graph.svg"
    svg.write_text(neuron_graph_svg(), encoding="utf-8")
    page = Path(save_walkthrough(str(folder), "cpu"))
    html = page.rename(folder / "mlp_backward.html")
    return [svg, html]


def page_digest(html_path: Path) -> str:
    return hashlib.sha256(html_path.read_bytes()).hexdigest()


def stamp_png(png: bytes, key: str, value: str) -> bytes:
    """The PNG with a tEXt chunk `key`=`value` added right after its header chunk."""
    data = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = (struct.pack(">I", len(data)) + b"tEXt" + data
             + struct.pack(">I", zlib.crc32(b"tEXt" + data)))
    header_end = 8 + 4 + 4 + 13 + 4   # signature, then IHDR: length, type, data, crc
    return png[:header_end] + chunk + png[header_end:]


def read_png_text(png: bytes) -> dict:
    """The tEXt chunks of a PNG, as {key: value}."""
    found, pos = {}, 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"tEXt":
            key, _, value = png[pos + 8:pos + 8 + length].partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return found


def screenshot(html_path: Path, png_path: Path) -> bool:
    """Step 1 of the page in headless Chromium, stamped with the page's digest; False
    when Chromium is not installed."""
    sys.path.insert(0, str(ROOT / "tests"))
    from chromium import Chromium, find_chromium

    if find_chromium() is None:
        return False
    with tempfile.TemporaryDirectory() as tmp, Chromium() as browser:
        page = browser.open(html_path.resolve().as_uri(), width=1280, height=820)
        page.wait_for("document.querySelector('.sgx').classList.contains('sgx-ready')")
        shot = Path(page.screenshot(str(Path(tmp) / "shot.png"))).read_bytes()
    png_path.write_bytes(stamp_png(shot, STAMP_KEY, page_digest(html_path)))
    return True


def main() -> int:
    svg, html = write_pictures(IMG)
    print(f"wrote {svg.relative_to(ROOT)} and {html.relative_to(ROOT)}")
    png = IMG / "mlp_backward.png"
    if screenshot(html, png):
        print(f"wrote {png.relative_to(ROOT)}")
    else:
        print(f"Chromium is not installed: {png.relative_to(ROOT)} was not updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
