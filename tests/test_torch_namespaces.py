"""The torch.X namespaces smolgrad provides, each against PyTorch's on this machine:
cuda (without a GPU), backends, accelerator, amp.autocast, serialization, onnx, compile,
nn.modules, nn.parallel, utils.tensorboard, and the top-level switches and small types."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import smolgrad as sg

ROOT = Path(__file__).resolve().parent.parent
no_gpu = pytest.mark.skipif(sg.cuda.is_available(), reason="checks the no-CUDA behaviour")


def _raises(call) -> type | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the type is what is compared
        return type(error)
    return None


# -- torch.cuda ---------------------------------------------------------------------------------
CUDA_QUERIES = ["is_available", "device_count", "is_initialized", "memory_allocated",
                "max_memory_allocated", "memory_reserved", "max_memory_reserved",
                "memory_stats", "is_bf16_supported"]
CUDA_NO_OPS = ["manual_seed", "manual_seed_all", "seed", "seed_all", "empty_cache"]


@no_gpu
@pytest.mark.parametrize("name", CUDA_QUERIES)
def test_cuda_queries_match_torch_without_cuda(name):
    ours, theirs = getattr(sg.cuda, name)(), getattr(torch.cuda, name)()
    assert ours == theirs and type(ours) is type(theirs) or (ours == {} and len(theirs) == 0)


@no_gpu
@pytest.mark.parametrize("name", CUDA_NO_OPS)
def test_cuda_seeding_and_cache_are_no_ops_without_cuda(name):
    args = (1234,) if "manual" in name else ()
    state = sg.get_rng_state().tolist()
    assert getattr(sg.cuda, name)(*args) is None
    assert getattr(torch.cuda, name)(*args) is None
    assert sg.get_rng_state().tolist() == state


@no_gpu
def test_cuda_synchronize_and_peak_reset_are_no_ops():
    # (PyTorch's CPU-only build raises here; smolgrad follows PyTorch on a machine with a
    # CUDA build and no GPU work to wait for: nothing to do, so nothing happens)
    assert sg.cuda.synchronize() is None
    assert sg.cuda.reset_peak_memory_stats() is None


@no_gpu
@pytest.mark.parametrize("name", ["current_device", "get_device_name", "get_device_properties",
                                  "mem_get_info", "get_device_capability"])
def test_cuda_device_queries_raise_without_cuda(name):
    assert _raises(getattr(torch.cuda, name)) is not None
    with pytest.raises(RuntimeError, match=f"torch.cuda.{name}: CUDA is not available"):
        getattr(sg.cuda, name)()


def test_cuda_refuses_other_devices():
    with pytest.raises(ValueError, match="expected a cuda device"):
        sg.cuda.memory_allocated("cpu")
    with pytest.raises(ValueError, match="smolgrad drives one GPU"):
        sg.cuda.memory_allocated(3)


@no_gpu
def test_accelerator_without_one():
    assert sg.accelerator.is_available() == torch.accelerator.is_available() is False
    assert sg.accelerator.device_count() == torch.accelerator.device_count() == 0
    assert sg.accelerator.current_accelerator() is torch.accelerator.current_accelerator() \
        is None
    for name in ("current_device_index", "synchronize"):
        assert _raises(getattr(torch.accelerator, name)) is RuntimeError
        with pytest.raises(RuntimeError, match="no accelerator is available"):
            getattr(sg.accelerator, name)()


# -- torch.backends -----------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["enabled", "benchmark", "deterministic", "allow_tf32"])
def test_cudnn_flag_defaults_match_torch(flag):
    assert getattr(sg.backends.cudnn, flag) == getattr(torch.backends.cudnn, flag)


def test_backend_availability_matches_torch_here():
    if not sg.cuda.is_available():
        assert sg.backends.cudnn.is_available() == torch.backends.cudnn.is_available()
        assert sg.backends.cuda.is_built() == torch.backends.cuda.is_built()
    assert sg.backends.mps.is_available() is False
    assert sg.backends.mps.is_built() is False
    assert sg.backends.cudnn.version() is None


def test_cudnn_flags_can_be_set_and_read_back(monkeypatch):
    monkeypatch.setattr(sg.backends.cudnn, "benchmark", False)
    sg.backends.cudnn.benchmark = True
    assert sg.backends.cudnn.benchmark is True


def test_sdp_switches_read_back():
    for kind in ("flash", "mem_efficient", "math", "cudnn"):
        enable = getattr(sg.backends.cuda, f"enable_{kind}_sdp")
        enabled = getattr(sg.backends.cuda, f"{kind}_sdp_enabled")
        assert enabled() is getattr(torch.backends.cuda, f"{kind}_sdp_enabled")()
        enable(False)
        assert enabled() is False
        enable(True)
        assert enabled() is True


@pytest.fixture
def restore_matmul_precision():
    ours, theirs = sg.get_float32_matmul_precision(), torch.get_float32_matmul_precision()
    yield
    sg.set_float32_matmul_precision(ours)
    torch.set_float32_matmul_precision(theirs)


def test_matmul_precision_and_allow_tf32_are_linked_as_in_torch(restore_matmul_precision):
    def seen(lib):
        return lib.get_float32_matmul_precision(), lib.backends.cuda.matmul.allow_tf32

    assert seen(sg) == seen(torch)
    for precision in ("high", "medium", "highest"):
        sg.set_float32_matmul_precision(precision)
        torch.set_float32_matmul_precision(precision)
        assert seen(sg) == seen(torch)
    for allow in (True, False):
        sg.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cuda.matmul.allow_tf32 = allow
        assert seen(sg) == seen(torch)
    for lib in (sg, torch):
        with pytest.warns(UserWarning, match="is not one of 'highest', 'high', or 'medium'"):
            lib.set_float32_matmul_precision("fastest")
        assert _raises(lambda lib=lib: lib.set_float32_matmul_precision(3)) is RuntimeError
    assert seen(sg) == seen(torch)
    with pytest.raises(AttributeError):
        sg.backends.cuda.matmul.allow_tf64 = True  # a misspelt flag is not silently kept


# -- top-level switches and small types ---------------------------------------------------------
def test_num_threads_like_torch():
    ours, theirs = sg.get_num_threads(), torch.get_num_threads()
    try:
        assert ours >= 1 and theirs >= 1
        sg.set_num_threads(1)
        torch.set_num_threads(1)
        assert sg.get_num_threads() == torch.get_num_threads() == 1
        for bad in (0, 1.5):
            assert _raises(lambda bad=bad: torch.set_num_threads(bad)) is RuntimeError
            assert _raises(lambda bad=bad: sg.set_num_threads(bad)) is RuntimeError
    finally:
        sg.set_num_threads(ours)
        torch.set_num_threads(theirs)
    assert sg.get_num_interop_threads() >= 1


def test_deterministic_algorithms_flags_like_torch():
    try:
        for mode, warn_only in ((True, False), (True, True), (False, False)):
            sg.use_deterministic_algorithms(mode, warn_only=warn_only)
            torch.use_deterministic_algorithms(mode, warn_only=warn_only)
            assert sg.are_deterministic_algorithms_enabled() == \
                torch.are_deterministic_algorithms_enabled() == mode
            assert sg.is_deterministic_algorithms_warn_only_enabled() == \
                torch.is_deterministic_algorithms_warn_only_enabled() == warn_only
        assert _raises(lambda: torch.use_deterministic_algorithms("yes")) is TypeError
        assert _raises(lambda: sg.use_deterministic_algorithms("yes")) is TypeError
    finally:
        sg.use_deterministic_algorithms(False)
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_finfo_matches_torch(name):
    ours, theirs = sg.finfo(getattr(sg, name)), torch.finfo(getattr(torch, name))
    for attribute in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution",
                      "dtype"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name", ["int32", "int64"])
def test_iinfo_matches_torch(name):
    ours, theirs = sg.iinfo(getattr(sg, name)), torch.iinfo(getattr(torch, name))
    assert (ours.bits, ours.min, ours.max, ours.dtype) == \
        (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert repr(ours) == repr(theirs)


def test_finfo_default_and_wrong_kinds():
    assert sg.finfo().eps == torch.finfo().eps
    for ours, theirs in ((lambda: sg.finfo(sg.int64), lambda: torch.finfo(torch.int64)),
                         (lambda: sg.iinfo(sg.float32), lambda: torch.iinfo(torch.float32)),
                         (lambda: sg.iinfo(sg.bool), lambda: torch.iinfo(torch.bool))):
        assert _raises(ours) is _raises(theirs) is TypeError


def test_size_behaves_like_torch_size():
    ours, theirs = sg.Size([2, 3, 4]), torch.Size([2, 3, 4])
    assert ours == theirs == (2, 3, 4)
    assert ours.numel() == theirs.numel() == 24
    assert isinstance(ours[1:], sg.Size) and ours[1:] == theirs[1:]
    assert isinstance(ours + (5,), sg.Size) and ours + (5,) == theirs + (5,)
    assert ours[0] == 2 and isinstance(ours, tuple)
    assert sg.Size().numel() == torch.Size().numel() == 1
    assert repr(ours) == str(ours) == repr(theirs) == "torch.Size([2, 3, 4])"
    assert sg.Size([sg.tensor(3)]) == (3,)
    assert _raises(lambda: torch.Size([2.5])) is _raises(lambda: sg.Size([2.5])) is TypeError


def test_is_tensor_like_torch():
    for ours, theirs in ((sg.ones(2), torch.ones(2)), ([1.0], [1.0]), (3, 3),
                         (sg.nn.Parameter(sg.ones(1)), torch.nn.Parameter(torch.ones(1)))):
        assert sg.is_tensor(ours) == torch.is_tensor(theirs)


def test_compile_wraps_the_model_or_function():
    """torch.compile's forms; what the step compiler does is tested in test_compile.py."""
    model = sg.nn.Linear(2, 2)
    assert sg.compile(model)._orig_mod is model
    assert sg.compile(model, mode="max-autotune", disable=True) is model

    def step(x):
        return x * 2

    assert sg.compile(step).fn is step
    assert sg.compile(mode="reduce-overhead")(step).fn is step  # @torch.compile(...) form


