"""sg.save(module) / sg.load: whole modules in checkpoints that never run code when loaded.

Every layer class smolgrad.nn exports is saved and loaded on each device: the copy has the
same class, attributes, parameters, buffers, children and training flags, and computes the
same outputs. Then: tied weights, shared submodules, a user's own Module subclass, the
values that are refused at save time (functions, hooks, open files, other objects), and
crafted files that name code (`os.system`, a non-Module class, a module not imported yet),
which load refuses without importing or calling anything.
"""

from __future__ import annotations

import io as pyio
import json
import sys
from collections import OrderedDict

import numpy as np
import pytest

import smolgrad as sg
import smolgrad.nn as nn
import smolgrad.nn.functional as F
from smolgrad.io import CheckpointError, load, save
from smolgrad.io_modules import _TREE_STATE

# -- every layer, saved and loaded ----------------------------------------------------------


def _seq(*shape):
    return lambda device: sg.randn(*shape, device=device)


def _ids(*shape):
    return lambda device: sg.randint(0, 10, shape, device=device)


def _two(first, second):
    return lambda device: (first(device), second(device))


# name -> (constructor, input maker: a tensor or a tuple of positional inputs)
LAYERS = {
    "Linear": (lambda: nn.Linear(4, 3), _seq(2, 4)),
    "Linear_no_bias": (lambda: nn.Linear(4, 3, bias=False), _seq(2, 4)),
    "Identity": (lambda: nn.Identity(), _seq(2, 4)),
    "Flatten": (lambda: nn.Flatten(), _seq(2, 3, 4)),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 2)), _seq(3, 4)),
    "Embedding": (lambda: nn.Embedding(10, 4, padding_idx=0), _ids(3, 2)),
    "Dropout": (lambda: nn.Dropout(0.3), _seq(2, 4)),
    "LSTM": (lambda: nn.LSTM(4, 5, num_layers=2, dropout=0.2), _seq(3, 2, 4)),
    "GRU": (lambda: nn.GRU(4, 5, bidirectional=True, batch_first=True), _seq(2, 3, 4)),
    "RNN": (lambda: nn.RNN(4, 5, nonlinearity="relu", bias=False), _seq(3, 2, 4)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 5), _seq(2, 4)),
    "GRUCell": (lambda: nn.GRUCell(4, 5), _seq(2, 4)),
    "RNNCell": (lambda: nn.RNNCell(4, 5, nonlinearity="tanh"), _seq(2, 4)),
    "MultiheadAttention": (lambda: nn.MultiheadAttention(8, 2),
                           lambda d: (sg.randn(3, 2, 8, device=d),) * 3),
    "MultiheadAttention_kdim": (lambda: nn.MultiheadAttention(8, 2, kdim=6, vdim=5,
                                                              batch_first=True),
                                lambda d: (sg.randn(2, 3, 8, device=d),
                                           sg.randn(2, 4, 6, device=d),
                                           sg.randn(2, 4, 5, device=d))),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, 16), _seq(3, 2, 8)),
    "TransformerEncoder": (lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, activation="gelu", norm_first=True), 2,
        norm=nn.LayerNorm(8)), _seq(3, 2, 8)),
    "TransformerDecoderLayer": (lambda: nn.TransformerDecoderLayer(8, 2, 16),
                                _two(_seq(3, 2, 8), _seq(4, 2, 8))),
    "TransformerDecoder": (lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16),
                                                         2), _two(_seq(3, 2, 8), _seq(4, 2, 8))),
    "Transformer": (lambda: nn.Transformer(8, 2, 1, 1, 16), _two(_seq(4, 2, 8), _seq(3, 2, 8))),
    "LayerNorm": (lambda: nn.LayerNorm((3, 4), eps=1e-3), _seq(2, 3, 4)),
    "LayerNorm_plain": (lambda: nn.LayerNorm(4, elementwise_affine=False), _seq(2, 4)),
    "RMSNorm": (lambda: nn.RMSNorm(4), _seq(2, 4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), _seq(2, 4, 3)),
    "BatchNorm1d": (lambda: nn.BatchNorm1d(4, momentum=0.2), _seq(5, 4)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3, affine=False), _seq(2, 3, 4, 4)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1), _seq(2, 2, 7)),
    "Conv2d": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding="valid", groups=2),
               _seq(1, 2, 7, 7)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), _seq(1, 2, 4, 4)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), _seq(1, 1, 4, 4)),
    "AvgPool2d": (lambda: nn.AvgPool2d(2, stride=1), _seq(1, 1, 4, 4)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d((2, 1)), _seq(1, 1, 4, 4)),
    "ReLU": (lambda: nn.ReLU(), _seq(2, 4)),
    "GELU": (lambda: nn.GELU("tanh"), _seq(2, 4)),
    "SiLU": (lambda: nn.SiLU(), _seq(2, 4)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), _seq(2, 4)),
    "ELU": (lambda: nn.ELU(0.5), _seq(2, 4)),
    "Softplus": (lambda: nn.Softplus(2.0, 10.0), _seq(2, 4)),
    "Tanh": (lambda: nn.Tanh(), _seq(2, 4)),
    "Sigmoid": (lambda: nn.Sigmoid(), _seq(2, 4)),
    "Softmax": (lambda: nn.Softmax(dim=0), _seq(2, 4)),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=1), _seq(2, 4)),
    "Sequential": (lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)),
                   _seq(3, 4)),
    "Sequential_named": (lambda: nn.Sequential(OrderedDict(fc=nn.Linear(4, 2), act=nn.Tanh())),
                         _seq(3, 4)),
    "ModuleList": (lambda: nn.ModuleList([nn.Linear(4, 4), nn.Dropout()]), None),
    "ModuleDict": (lambda: nn.ModuleDict({"a": nn.Linear(4, 4), "b": nn.ReLU()}), None),
    "ParameterList": (lambda: nn.ParameterList([nn.Parameter(sg.randn(2)),
                                                nn.Parameter(sg.randn(3))]), None),
    "ParameterDict": (lambda: nn.ParameterDict({"w": nn.Parameter(sg.randn(2, 2))}), None),
    "MSELoss": (lambda: nn.MSELoss(reduction="sum"), _two(_seq(3), _seq(3))),
    "L1Loss": (lambda: nn.L1Loss(), _two(_seq(3), _seq(3))),
    "SmoothL1Loss": (lambda: nn.SmoothL1Loss(beta=0.5), _two(_seq(3), _seq(3))),
    "HuberLoss": (lambda: nn.HuberLoss(delta=2.0), _two(_seq(3), _seq(3))),
    "BCELoss": (lambda: nn.BCELoss(), lambda d: (sg.rand(3, device=d), sg.rand(3, device=d))),
    "BCEWithLogitsLoss": (lambda: nn.BCEWithLogitsLoss(), _two(_seq(3), _seq(3))),
    "CrossEntropyLoss": (lambda: nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=2),
                         _two(_seq(4, 5), lambda d: sg.randint(0, 5, (4,), device=d))),
    "NLLLoss": (lambda: nn.NLLLoss(), _two(_seq(4, 5), lambda d: sg.randint(0, 5, (4,),
                                                                            device=d))),
    "KLDivLoss": (lambda: nn.KLDivLoss(reduction="batchmean", log_target=True),
                  _two(_seq(2, 3), _seq(2, 3))),
}
# Exported names that are not layers one can build and run on their own.
NOT_LAYERS = {"Module", "RNNBase", "Parameter", "Buffer"}


