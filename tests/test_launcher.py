"""`python -m smolgrad run SCRIPT` and `smolgrad.install_as_torch()`: the torch alias.

Every launcher test runs a small script in a fresh interpreter (the alias must never leak
into this test process, where the real torch is the oracle). What is checked: the import
paths real PyTorch programs use resolve to the smolgrad modules, the script sees what
`python SCRIPT` gives it (argv, __name__, __file__, sys.path), exit statuses pass through, a
module smolgrad lacks fails with a message naming it, and without the alias a real torch
stays untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import smolgrad

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python *args` in a fresh interpreter whose smolgrad is this checkout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, input=stdin)


def _launch(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return _run(["-m", "smolgrad", "run", "script.py", *args], cwd=tmp_path)


# torch path -> the smolgrad module it must be, checked with `is` inside the launched script
IMPORT_PATHS = {
    "torch": "smolgrad",
    "torch.nn": "smolgrad.nn",
    "torch.nn.functional": "smolgrad.nn.functional",
    "torch.nn.init": "smolgrad.nn.init",
    "torch.nn.utils": "smolgrad.nn.utils",
    "torch.nn.parameter": "smolgrad.nn.module",
    "torch.nn.modules": "smolgrad.nn.modules",
    "torch.nn.modules.module": "smolgrad.nn.module",
    "torch.nn.modules.loss": "smolgrad.nn.loss",
    "torch.nn.modules.linear": "smolgrad.nn.linear",
    "torch.nn.modules.batchnorm": "smolgrad.nn.normalization",
    "torch.nn.modules.utils": "smolgrad.nn.modules.utils",
    "torch.nn.parallel": "smolgrad.nn.parallel",
    "torch.nn.parallel.distributed": "smolgrad.distributed",
    "torch.optim": "smolgrad.optim",
    "torch.optim.lr_scheduler": "smolgrad.optim.lr_scheduler",
    "torch.optim.optimizer": "smolgrad.optim.optimizer",
    "torch.optim.adamw": "smolgrad.optim.adam",
    "torch.autograd": "smolgrad.autograd",
    "torch.utils": "smolgrad.utils",
    "torch.utils.data": "smolgrad.utils.data",
    "torch.utils.data.dataloader": "smolgrad.utils.data.dataloader",
    "torch.utils.data.dataset": "smolgrad.utils.data.dataset",
    "torch.utils.data.sampler": "smolgrad.utils.data.sampler",
    "torch.utils.data.distributed": "smolgrad.utils.data.distributed",
    "torch.utils.tensorboard": "smolgrad.utils.tensorboard",
    "torch.distributed": "smolgrad.distributed",
    "torch.cuda": "smolgrad.cuda",
    "torch.cuda.amp": "smolgrad.cuda.amp",
    "torch.amp": "smolgrad.amp",
    "torch.amp.grad_scaler": "smolgrad.amp.grad_scaler",
    "torch.backends": "smolgrad.backends",
    "torch.backends.cuda": "smolgrad.backends.cuda",
    "torch.backends.cudnn": "smolgrad.backends.cudnn",
    "torch.backends.mps": "smolgrad.backends.mps",
    "torch.serialization": "smolgrad.serialization",
    "torch.onnx": "smolgrad.onnx",
    "torch.accelerator": "smolgrad.accelerator",
}


def test_import_paths_resolve_to_smolgrad_modules(tmp_path):
    result = _launch(tmp_path, f"""
        import importlib, json, sys
        paths = {IMPORT_PATHS!r}
        report = {{}}
        for torch_name, smolgrad_name in paths.items():
            module = importlib.import_module(torch_name)
            report[torch_name] = [module.__name__, module is sys.modules[smolgrad_name],
                                  sys.modules[torch_name] is module,
                                  module.__spec__.name]  # smolgrad's own spec is kept
        print(json.dumps(report))
    """)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for torch_name, smolgrad_name in IMPORT_PATHS.items():
        assert report[torch_name] == [smolgrad_name, True, True, smolgrad_name], torch_name


def test_from_imports_programs_use(tmp_path):
    result = _launch(tmp_path, """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.nn import functional
        from torch.nn.modules.loss import _Loss, _WeightedLoss
        from torch.nn.modules.module import Module
        from torch.nn.modules import Linear
        from torch.nn.modules.utils import _pair
        from torch.nn.parallel import DistributedDataParallel, DataParallel
        from torch.nn.parameter import Parameter
        from torch.utils.data import DataLoader, Dataset, TensorDataset
        from torch.utils.data.dataloader import default_collate
        from torch.utils.data.sampler import RandomSampler
        from torch.cuda.amp import GradScaler, autocast
        from torch.amp import GradScaler as AmpGradScaler
        from torch.serialization import add_safe_globals
        import smolgrad
        assert Module is smolgrad.nn.Module and Linear is smolgrad.nn.Linear
        assert issubclass(_WeightedLoss, _Loss) and functional is F
        assert DistributedDataParallel is smolgrad.distributed.DistributedDataParallel
        assert torch.nn.parallel.DistributedDataParallel is DistributedDataParallel
        assert Parameter is smolgrad.nn.Parameter and _pair(3) == (3, 3)
        assert issubclass(GradScaler, AmpGradScaler)
        x = torch.randn(4, 3)
        print(tuple(nn.Linear(3, 2)(x).shape), torch.cuda.is_available())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(4,", "2)", str(smolgrad.cuda.is_available())]


