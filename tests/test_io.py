"""sg.save / sg.load: safetensors in and out, nested state dicts, no pickle, atomic writes."""

from __future__ import annotations

import io as pyio
import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file as torch_load_file
from safetensors.torch import save_file as torch_save_file

import smolgrad as sg
import smolgrad.io as sgio
from smolgrad.arrays import get_backend
from smolgrad.io import CheckpointError, load, save

DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool"]


def _sample(dtype: str, shape=(2, 3)) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith("int"):
        return rng.integers(-1000, 1000, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)



def _supported(device):
    return [d for d in DTYPES if d != "float64" or get_backend(device).has_float64]


def test_flat_state_dict_round_trip_and_torch_reads_it(device, tmp_path):
    arrays = {f"layer.{d}": _sample(d) for d in _supported(device)}
    arrays["scalar"] = np.array(3.5, dtype=np.float32)
    arrays["empty"] = np.zeros((0, 4), dtype=np.float32)
    state = {k: sg.tensor(v, device=device) for k, v in arrays.items()}
    path = tmp_path / "model.safetensors"
    save(state, path)
    loaded = load(path)
    assert list(loaded) == list(state)  # the header keeps the state dict's order
    for k, v in arrays.items():
        assert isinstance(loaded[k], sg.Tensor)
        assert loaded[k].dtype == sg.tensor(v).dtype, k
        assert loaded[k].shape == v.shape, k
        np.testing.assert_array_equal(loaded[k].numpy(), v, err_msg=k)
    # A standard file: the safetensors reference reader sees the same names and values.
    theirs = torch_load_file(str(path))
    assert set(theirs) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(theirs[k].numpy(), v, err_msg=k)
    with safe_open(str(path), "np") as f:
        assert set(f.metadata()) == {"format", sgio.CHECKSUM_KEY}
        assert f.metadata()["format"] == "pt"


def test_module_state_dict_is_a_plain_safetensors_file(device, tmp_path):
    model = sg.nn.Sequential(sg.nn.Linear(3, 4), sg.nn.ReLU(), sg.nn.Linear(4, 2)).to(device)
    path = tmp_path / "model.safetensors"
    save(model.state_dict(), path)
    with safe_open(str(path), "np") as f:
        assert f.metadata()["format"] == "pt"
    theirs = torch_load_file(str(path))
    assert list(theirs) == list(model.state_dict()) or set(theirs) == set(model.state_dict())
    fresh = sg.nn.Sequential(sg.nn.Linear(3, 4), sg.nn.ReLU(), sg.nn.Linear(4, 2)).to(device)
    fresh.load_state_dict(load(path))
    x = sg.randn(5, 3, device=device)
    np.testing.assert_array_equal(fresh(x).detach().numpy(), model(x).detach().numpy())


def test_loads_files_written_by_safetensors_torch(device, tmp_path):
    tensors = {"a": torch.randn(4, 5), "b.weight": torch.arange(6, dtype=torch.int32),
               "c": torch.tensor([True, False]), "h": torch.randn(3).half()}
    path = tmp_path / "t.safetensors"
    torch_save_file(tensors, str(path))
    loaded = load(path, map_location=device)
    assert set(loaded) == set(tensors)
    for k, t in tensors.items():
        assert str(loaded[k].device) == sg.device(device).type
        np.testing.assert_array_equal(loaded[k].numpy(), t.numpy())
        assert loaded[k].dtype.name == str(t.dtype).split(".")[-1]


def test_bfloat16(device, tmp_path):
    values = torch.randn(2, 3).to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    torch_save_file({"w": values}, str(path))
    expected = values.float().numpy()
    if getattr(get_backend(device), "has_bfloat16", False):
        loaded = load(path, map_location=device)
        assert loaded["w"].dtype == sg.bfloat16
        np.testing.assert_array_equal(loaded["w"].float().numpy(), expected)
        save(loaded, tmp_path / "again.safetensors")  # and back out as BF16
        again = torch_load_file(str(tmp_path / "again.safetensors"))["w"]
        assert again.dtype == torch.bfloat16 and torch.equal(again, values)
    else:
        with pytest.warns(UserWarning, match="bfloat16"):
            loaded = load(path, map_location=device)
        assert loaded["w"].dtype == sg.float32
        np.testing.assert_array_equal(loaded["w"].numpy(), expected)