def test_every_exported_layer_is_covered():
    exported = {name for name in nn.__all__ if isinstance(getattr(nn, name), type)
                and issubclass(getattr(nn, name), nn.Module)}
    covered = {type(make()).__name__ for make, _ in LAYERS.values()}
    assert exported - NOT_LAYERS <= covered, exported - NOT_LAYERS - covered


def _same_value(a, b, where: str) -> None:
    """a == b for what module attributes hold: tensors by value, dtype and device, other
    values by ==, functions by identity; containers element by element."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, sg.Tensor):
        assert (a.dtype, a.device, a.shape, a.requires_grad) == \
            (b.dtype, b.device, b.shape, b.requires_grad), where
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy(), err_msg=where)
    elif isinstance(a, nn.Module):
        _same_module(a, b, where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _same_value(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same_value(x, y, f"{where}[{i}]")
    elif callable(a):
        assert a is b, where
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def _same_module(a: nn.Module, b: nn.Module, where: str = "<root>") -> None:
    """Same class, training flag, __dict__ keys in the same order, and the same values in
    every one of them (parameters, buffers, children recursively, plain attributes)."""
    assert type(a) is type(b), where
    assert a is not b, f"{where}: load returned the very same object"
    assert sorted(a.__dict__) == sorted(b.__dict__), where
    for key in a.__dict__:
        _same_value(a.__dict__[key], b.__dict__[key], f"{where}.{key}")


def _outputs(module: nn.Module, inputs):
    out = module(*inputs) if isinstance(inputs, tuple) else module(inputs)
    if isinstance(out, tuple):
        out = out[0]
    return out.detach().numpy() if out is not None else None


@pytest.mark.parametrize("name", LAYERS)
def test_layer_round_trip(name, device, tmp_path):
    make, make_inputs = LAYERS[name]
    module = make().to(device)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        module(make_inputs(device))  # running statistics away from their start values
    module.eval()
    path = tmp_path / "layer.pt"
    save(module, path)
    loaded = load(path)
    _same_module(module, loaded)
    assert [n for n, _ in loaded.named_parameters()] == \
        [n for n, _ in module.named_parameters()]
    assert all(isinstance(p, nn.Parameter) for p in loaded.parameters())
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key].numpy(), value.numpy(), key)
    if make_inputs is not None:
        inputs = make_inputs(device)
        np.testing.assert_allclose(_outputs(loaded, inputs), _outputs(module, inputs),
                                   rtol=0, atol=0)


# -- a model of the word language model's shape ---------------------------------------------


class WordModel(nn.Module):
    """An embedding, an LSTM and a decoder whose weight may be the embedding's (tied)."""

    def __init__(self, ntoken: int = 12, size: int = 6, tie: bool = True):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(0.25)
        self.encoder = nn.Embedding(ntoken, size)
        self.rnn = nn.LSTM(size, size, 2)
        self.decoder = nn.Linear(size, ntoken)
        if tie:
            self.decoder.weight = self.encoder.weight
        self.rnn_type = "LSTM"
        self.config = {"sizes": (ntoken, size), "dtype": sg.float32, "where": sg.device("cpu"),
                       "tags": {"lm", "lstm"}, "lr": float("inf"), "note": None,
                       "shape": sg.zeros(2, 3).shape}
        self.register_buffer("scale", sg.tensor(2.0))
        self.register_buffer("cache", sg.zeros(3), persistent=False)
        self.register_parameter("unused", None)
        self.src_mask = sg.triu(sg.full((3, 3), float("-inf")), diagonal=1)  # a plain tensor

    def forward(self, tokens):
        output, _ = self.rnn(self.drop(self.encoder(tokens)))
        return F.log_softmax(self.decoder(output), dim=-1) * self.scale


