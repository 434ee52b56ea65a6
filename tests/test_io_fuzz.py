"""Checkpoint fuzzing (issue 11): every truncated, damaged or crafted file ends in a
CheckpointError that names the file and what is wrong, or loads intact; no bare NumPy
error ever escapes, and no pickle is ever run."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

import smolgrad as sg
import smolgrad.io as sgio
from smolgrad.io import CheckpointError, load, save


def _reference(tmp_path):
    """A small checkpoint with a structure and four dtypes, and what it loads as."""
    obj = {"step": 3, "lr": 0.5, "w": sg.arange(6, dtype=sg.float32).reshape(2, 3),
           "mask": sg.tensor([True, False, True]), "h": sg.tensor([1.5, -2.0], dtype=sg.float16),
           "ids": sg.tensor([7, 8], dtype=sg.int64)}
    path = tmp_path / "reference.safetensors"
    save(obj, path)
    return path.read_bytes(), load(path)


def _assert_same(got, expected) -> None:
    if isinstance(expected, sg.Tensor):
        assert isinstance(got, sg.Tensor) and got.dtype == expected.dtype
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        for key in expected:
            _assert_same(got[key], expected[key])
    else:
        assert got == expected and type(got) is type(expected)


def _put(path, content: bytes) -> None:
    """Write a fresh file (truncating one that holds data makes ext4 flush it: slow)."""
    path.unlink(missing_ok=True)
    path.write_bytes(content)


def _outcome(path, expected) -> str:
    """'refused' (a CheckpointError naming the file) or 'intact'; anything else fails."""
    try:
        back = load(path)
    except CheckpointError as e:
        assert str(path) in str(e), e
        return "refused"
    _assert_same(back, expected)
    return "intact"


def test_truncation_at_every_offset_is_refused(tmp_path):
    raw, _ = _reference(tmp_path)
    path = tmp_path / "cut.safetensors"
    for n in range(len(raw)):
        _put(path, raw[:n])
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert str(path) in str(info.value), n


def test_byte_flips_are_refused_or_harmless(tmp_path):
    """Flip two different bit patterns in every byte. A flip in the data always fails
    the tensor's checksum; a flip in the header fails the layout checks, the JSON parse or
    the header checksum, unless it changes nothing that load returns."""
    raw, expected = _reference(tmp_path)
    data_start = 8 + int.from_bytes(raw[:8], "little")
    path = tmp_path / "flipped.safetensors"
    outcomes = {"refused": 0, "intact": 0}
    for i in range(len(raw)):
        for mask in (1 << (i % 8), 0xFF):
            damaged = bytearray(raw)
            damaged[i] ^= mask
            _put(path, bytes(damaged))
            outcome = _outcome(path, expected)
            outcomes[outcome] += 1
            if i >= data_start:
                assert outcome == "refused", (i, mask)
                with pytest.raises(CheckpointError, match="fails its checksum"):
                    load(path)
    assert outcomes["refused"] > 0.9 * 2 * len(raw), outcomes


def _craft(path, header, data: bytes = b"", length: int | None = None) -> None:
    """Write a file by hand: the 8-byte length (any u64), the header, the data."""
    text = header if isinstance(header, bytes) else (
        header if isinstance(header, str) else json.dumps(header)).encode()
    size = len(text) if length is None else length
    path.write_bytes(size.to_bytes(8, "little") + text + data)


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def _one(**changes) -> dict:
    return {"w": {**F32_2, **changes}}


CRAFTED = {  # name: (header, data, length field or None, what the error must say)
    "length 2**64-1": (_one(), bytes(8), 2**64 - 1, "header length field says"),
    "length -8 as u64": (_one(), bytes(8), 2**64 - 8, "header length field says"),
    "length past end": (_one(), bytes(8), 10_000, "header length field says"),
    "length zero": (_one(), bytes(8), 0, "does not start with"),
    "length one": ({}, b"", 1, "not valid JSON"),
    "shape [0, 2**62]": (_one(shape=[0, 2**62], data_offsets=[0, 0]), b"", None, "too large"),
    "shape [2**62, 2**62]": (_one(shape=[2**62, 2**62]), bytes(8), None, "too large"),
    "65 dimensions": (_one(shape=[1] * 65, data_offsets=[0, 4]), bytes(4), None,
                      "65 dimensions"),
    "negative dim": (_one(shape=[-2]), bytes(8), None, "shape"),
    "float dim": (_one(shape=[2.0]), bytes(8), None, "shape"),
    "bool dim": (_one(shape=[True, 2]), bytes(8), None, "shape"),
    "shape not a list": (_one(shape="2"), bytes(8), None, "shape"),
    "negative offset": (_one(data_offsets=[-8, 0]), bytes(8), None, "data_offsets"),
    "reversed offsets": (_one(data_offsets=[8, 0]), bytes(8), None, "data_offsets"),
    "three offsets": (_one(data_offsets=[0, 4, 8]), bytes(8), None, "data_offsets"),
    "huge offsets": (_one(data_offsets=[2**64, 2**64 + 8]), bytes(8), None, "only 8 bytes"),
    "out of range": (_one(), bytes(4), None, "only 4 bytes"),
    "overlap": ({"a": F32_2, "b": {**F32_2, "data_offsets": [4, 12]}}, bytes(12), None,
                "overlap"),
    "gap": ({"a": {**F32_2, "shape": [1], "data_offsets": [0, 4]},
             "b": {**F32_2, "shape": [1], "data_offsets": [8, 12]}}, bytes(12), None,
            "no tensor holds bytes 4..8"),
    "trailing bytes": (_one(), bytes(12), None, "hold 8 bytes but 12 follow"),
    "shape x itemsize != span": (_one(shape=[3]), bytes(8), None, "need 12 bytes"),
    "F32 read as F64": (_one(dtype="F64"), bytes(8), None, "need 16 bytes"),
    "unknown dtype": (_one(dtype="F33"), bytes(8), None, "dtype 'F33'"),
    "dtype not a string": (_one(dtype=4), bytes(8), None, "dtype 4"),
    "dtype smolgrad lacks": (_one(dtype="U64", shape=[1]), bytes(8), None, "cannot load"),
    "no dtype": ({"w": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8), None, "no dtype"),
    "entry not an object": ({"w": [0, 8]}, bytes(8), None, "not a JSON object"),
    "header a list": ([F32_2], bytes(8), None, "does not start with"),
    "bad JSON": ('{"w": ', bytes(8), None, "not valid JSON"),
    "not UTF-8": (b'{"\xff\xfe": 1}', b"", None, "not valid JSON"),
    "deep nesting": ('{"w": ' + "[" * 100_000 + "]" * 100_000 + "}", b"", None,
                     "not valid JSON|not a JSON object"),
    "duplicate name": ('{"w": ' + json.dumps(F32_2) + ', "w": ' + json.dumps(F32_2) + "}",
                       bytes(8), None, "'w' appears twice"),
    "metadata a list": ({"__metadata__": [1], **_one()}, bytes(8), None, "__metadata__"),
    "metadata not strings": ({"__metadata__": {"x": 1}, **_one()}, bytes(8), None,
                             "__metadata__"),
    "checksums not JSON": ({"__metadata__": {sgio.CHECKSUM_KEY: "{"}, **_one()}, bytes(8),
                           None, "checksum list"),
    "checksums unknown": ({"__metadata__": {sgio.CHECKSUM_KEY: json.dumps(
        {"algorithm": "md17", "header": "0", "tensors": {"w": "0"}})}, **_one()}, bytes(8),
        None, "'md17'"),
    "checksums other names": ({"__metadata__": {sgio.CHECKSUM_KEY: json.dumps(
        {"algorithm": "crc32", "header": "0", "tensors": {"v": "0"}})}, **_one()}, bytes(8),
        None, "disagree"),
    "structure missing tensor": ({"__metadata__": {sgio.STRUCTURE_KEY: '{"tensor": "v"}'},
                                  **_one()}, bytes(8), None, "'v', which is not in the file"),
    "structure not JSON": ({"__metadata__": {sgio.STRUCTURE_KEY: "[1,"}, **_one()},
                           bytes(8), None, "not valid JSON"),
    "structure too deep": ({"__metadata__": {sgio.STRUCTURE_KEY: "[" * 100_000}, **_one()},
                           bytes(8), None, "not valid JSON"),
    "structure deep lists": ({"__metadata__": {sgio.STRUCTURE_KEY: "[" * 600 + "]" * 600},
                             **_one()}, bytes(8), None, "malformed"),
    "structure unhashable key": ({"__metadata__": {sgio.STRUCTURE_KEY: json.dumps(
        {"dict": [[{"dict": []}, 1]]})}, **_one()}, bytes(8), None, "malformed"),
    "structure bad dtype": ({"__metadata__": {sgio.STRUCTURE_KEY: '{"dtype": "F99"}'},
                            **_one()}, bytes(8), None, "malformed"),
    "structure tensor name a list": ({"__metadata__": {sgio.STRUCTURE_KEY: json.dumps(
        {"tensor": ["w"]})}, **_one()}, bytes(8), None, "malformed|not in the file"),
    "structure unknown device": ({"__metadata__": {sgio.STRUCTURE_KEY: json.dumps(
        {"tensor": "w", "device": "quantum"})}, **_one()}, bytes(8), None, "'quantum'"),
    "structure device a number": ({"__metadata__": {sgio.STRUCTURE_KEY: json.dumps(
        {"tensor": "w", "device": 5})}, **_one()}, bytes(8), None, "malformed"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_headers_are_refused_clearly(tmp_path, case):
    header, data, length, message = CRAFTED[case]
    path = tmp_path / "crafted.safetensors"
    _craft(path, header, data, length)
    with pytest.raises(CheckpointError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_a_header_longer_than_the_format_allows_is_not_read(tmp_path):
    path = tmp_path / "long.safetensors"
    _craft(path, _one(), bytes(8), length=100_000_008)
    os.truncate(path, 200_000_000)  # a sparse file: the length fits, but is absurd
    with pytest.raises(CheckpointError, match="more than the 100000000") as info:
        load(path)
    assert str(path) in str(info.value)


def test_a_well_formed_crafted_file_loads(tmp_path):
    """The crafting helper itself writes loadable files (so the refusals above are due to
    each case's one defect), including empty tensors with zero-sized dimensions."""
    path = tmp_path / "ok.safetensors"
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [8, 8]},
              "i": {"dtype": "U8", "shape": [1], "data_offsets": [8, 9]}}
    _craft(path, header, np.array([1.5, 2.5], "<f4").tobytes() + b"\x07")
    back = load(path)
    assert back["a"].tolist() == [1.5, 2.5] and back["e"].shape == (0, 5)
    assert back["i"].tolist() == [7] and back["i"].dtype == sg.int32