def test_nested_structure_round_trip(device, tmp_path):
    w = sg.tensor(_sample("float32"), device=device, requires_grad=True)
    shared = sg.tensor([1.0, 2.0], device=device)
    obj = {
        "state": {0: {"step": 3, "exp_avg": sg.ones(2, 3, device=device)},
                  1: {"momentum_buffer": None}},
        "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False,
                          "params": [0, 1], "name": "group ü"}],
        "floats": [math.inf, -math.inf, 1e-300, 2.5],
        "nan": math.nan,
        "array": np.arange(5, dtype=np.int64),
        "dtype": sg.float16,
        "tied": [shared, shared],
        "weight": w,
        "empty": {},
        (1, "a"): "tuple key",
        2.5: "float key",
        None: [],
    }
    path = tmp_path / "ckpt.safetensors"
    save(obj, path)
    back = load(path)
    assert back["state"][0]["step"] == 3 and isinstance(back["state"][0]["step"], int)
    np.testing.assert_array_equal(back["state"][0]["exp_avg"].numpy(), np.ones((2, 3)))
    assert back["state"][1] == {"momentum_buffer": None}
    assert back["param_groups"] == [{"lr": 0.1, "betas": (0.9, 0.999), "nesterov": False,
                                     "params": [0, 1], "name": "group ü"}]
    assert back["floats"] == [math.inf, -math.inf, 1e-300, 2.5]
    assert math.isnan(back["nan"])
    assert isinstance(back["array"], np.ndarray) and back["array"].tolist() == list(range(5))
    assert back["dtype"] is sg.float16
    assert back["tied"][0] is back["tied"][1]
    assert back["weight"].requires_grad and back["weight"].is_leaf
    assert str(back["weight"].device) == sg.device(device).type
    np.testing.assert_array_equal(back["weight"].detach().numpy(), w.detach().numpy())
    assert back["empty"] == {}
    assert back[(1, "a")] == "tuple key" and back[2.5] == "float key" and back[None] == []
    assert list(back) == list(obj)


def test_map_location_moves_to_cpu(device, tmp_path):
    save({"nested": [sg.ones(2, device=device)]}, tmp_path / "x.safetensors")
    back = load(tmp_path / "x.safetensors", map_location="cpu")
    assert str(back["nested"][0].device) == "cpu"
    back = load(tmp_path / "x.safetensors", device=sg.device("cpu"))
    assert str(back["nested"][0].device) == "cpu"
    with pytest.raises(TypeError, match="map_location"):
        load(tmp_path / "x.safetensors", map_location=lambda storage, loc: storage)


def test_file_objects():
    buffer = pyio.BytesIO()
    save({"a": sg.arange(3), "meta": {"epoch": 4}}, buffer)
    buffer.seek(0)
    back = load(buffer)
    assert back["a"].tolist() == [0, 1, 2] and back["meta"] == {"epoch": 4}


def test_extra_metadata_is_kept(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"a": sg.zeros(1)}, path, metadata={"note": "hello"})
    with safe_open(str(path), "np") as f:
        assert f.metadata()["note"] == "hello"