def test_user_model_round_trip_keeps_everything(device, tmp_path):
    model = WordModel().to(device)
    model.eval()
    path = tmp_path / "model.pt"
    save(model, path)
    loaded = load(path)
    _same_module(model, loaded)
    assert type(loaded) is WordModel and loaded.training is False
    assert loaded.config["tags"] == {"lm", "lstm"} and loaded.config["where"] == "cpu"
    assert type(loaded.config["shape"]) is sg.Size and loaded.config["shape"] == (2, 3)
    assert loaded._non_persistent_buffers_set == {"cache"}
    assert "cache" not in loaded.state_dict() and loaded.unused is None
    tokens = sg.randint(0, 12, (5, 2), device=device)
    np.testing.assert_array_equal(loaded(tokens).detach().numpy(),
                                  model(tokens).detach().numpy())


def test_tied_weights_stay_tied_and_train_together(tmp_path):
    model = WordModel(tie=True)
    save(model, tmp_path / "tied.pt")
    loaded = load(tmp_path / "tied.pt")
    assert loaded.decoder.weight is loaded.encoder.weight
    assert len(list(loaded.parameters())) == len(list(model.parameters()))
    header = _header(tmp_path / "tied.pt")
    assert "encoder.weight" in header and "decoder.weight" not in header  # stored once
    # A training step on the loaded model updates the one shared tensor.
    loaded.train()
    optimizer = sg.optim.SGD(loaded.parameters(), lr=0.5)
    loaded(sg.randint(0, 12, (4, 2))).sum().backward()
    optimizer.step()
    assert loaded.decoder.weight is loaded.encoder.weight
    assert not np.array_equal(loaded.encoder.weight.detach().numpy(),
                              model.encoder.weight.detach().numpy())