def test_version_is_a_string():
    assert isinstance(sg.__version__, str) and sg.__version__


def test_missing_top_level_name_says_smolgrad_lacks_it():
    with pytest.raises(AttributeError, match=r"smolgrad does not provide torch\.fft"):
        sg.fft  # noqa: B018
    assert not hasattr(sg, "special")


# -- torch.amp.autocast -------------------------------------------------------------------------
def test_autocast_cpu_bfloat16_is_a_no_op_context_and_decorator():
    x = sg.ones(2, 3)
    w = sg.ones(3, 4)
    with sg.autocast("cpu"):
        inside = x @ w
    assert inside.dtype == sg.float32  # cpu + bfloat16 (the default): NumPy has no bfloat16

    @sg.amp.autocast("cpu", dtype=sg.bfloat16)
    def forward(a):
        return a * 2

    assert forward(x).dtype == sg.float32 and forward.__name__ == "forward"
    assert sg.amp.is_autocast_available("cpu") == torch.amp.is_autocast_available("cpu")


@no_gpu
def test_cuda_autocast_without_cuda_warns_like_torch():
    for lib in (sg, torch):
        with pytest.warns(UserWarning, match="CUDA is not available"):
            region = lib.autocast("cuda")
        with region:
            pass


def test_autocast_rejects_bad_device_types():
    for lib in (sg, torch):
        assert _raises(lambda lib=lib: lib.autocast(0)) is ValueError
    with pytest.raises(RuntimeError, match="unsupported device_type 'tpu'"):
        sg.autocast("tpu")
    with pytest.warns(UserWarning, match="supports float16 and bfloat16"):
        sg.autocast("cpu", dtype=sg.float64)


