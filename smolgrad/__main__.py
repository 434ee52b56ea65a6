"""`python -m smolgrad run SCRIPT [ARGS...]`: run an unmodified PyTorch program on smolgrad.

    python -m smolgrad run train.py --epochs 3     # like `python train.py --epochs 3`
    python -m smolgrad run -m mypackage.train      # like `python -m mypackage.train`

Inside the program, `import torch` and every `torch.X` that smolgrad provides are smolgrad
(see smolgrad/torch_alias.py and docs/pytorch.md). The program sees what `python SCRIPT`
would give it: `sys.argv == [SCRIPT, *ARGS]`, `__name__ == "__main__"`, `__file__` the
script's absolute path, and the script's folder first on `sys.path`. Its exit status is the
program's: 0 at the end, `sys.exit(n)`'s n, 1 after an uncaught exception (traceback shown).
"""

from __future__ import annotations

import builtins
import io
import os
import runpy
import sys
import types

from .torch_alias import install_as_torch

USAGE = """\
usage: python -m smolgrad run SCRIPT [ARGS...]
       python -m smolgrad run -m MODULE [ARGS...]

Runs a PyTorch program with `import torch` answered by smolgrad.
In a notebook, call smolgrad.install_as_torch() before `import torch` instead.
See docs/pytorch.md for what is supported."""


def _usage_error(message: str) -> int:
    print(f"{USAGE}\n\npython -m smolgrad: error: {message}", file=sys.stderr)
    return 2


def run_script(script: str, args: list[str]) -> None:
    """Run the file `script` as `python script *args` would, with torch aliased."""
    path = os.path.abspath(script)
    if not os.path.exists(path):
        # Python's own wording and status for a missing script.
        print(f"python -m smolgrad run: can't open file {path!r}: [Errno 2] No such file or "
              f"directory", file=sys.stderr)
        raise SystemExit(2)
    with io.open_code(path) as file:
        code = compile(file.read(), path, "exec")
    install_as_torch()
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))  # was the current folder (-m)
    # A fresh module named __main__ replaces this launcher's own, as `python SCRIPT` makes it.
    main_module = types.ModuleType("__main__")
    main_module.__file__ = path
    main_module.__builtins__ = builtins
    sys.modules["__main__"] = main_module
    exec(code, vars(main_module))


def run_module(module: str, args: list[str]) -> None:
    """Run `module` as `python -m module *args` would, with torch aliased."""
    install_as_torch()
    sys.argv = [module, *args]  # runpy replaces argv[0] with the module's file
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(argv: list[str]) -> int:
    """The command line: `argv` without the program name. Returns the exit status for the
    launcher's own errors; the program's status comes out through SystemExit."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command != "run":
        return _usage_error(f"unknown command {command!r} (the command is 'run')")
    if not rest:
        return _usage_error("run: give the script to run (or -m MODULE)")
    if rest[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if rest[0] == "-m":
        if len(rest) < 2:
            return _usage_error("run -m: give the module to run")
        run_module(rest[1], rest[2:])
    else:
        run_script(rest[0], rest[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