def test_untied_weights_stay_separate(tmp_path):
    model = WordModel(tie=False)
    model.decoder.weight.data.copy_(sg.randn(12, 6))
    save(model, tmp_path / "untied.pt")
    loaded = load(tmp_path / "untied.pt")
    assert loaded.decoder.weight is not loaded.encoder.weight
    _same_module(model, loaded)


def test_shared_submodule_and_training_flags_per_module(tmp_path):
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Dropout(0.5), shared)
    model.train()
    model[1].eval()
    path = tmp_path / "shared.pt"
    save(model, path)
    loaded = load(path)
    assert loaded[0] is loaded[2]
    assert [m.training for m in loaded.modules()] == [True, True, False]


def test_gradients_are_not_saved_and_loaded_parameters_are_leaves(tmp_path):
    model = nn.Linear(3, 2)
    model(sg.randn(4, 3)).sum().backward()
    frozen = nn.Linear(2, 2).requires_grad_(False)
    save(nn.Sequential(model, frozen), tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt")
    assert all(p.grad is None and p.is_leaf for p in loaded.parameters())
    assert [p.requires_grad for p in loaded.parameters()] == [True, True, False, False]


def test_module_inside_a_checkpoint_dict_and_file_objects(tmp_path):
    model = WordModel()
    buffer = pyio.BytesIO()
    save({"model": model, "epoch": 3, "order": OrderedDict(b=1, a=2)}, buffer)
    checkpoint = load(pyio.BytesIO(buffer.getvalue()), weights_only=False)
    assert checkpoint["epoch"] == 3 and type(checkpoint["order"]) is OrderedDict
    _same_module(model, checkpoint["model"])
    with open(tmp_path / "m.pt", "wb") as f:  # PyTorch's spelling: torch.save(model, f)
        sg.save(model, f)
    with open(tmp_path / "m.pt", "rb") as f:
        _same_module(model, sg.load(f, map_location="cpu", weights_only=False))


def test_map_location_moves_a_whole_module(device, tmp_path):
    model = WordModel()
    save(model, tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt", map_location=device)
    assert {p.device.type for p in loaded.parameters()} == {sg.device(device).type}
    assert loaded.scale.device == device and loaded.src_mask.device == device


# -- what cannot be saved ---------------------------------------------------------------------


class Holder(nn.Module):
    """A module that holds whatever a test puts in it."""

    def __init__(self, value=None):
        super().__init__()
        self.inner = nn.Linear(2, 2)
        self.inner.value = value


def _refused(module, tmp_path, *match: str) -> None:
    """save(module) raises a TypeError whose message contains every `match`, and leaves the
    file that was there before untouched."""
    path = tmp_path / "before.pt"
    save({"w": sg.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError) as info:
        save(module, path)
    for text in match:
        assert text in str(info.value), str(info.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["before.pt"]  # no temporary file left
    path.unlink()


def _my_activation(x):
    return x


def test_functions_are_refused_except_smolgrads_own(tmp_path):
    _refused(Holder(lambda x: x), tmp_path, "'inner.value' holds a function", "<lambda>")
    _refused(Holder(_my_activation), tmp_path, "_my_activation", "state_dict()")
    _refused(Holder(print), tmp_path, "'inner.value' holds a function")
    _refused(Holder(sg.nn.Linear(2, 2).forward), tmp_path, "holds a function")
    for fn in (F.relu, F.gelu, sg.tanh, sg.exp):  # smolgrad's own: stored by name
        save(Holder(fn), tmp_path / "fn.pt")
        assert load(tmp_path / "fn.pt").inner.value is fn


def test_hooks_open_files_and_other_objects_are_refused(tmp_path):
    hooked = WordModel()
    hooked.decoder.register_forward_hook(lambda module, args, output: None)
    _refused(hooked, tmp_path, "'decoder._forward_hooks' holds a function", "handle.remove()")
    with open(tmp_path.parent / "log.txt", "w") as log:
        _refused(Holder(log), tmp_path, "TextIOWrapper", "'inner.value'")
    _refused(Holder(object()), tmp_path, "type object at 'inner.value'")


def test_a_class_defined_in_a_function_is_refused(tmp_path):
    class Local(nn.Module):
        pass

    _refused(Local(), tmp_path, "defined inside a function", "Local")


# -- files that name code ---------------------------------------------------------------------


def _header(path) -> dict:
    data = path.read_bytes()
    return json.loads(data[8:8 + int.from_bytes(data[:8], "little")])


def _edit_structure(path, edit) -> None:
    """Rewrite the smolgrad structure in a file's header with `edit(structure)` (checksums
    are not updated: load it with verify=False, as an attacker's file would be)."""
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    structure = json.loads(header["__metadata__"]["smolgrad.structure"])
    edit(structure)
    header["__metadata__"]["smolgrad.structure"] = json.dumps(structure)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length:])


def _set_class(reference):
    def edit(structure):
        structure["module"] = reference
    return edit


def _set_activation(reference):
    def edit(structure):
        layer = structure["children"][0][1]["children"][0][1]  # layers.0
        for pair in layer["attributes"]:
            if pair[0] == "activation":
                pair[1] = {"function": reference}
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (_set_class(["os", "system"]), "os.system, which is not a subclass of smolgrad.nn.Module"),
    (_set_class(["builtins", "eval"]), "not a subclass of smolgrad.nn.Module"),
    (_set_class(["collections", "OrderedDict"]), "not a subclass of smolgrad.nn.Module"),
    (_set_class(["subprocess", "Popen"]), "not a subclass of smolgrad.nn.Module"),
    (_set_class(["smolgrad.nn", "NoSuchLayer"]), "has no 'NoSuchLayer'"),
    (_set_class("smolgrad.nn.Linear"), "malformed"),
    (_set_activation(["os", "system"]), "os.system, which is not one of smolgrad's tensor"),
    (_set_activation(["smolgrad", "save"]), "smolgrad.save, which is not one of smolgrad's"),
    (_set_activation(["smolgrad", "manual_seed"]), "not one of smolgrad's tensor functions"),
    (_set_activation(["smolgrad.nn.functional", "_private"]), "not one of smolgrad's"),
])
def test_a_file_naming_code_is_refused(edit, message, tmp_path):
    path = tmp_path / "crafted.pt"
    save(nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 8), 1), path)
    _edit_structure(path, edit)
    with pytest.raises(CheckpointError, match="checksum"):  # a changed file fails its check
        load(path)
    with pytest.raises(CheckpointError) as info:
        load(path, verify=False)
    assert message in str(info.value)