def test_custom_fwd_bwd_return_the_function():
    def forward(ctx, x):
        return x

    assert sg.amp.custom_fwd(forward, device_type="cpu") is forward
    assert sg.amp.custom_fwd(device_type="cpu", cast_inputs=sg.float32)(forward) is forward
    assert sg.amp.custom_bwd(forward, device_type="cpu") is forward


# -- torch.serialization, torch.onnx ------------------------------------------------------------
def test_serialization_save_load_and_safe_globals(tmp_path):
    state = {"w": sg.arange(6).reshape(2, 3).float(), "step": 3}
    sg.serialization.save(state, tmp_path / "ckpt")
    loaded = sg.serialization.load(tmp_path / "ckpt", map_location="cpu", weights_only=True)
    assert loaded["step"] == 3 and loaded["w"].tolist() == state["w"].tolist()

    class Config:
        pass

    assert sg.serialization.add_safe_globals([Config]) is None
    assert torch.serialization.add_safe_globals([Config]) is None
    assert Config in sg.serialization.get_safe_globals()
    with sg.serialization.safe_globals([int]):
        assert int in sg.serialization.get_safe_globals()
    assert int not in sg.serialization.get_safe_globals()
    sg.serialization.clear_safe_globals()
    assert sg.serialization.get_safe_globals() == []


