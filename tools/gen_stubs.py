"""Write the type stubs generated from the op registry (smolgrad/registry.py).

    .venv/bin/python tools/gen_stubs.py          # rewrite the stubs
    .venv/bin/python tools/gen_stubs.py --check  # exit 1 if a committed stub is stale

smolgrad/_tensor_methods.pyi lists every method attached to Tensor at import time (the
base class `TensorMethods` that engine.Tensor inherits from), smolgrad/__init__.pyi every
name of `smolgrad.__all__`. IDEs and type checkers read these instead of the .py files.
tests/test_registry.py fails when they are out of date.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import smolgrad
from smolgrad import registry

PACKAGE = pathlib.Path(smolgrad.__file__).parent


def stubs() -> dict[pathlib.Path, str]:
    """{path: text} of every generated stub, as the registry has it now."""
    return {PACKAGE / "_tensor_methods.pyi": registry.tensor_stub(smolgrad.Tensor),
            PACKAGE / "__init__.pyi": registry.package_stub(smolgrad)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when a stub differs from the registry")
    args = parser.parse_args(argv)
    stale = []
    for path, text in stubs().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
            print(f"wrote {path} ({len(text.splitlines())} lines)")
    if args.check and stale:
        print(f"stale: {', '.join(map(str, stale))}; run {registry.STUB_COMMAND}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