class _Payload:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_refuses_pickles_without_running_them(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"weight": torch.zeros(2), "x": _Payload(str(marker))}, str(path))
    else:
        path.write_bytes(pickle.dumps(_Payload(str(marker)), protocol=4))
    with pytest.raises(CheckpointError, match="never unpickles") as info:
        load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_truncated_and_corrupt_files(tmp_path):
    good = tmp_path / "good.safetensors"
    save({"w": sg.arange(100), "cfg": {"a": 1}}, good)
    raw = good.read_bytes()
    cases = {
        "empty": b"",
        "short": raw[:5],
        "header_cut": raw[:40],
        "data_cut": raw[:-17],
        "garbage": os.urandom(64),
        "bad_json": raw[:8] + b"{" * (int.from_bytes(raw[:8], "little")) + raw[
            8 + int.from_bytes(raw[:8], "little"):],
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert str(path) in str(info.value), name
    assert load(good)["cfg"] == {"a": 1}


def test_corrupt_structure_is_reported(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "s.safetensors"
    save_file({"x": np.zeros(2, np.float32)}, str(path),
              metadata={sgio.STRUCTURE_KEY: '{"tensor": "missing"}'})
    with pytest.raises(CheckpointError, match="missing"):
        load(path)
    save_file({"x": np.zeros(2, np.float32)}, str(path),
              metadata={sgio.STRUCTURE_KEY: '{"what": 1}'})
    with pytest.raises(CheckpointError, match="corrupt"):
        load(path)


def test_crash_mid_write_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save({"w": sg.ones(4), "epoch": 1}, path)

    def crash(stream, header, buffers):
        stream.write(header)  # the header made it to disk, then...
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(sgio, "_write", crash)
    with pytest.raises(OSError, match="simulated"):
        save({"w": sg.zeros(4), "epoch": 2}, path)
    back = load(path)
    assert back["epoch"] == 1 and back["w"].tolist() == [1.0] * 4
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"], "temp file left behind"


def test_overwrite_keeps_permissions(tmp_path):
    path = tmp_path / "p.safetensors"
    save({"a": sg.zeros(1)}, path)
    os.chmod(path, 0o640)
    save({"a": sg.ones(1)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert load(path)["a"].tolist() == [1.0]


def test_unsupported_values_name_the_path(tmp_path):
    with pytest.raises(TypeError, match="optimizer.extra"):
        save({"optimizer": {"extra": object()}}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="metadata"):
        save({"a": sg.zeros(1)}, tmp_path / "y.safetensors", metadata={"n": 1})
    assert not (tmp_path / "x.safetensors").exists()


# ---- issue 11.1: the 8-byte header length may start like a pickle -----------------------


def _looks_like_a_pickle(raw: bytes) -> bool:
    return raw[:1] == b"\x80" and 2 <= raw[1] <= 5


def test_header_lengths_that_start_like_a_pickle_load(tmp_path):
    """A header of 640 bytes has the length field b"\\x80\\x02\\0...", a pickle's first two
    bytes. Sweep the header length over every multiple of 8 from ~200 to ~1800 bytes (the
    writer pads to 8) and check every file loads back; the sweep must meet such lengths."""
    path = tmp_path / "issue.safetensors"
    save({f"layer{i}.weight": sg.zeros(3) for i in range(9)}, path)  # the reported case
    assert set(load(path)) == {f"layer{i}.weight" for i in range(9)}
    pickle_like = 0
    for note in range(0, 1600, 8):
        buffer = pyio.BytesIO()
        save({"w": sg.full((3,), float(note))}, buffer, metadata={"note": "x" * note})
        pickle_like += _looks_like_a_pickle(buffer.getvalue())
        buffer.seek(0)
        assert load(buffer)["w"].tolist() == [float(note)] * 3, note
    assert pickle_like >= 4
    for n in range(1, 64):  # and state dicts of many sizes, as a user would write them
        buffer = pyio.BytesIO()
        save({f"layer{i}.weight": sg.full((3,), float(i)) for i in range(n)}, buffer)
        buffer.seek(0)
        back = load(buffer)
        assert [t.tolist() for t in back.values()] == [[float(i)] * 3 for i in range(n)]


# ---- issue 11.7: checksums -----------------------------------------------------------------


def _data_start(raw: bytes) -> int:
    return 8 + int.from_bytes(raw[:8], "little")


def test_flipped_data_byte_names_the_tensor(tmp_path):
    path = tmp_path / "c.safetensors"
    save({"first": sg.arange(4), "second.weight": sg.ones(8), "third": sg.zeros(2)}, path)
    raw = bytearray(path.read_bytes())
    header = json.loads(raw[8:_data_start(raw)])
    start, end = header["second.weight"]["data_offsets"]
    raw[_data_start(raw) + (start + end) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="'second.weight' fails its checksum") as info:
        load(path)
    assert str(path) in str(info.value)
    back = load(path, verify=False)  # the opt-out reads it anyway
    assert back["second.weight"].tolist() != [1.0] * 8
    assert back["first"].tolist() == [0, 1, 2, 3]


def test_structure_checkpoints_are_checked_too(tmp_path):
    path = tmp_path / "opt.safetensors"
    save({"step": 7, "state": {0: {"exp_avg": sg.full((5,), 0.5)}}}, path)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="'state.0.exp_avg' fails its checksum"):
        load(path)


def test_header_changes_fail_the_header_checksum(tmp_path):
    """Renaming a tensor, changing a shape, or editing the saved structure (all of which
    keep the file well-formed) is caught by the header's CRC."""
    path = tmp_path / "h.safetensors"
    save({"epoch": 3, "w": sg.ones(2, 3)}, path)
    raw = path.read_bytes()
    edits = [(b'epoch\\", 3]', b'epoch\\", 4]'),  # the structure, escaped in the header
             (b'"shape":[2,3]', b'"shape":[3,2]'),
             (b'"w":{"dtype"', b'"v":{"dtype"')]
    for old, new in edits:
        assert raw.count(old) == 1, old
        path.write_bytes(raw.replace(old, new))
        with pytest.raises(CheckpointError, match="header fails its checksum|checksum list"):
            load(path)
    path.write_bytes(raw.replace(*edits[0]))
    assert load(path, verify=False)["epoch"] == 4  # without the check it slips through


def test_files_without_checksums_still_load(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "plain.safetensors"
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file({"w": values}, str(path), metadata={"format": "np"})
    np.testing.assert_array_equal(load(path)["w"].numpy(), values)


def test_reserved_metadata_keys(tmp_path):
    for key in (sgio.STRUCTURE_KEY, sgio.CHECKSUM_KEY):
        with pytest.raises(ValueError, match="reserved"):
            save({"a": sg.zeros(1)}, tmp_path / "r.safetensors", metadata={key: "x"})


# ---- issue 11.6: temporary files and symlinks ----------------------------------------------


def test_save_through_a_symlink_writes_its_target(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    real = real_dir / "model.safetensors"
    save({"a": sg.zeros(2)}, real)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(os.path.relpath(real, tmp_path))
    save({"a": sg.ones(2)}, link)
    assert link.is_symlink(), "the link was replaced by a file"
    assert load(real)["a"].tolist() == [1.0, 1.0]
    assert sorted(os.listdir(real_dir)) == ["model.safetensors"]
    dangling = tmp_path / "new.safetensors"
    dangling.symlink_to(real_dir / "later.safetensors")
    save({"a": sg.full((2,), 3.0)}, dangling)
    assert dangling.is_symlink() and load(real_dir / "later.safetensors")["a"].tolist() == [3, 3]


def test_next_save_removes_abandoned_temp_files_only(tmp_path):
    """A killed save leaves its temporary file unlocked: the next save to that target
    deletes it. A temporary file still locked by a running save, another target's, and
    the user's own files are left alone."""
    path = tmp_path / "ckpt.safetensors"
    abandoned = sgio._TempFile(str(tmp_path), path.name)
    abandoned.create()
    abandoned.close()  # as the kernel does when the saving process dies
    running = sgio._TempFile(str(tmp_path), path.name)
    running.create()  # kept open and locked: a save in another thread or process
    other = sgio._TempFile(str(tmp_path), "other.safetensors")
    other.create()
    other.close()
    mine = tmp_path / ".ckpt.safetensors.notes.tmp"
    mine.write_text("keep")
    try:
        save({"a": sg.ones(1)}, path)
        left = set(os.listdir(tmp_path))
    finally:
        running.close()
    assert os.path.basename(abandoned.path) not in left
    assert {os.path.basename(running.path), os.path.basename(other.path), mine.name,
            path.name} == left
    assert load(path)["a"].tolist() == [1.0]


def test_concurrent_saves_to_one_target_never_delete_each_others_temp_file(tmp_path):
    """Each save first removes abandoned temp files of its target; one still being written
    by another thread is locked and must survive (else that save's rename would fail)."""
    import threading

    path = tmp_path / "shared.safetensors"
    errors: list = []

    def saver(k: int) -> None:
        try:
            for i in range(5):
                save({"who": sg.full((50_000,), float(k * 100 + i))}, path)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=saver, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert os.listdir(tmp_path) == [path.name]
    values = load(path)["who"].numpy()
    assert (values == values[0]).all() and values[0] % 100 == 4  # some thread's last save


def test_long_file_names_get_short_enough_temp_files(tmp_path):
    path = tmp_path / ("é" * 120 + ".safetensors")  # 252 bytes: no room for a suffix
    abandoned = sgio._TempFile(str(tmp_path), path.name)
    abandoned.create()
    abandoned.close()
    assert len(os.fsencode(os.path.basename(abandoned.path))) <= 255
    save({"a": sg.ones(1)}, path)
    assert os.listdir(tmp_path) == [path.name]