def test_onnx_export_raises_a_clear_error():
    with pytest.raises(NotImplementedError, match="torch.onnx.export: smolgrad cannot export"):
        sg.onnx.export(sg.nn.Linear(2, 2), sg.ones(1, 2), "model.onnx")
    assert sg.onnx.is_in_onnx_export() == torch.onnx.is_in_onnx_export() is False


# -- torch.nn.modules, torch.nn.parallel --------------------------------------------------------
def test_nn_modules_paths():
    modules = sg.nn.modules
    assert modules.loss._Loss is sg.nn.loss._Loss
    assert modules.module.Module is sg.nn.Module
    assert modules.batchnorm.BatchNorm1d is sg.nn.BatchNorm1d
    assert modules.Linear is sg.nn.Linear
    with pytest.raises(AttributeError, match="torch.nn.modules"):
        modules.Fold  # noqa: B018
    from torch.nn.modules import utils as their_utils

    for name in ("_single", "_pair", "_triple", "_quadruple"):
        for value in (3, (1, 2), [4, 5, 6]):
            assert getattr(modules.utils, name)(value) == getattr(their_utils, name)(value)


def test_data_parallel_like_torch_on_one_device():
    ours = sg.nn.parallel.DataParallel(sg.nn.Sequential(sg.nn.Linear(3, 2), sg.nn.ReLU()))
    theirs = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({name: torch.tensor(value.detach().numpy())
                            for name, value in ours.state_dict().items()})
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(ours(sg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    assert sg.nn.parallel.DistributedDataParallel is sg.distributed.DistributedDataParallel


# -- torch.utils.tensorboard --------------------------------------------------------------------
def _read_events(folder: Path) -> list:
    """Every Event record of the event files in `folder` (TFRecord framing: length, its
    CRC, the bytes, their CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            offset += 12
            event = Event()
            event.ParseFromString(data[offset:offset + length])
            events.append(event)
            offset += length + 4
    return events


def test_summary_writer_writes_tensor_scalars_and_histograms(tmp_path):
    pytest.importorskip("tensorboardX")
    from smolgrad.utils.tensorboard import SummaryWriter

    losses = [sg.tensor(0.5), sg.tensor(0.25), 0.125]
    with SummaryWriter(log_dir=str(tmp_path)) as writer:
        assert writer.log_dir == str(tmp_path) == writer.get_logdir()
        for step, loss in enumerate(losses):
            writer.add_scalar("loss/train", loss, sg.tensor(step))
        writer.add_scalars("pair", {"a": sg.tensor(1.5), "b": 2.5}, 0)
        writer.add_histogram("weights", sg.arange(10).float(), 0)
        writer.add_image("image", sg.ones(3, 4, 5) * 0.5, 0)
        writer.add_text("note", "hello", 0)
        with pytest.raises(NotImplementedError, match="add_graph"):
            writer.add_graph(sg.nn.Linear(2, 2))
    scalars = [(e.step, v.tag, v.simple_value) for e in _read_events(tmp_path)
               for v in e.summary.value if v.HasField("simple_value")]
    assert scalars == [(0, "loss/train", 0.5), (1, "loss/train", 0.25),
                       (2, "loss/train", 0.125)]
    tags = {v.tag for e in _read_events(tmp_path) for v in e.summary.value}
    assert {"weights", "image", "note/text_summary"} <= tags
    histogram = next(v.histo for e in _read_events(tmp_path) for v in e.summary.value
                     if v.tag == "weights")
    assert (histogram.min, histogram.max, histogram.num, histogram.sum) == (0, 9, 10, 45)
    # add_scalars: one folder per curve (tensorboardX's layout: main_tag/tag)
    assert sorted(p.name for p in (tmp_path / "pair").iterdir()) == ["a", "b"]
    assert math.isclose(_read_events(tmp_path / "pair" / "a")[-1].summary.value[0]
                        .simple_value, 1.5)


def test_summary_writer_without_tensorboardx_says_how_to_install(tmp_path):
    code = textwrap.dedent("""
        import sys
        sys.modules["tensorboardX"] = None  # as if it were not installed
        try:
            import smolgrad.utils.tensorboard
        except ImportError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert 'pip install "smolgrad[tensorboard]"' in result.stdout, result.stderr


def test_no_warnings_on_import():
    code = "import warnings; warnings.simplefilter('error'); import smolgrad"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sg.amp.GradScaler("cpu")
        sg.autocast("cpu")