class _Payload:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickles(marker: str) -> dict:
    """Files whose loading by pickle/torch.load would write `marker`."""
    evil = {"weight": torch.zeros(2), "x": _Payload(marker)}
    files = {f"protocol {p}": pickle.dumps(_Payload(marker), protocol=p)
             for p in range(pickle.HIGHEST_PROTOCOL + 1)}
    for name, zipped in (("torch.save", True), ("torch.save legacy", False)):
        buffer = __import__("io").BytesIO()
        torch.save(evil, buffer, _use_new_zipfile_serialization=zipped)
        files[name] = buffer.getvalue()
    payload = pickle.dumps(_Payload(marker), protocol=2)  # a pickle behind a length field
    files["pickle as header"] = len(payload).to_bytes(8, "little") + payload
    return files


def test_pickles_of_every_protocol_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for name, content in _pickles(str(marker)).items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert str(path) in str(info.value), name
        if name != "pickle as header":
            assert "pickle" in str(info.value), name
        assert not marker.exists(), name


def test_an_empty_tensor_with_a_huge_dimension(tmp_path, device):
    """Shape [0, 2**33]: NumPy holds it, MLX does not (dimensions are int32 there); either
    it loads with that shape or the error names the file, the tensor and the device."""
    path = tmp_path / "wide.safetensors"
    _craft(path, _one(shape=[0, 2**33], data_offsets=[0, 0]))
    try:
        back = load(path, map_location=device)
    except CheckpointError as e:
        assert str(path) in str(e) and "'w'" in str(e) and f"device '{device}'" in str(e)
    else:
        assert back["w"].shape == (0, 2**33) and back["w"].dtype == sg.float32
