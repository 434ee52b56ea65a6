"""The scripts in examples/, each run with tiny settings, plus the IDX parser of mnist.py
checked on files written byte by byte here."""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import struct

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"smolgrad_example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mnist = _load("mnist")
two_waves = _load("two_waves")
char_gpt = _load("char_gpt")


# -- IDX files, written by hand --------------------------------------------------------

def _idx_bytes(array: np.ndarray, type_code: int, big_endian_dtype: str) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I",
                                                                *array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


def _write(path, data: bytes) -> str:
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("type_code, dtype", [(0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"),
                                              (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")])
def test_read_idx_every_element_type(tmp_path, type_code, dtype):
    rng = np.random.default_rng(0)
    array = (rng.uniform(0, 100, (3, 4, 5)) if dtype[1] == "f"
             else rng.integers(0, 100, (3, 4, 5))).astype(dtype)
    path = _write(tmp_path / "a-idx3", _idx_bytes(array, type_code, dtype))
    out = mnist.read_idx(path)
    assert out.shape == (3, 4, 5)
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, array)


def test_read_idx_is_big_endian_and_reads_gzip(tmp_path):
    # 258 stored big-endian as int16 is bytes 01 02; little-endian reading would give 513
    raw = bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 2) + bytes([1, 2, 0, 7])
    path = _write(tmp_path / "x-idx1-short.gz", raw)
    np.testing.assert_array_equal(mnist.read_idx(path), [258, 7])


@pytest.mark.parametrize("raw, message", [
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "magic number"),
    (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "element type code 0x42"),
    (bytes([0, 0, 8, 2, 0, 0, 0, 2]), "truncated header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 6]), "truncated"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]), "trailing bytes"),
    (bytes([0, 0]), "too short"),
])
def test_read_idx_rejects_malformed_files(tmp_path, raw, message):
    path = _write(tmp_path / "bad", raw)
    with pytest.raises(mnist.IDXError, match=message):
        mnist.read_idx(path)


def _synthetic_mnist(folder, n_train: int = 240, n_test: int = 60, size: int = 12) -> None:
    """Learnable fake digits: class k lights up a 3x3 patch at a k-dependent place."""
    rng = np.random.default_rng(0)
    for split, n, gz in (("train", n_train, True), ("t10k", n_test, False)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, size, size))
        for i, k in enumerate(labels):
            row, col = 3 * (k // 4) + 1, 3 * (k % 4)
            images[i, row:row + 3, col:col + 3] = 255
        suffix = ".gz" if gz else ""
        _write(folder / f"{split}-images-idx3-ubyte{suffix}", _idx_bytes(images, 8, ">u1"))
        _write(folder / f"{split}-labels-idx1-ubyte{suffix}", _idx_bytes(labels, 8, ">u1"))


def test_mnist_trains_on_small_idx_files(tmp_path, device, capsys):
    _synthetic_mnist(tmp_path)
    assert mnist.main(["--data", str(tmp_path), "--epochs", "3", "--batch-size", "16",
                       "--lr", "0.01", "--device", device]) == 0
    out = capsys.readouterr().out
    assert "240 training and 60 test images of 12x12" in out
    accuracy = float(re.search(r"final test accuracy: ([\d.]+)%", out).group(1))
    assert accuracy >= 90.0, out


def test_mnist_cnn_runs(tmp_path, device):
    _synthetic_mnist(tmp_path, n_train=64, n_test=20)
    args = mnist.parse_args(["--data", str(tmp_path), "--model", "cnn", "--epochs", "1",
                             "--device", device])
    result = mnist.train(args)
    assert len(result["losses"]) == 1 and np.isfinite(result["losses"][0])


def test_mnist_without_files_says_where_to_put_them(tmp_path):
    with pytest.raises(SystemExit) as info:
        mnist.main(["--data", str(tmp_path / "nowhere")])
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message


# -- two waves ---------------------------------------------------------------------------

def test_two_waves_data():
    points, labels = two_waves.make_two_waves()
    assert points.shape == (400, 2) and labels.shape == (400,)
    assert labels[:200].sum() == 0 and labels[200:].sum() == 200
    assert points[200:, 1].mean() - points[:200, 1].mean() > 2.5   # the upper wave is above


def test_two_waves_smolgrad_follows_pytorch(device, capsys):
    result = two_waves.compare(epochs=40, print_every=10, device=device)
    assert len(result["smolgrad_losses"]) == 40
    assert result["max_diff"] < 1e-5
    assert result["smolgrad_losses"][-1] < result["smolgrad_losses"][0]
    out = capsys.readouterr().out
    assert "smolgrad" in out and "pytorch" in out and "largest loss difference" in out


# -- character-level GPT -----------------------------------------------------------------

def test_char_tokenizer_round_trip():
    tok = char_gpt.CharTokenizer("hello world")
    assert tok.vocab_size == len(set("hello world"))
    assert tok.decode(tok.encode("low hold")) == "low hold"
    with pytest.raises(ValueError, match="do not occur"):
        tok.encode("xyz")


def test_default_corpus_is_shipped():
    with open(char_gpt.DEFAULT_TEXT, encoding="utf-8") as f:
        assert len(f.read()) > 3000


def test_char_gpt_learns_and_samples(device, capsys):
    args = char_gpt.parse_args(["--steps", "80", "--batch-size", "8", "--block-size", "16",
                                "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                                "--eval-batches", "2", "--log-every", "20",
                                "--sample-tokens", "40", "--prompt", "The ",
                                "--device", device])
    result = char_gpt.train(args)
    losses = result["losses"]
    assert np.mean(losses[-10:]) < losses[0] - 0.6, losses   # from ~log(vocab) downwards
    assert result["val_loss"] < np.log(result["tokenizer"].vocab_size) - 0.5
    sample = result["sample"]
    assert sample.startswith("The ") and len(sample) == 44
    assert set(sample) <= set(result["tokenizer"].chars)
    assert "sample" in capsys.readouterr().out


def test_char_gpt_rejects_too_short_text(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("abc")
    with pytest.raises(SystemExit, match="fewer than"):
        char_gpt.main(["--text", str(path), "--block-size", "8"])


def test_examples_have_help():
    for module in (mnist, two_waves, char_gpt):
        with pytest.raises(SystemExit) as info:
            module.main(["--help"])
        assert info.value.code == 0