def test_a_class_of_a_module_not_imported_is_not_imported(tmp_path):
    path = tmp_path / "m.pt"
    save(WordModel(), path)
    assert "this" not in sys.modules  # importing `this` prints the Zen of Python
    _edit_structure(path, _set_class(["this", "WordModel"]))
    with pytest.raises(CheckpointError, match=r"holds a this.WordModel, and the module 'this' "
                                              r"is not imported. load never imports"):
        load(path, verify=False)
    assert "this" not in sys.modules


class Trap(nn.Module):
    """Any constructor or unpickling hook of this class running is an error."""

    def __new__(cls, *args, **kwargs):
        if kwargs.get("allowed"):
            return super().__new__(cls)
        raise AssertionError("load called Trap.__new__")

    def __init__(self, allowed: bool = False):
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.made_by_init = True

    def __setstate__(self, state):
        raise AssertionError("load called Trap.__setstate__")

    def __reduce_ex__(self, protocol):
        raise AssertionError("save pickled Trap")


def test_load_calls_no_constructor_of_the_saved_class(tmp_path):
    trap = Trap(allowed=True)
    save(trap, tmp_path / "trap.pt")
    loaded = load(tmp_path / "trap.pt")
    assert type(loaded) is Trap and loaded.made_by_init
    _same_module(trap, loaded)


def test_a_file_with_a_wrong_kind_of_entry_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    save(WordModel(tie=False), path)

    def child_as_parameter(structure):
        structure["parameters"].append(["rogue", structure["children"][0][1]])

    _edit_structure(path, child_as_parameter)
    with pytest.raises(CheckpointError, match="parameter 'rogue' is a Dropout, not a Parameter"):
        load(path, verify=False)


def test_tree_state_names_are_those_of_a_bare_module():
    assert set(_TREE_STATE) <= set(nn.Module().__dict__)