def test_script_sees_argv_name_file_and_its_folder_on_sys_path(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 42\n")
    (folder / "train.py").write_text(textwrap.dedent("""
        import json, os, sys
        import helper  # a sibling module: the script's folder is on sys.path
        print(json.dumps({"argv": sys.argv, "name": __name__, "file": __file__,
                          "path0": sys.path[0], "helper": helper.VALUE,
                          "main": sys.modules["__main__"].__file__}))
    """))
    result = _run(["-m", "smolgrad", "run", "project/train.py", "--lr", "0.1", "x y"],
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    plain = json.loads(_run(["project/train.py", "--lr", "0.1", "x y"], cwd=tmp_path).stdout)
    assert seen == plain  # exactly what `python project/train.py ...` sees
    assert seen["argv"] == ["project/train.py", "--lr", "0.1", "x y"]
    assert seen["name"] == "__main__"
    assert seen["file"] == str(folder / "train.py")
    assert seen["path0"] == str(folder)


@pytest.mark.parametrize("body, status", [
    ("print('done')", 0),
    ("import sys; sys.exit(3)", 3),
    ("import sys; sys.exit('bad input')", 1),
    ("raise ValueError('boom')", 1),
])
def test_exit_status_is_the_programs(tmp_path, body, status):
    result = _launch(tmp_path, f"import torch\n{body}\n")
    assert result.returncode == status, result.stderr
    if "ValueError" in body:
        assert "ValueError: boom" in result.stderr and "script.py" in result.stderr


@pytest.mark.parametrize("statement, message", [
    ("import torch.fft", "torch.fft: smolgrad does not provide this module"),
    ("from torch.nn.modules.fold import Fold", "torch.nn.modules.fold: smolgrad does not "
                                               "provide this module"),
    ("import torch.utils.checkpoint", "torch.utils.checkpoint: smolgrad does not provide"),
    ("import torchvision", "torchvision: a PyTorch extension package that needs the real "
                           "PyTorch; smolgrad does not provide it"),
    ("import torch; torch.special.erf", "module 'smolgrad' has no attribute 'special' "
                                        "(smolgrad does not provide torch.special"),
])
def test_a_missing_module_names_itself(tmp_path, statement, message):
    result = _launch(tmp_path, statement + "\n")
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    error = "AttributeError" if "special" in statement else "ModuleNotFoundError"
    assert result.stderr.strip().splitlines()[-1].startswith(error)


def test_missing_module_is_catchable_as_import_error(tmp_path):
    result = _launch(tmp_path, """
        try:
            import torch._dynamo
        except ImportError as error:
            print(type(error).__name__, error.name)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ModuleNotFoundError", "torch._dynamo"]


def test_run_module_with_dash_m(tmp_path):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(textwrap.dedent("""
        import json, sys, torch
        print(json.dumps({"argv": sys.argv, "name": __name__, "torch": torch.__name__}))
    """))
    result = _run(["-m", "smolgrad", "run", "-m", "mypkg.train", "a", "--b"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == [str(package / "train.py"), "a", "--b"]
    assert seen["name"] == "__main__" and seen["torch"] == "smolgrad"


@pytest.mark.parametrize("args, status, text", [
    ([], 2, "usage: python -m smolgrad run SCRIPT"),
    (["--help"], 0, "usage: python -m smolgrad run SCRIPT"),
    (["run", "--help"], 0, "usage: python -m smolgrad run SCRIPT"),
    (["walk", "x.py"], 2, "unknown command 'walk'"),
    (["run"], 2, "give the script to run"),
    (["run", "-m"], 2, "give the module to run"),
    (["run", "missing.py"], 2, "can't open file"),
])
def test_launcher_usage_errors(tmp_path, args, status, text):
    result = _run(["-m", "smolgrad", *args], cwd=tmp_path)
    assert result.returncode == status
    assert text in result.stdout + result.stderr


def test_install_as_torch_for_notebooks(tmp_path):
    code = textwrap.dedent("""
        import sys
        import smolgrad
        smolgrad.install_as_torch()
        smolgrad.install_as_torch()  # twice is harmless
        import torch
        from torch.utils.data import DataLoader
        assert torch is smolgrad and smolgrad.torch_alias.is_installed()
        smolgrad.torch_alias.uninstall_as_torch()
        import torch
        print(torch is smolgrad, "site-packages" in torch.__file__)
    """)
    result = _run(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_install_after_the_real_torch_is_imported_refuses(tmp_path):
    code = "import torch, smolgrad\nsmolgrad.install_as_torch()\n"
    result = _run(["-c", code], cwd=tmp_path)
    assert result.returncode == 1
    assert "the real PyTorch is already imported" in result.stderr
    assert "before the first `import torch`" in result.stderr


def test_importing_smolgrad_leaves_the_real_torch_alone(tmp_path):
    code = textwrap.dedent("""
        import sys
        import smolgrad, smolgrad.nn.parallel, smolgrad.cuda.amp, smolgrad.backends
        assert "torch" not in sys.modules  # smolgrad itself never imports torch
        import torch
        import torch.nn.functional
        print(torch is smolgrad, torch.__version__, torch.nn.functional.__name__,
              smolgrad.torch_alias.is_installed())
    """)
    result = _run(["-c", code], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    is_smolgrad, version, functional, installed = result.stdout.split()
    assert is_smolgrad == "False" and installed == "False"
    assert version.startswith("2.") and functional == "torch.nn.functional"


def test_this_process_has_the_real_torch():
    import torch

    assert torch is not smolgrad and "torch" in torch.__file__
    assert not smolgrad.torch_alias.is_installed()


TRAINING_SCRIPT = """
    import sys
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    torch.cuda.manual_seed_all(0)
    torch.backends.cudnn.benchmark = True
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # fixed data and weights (random streams differ between smolgrad and torch)
    x = torch.tensor([[i / 10, (i % 3) / 2] for i in range(12)])
    y = (x[:, :1] * 2 - x[:, 1:] + 0.5)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape) * (k + 1))
    opt = torch.optim.SGD(model.parameters(), lr=float(sys.argv[1]), momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=False)
    for epoch in range(3):
        for xb, yb in loader:
            with torch.autocast("cpu", enabled=False):
                loss = F.mse_loss(model(xb.to(device)), yb.to(device))
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        print(f"epoch {epoch} loss {loss.item():.5f} scale {scaler.get_scale():.0f}")
"""


@pytest.mark.slow  # two interpreters, one of them importing the real torch
def test_a_training_script_gives_pytorchs_numbers(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAINING_SCRIPT))
    ours = _run(["-m", "smolgrad", "run", "train.py", "0.05"], cwd=tmp_path)
    theirs = _run(["train.py", "0.05"], cwd=tmp_path)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    ours_lines, their_lines = ours.stdout.splitlines(), theirs.stdout.splitlines()
    assert len(ours_lines) == len(their_lines) == 3
    for mine, real in zip(ours_lines, their_lines):
        mine_words, real_words = mine.split(), real.split()
        assert mine_words[::2] == real_words[::2]
        assert float(mine_words[3]) == pytest.approx(float(real_words[3]), rel=1e-4, abs=1e-5)
        assert mine_words[5] == real_words[5]  # the loss scale grows identically


# -- docs/pytorch.md shows what really happens --------------------------------------------------
DOC = ROOT / "docs" / "pytorch.md"


def _doc_blocks(language: str) -> list:
    from test_docs import extract_blocks

    return [code for lang, code, _ in extract_blocks(DOC.read_text(encoding="utf-8"))
            if lang == language]


def test_doc_python_blocks_run_in_a_fresh_interpreter(tmp_path):
    blocks = _doc_blocks("python")
    assert blocks
    for code in blocks:
        result = _run(["-c", code], cwd=tmp_path)
        assert result.returncode == 0, (code, result.stderr)


def test_doc_error_messages_are_the_real_ones(tmp_path):
    """Each ```text block that starts with `>>> statement` shows the error that statement
    raises under the launcher (compared with line breaks and spaces normalised)."""
    shown = [code for code in _doc_blocks("text") if code.startswith(">>> ")]
    assert len(shown) >= 2
    for code in shown:
        statement, _, message = code.partition("\n")
        statement = statement.removeprefix(">>> ")
        result = _launch(tmp_path, f"import torch\nx = torch.ones(2)\n{statement}\n")
        assert result.returncode == 1
        assert " ".join(message.split()) in " ".join(result.stderr.split()), result.stderr
