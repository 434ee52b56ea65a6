"""`sg.save(obj, path)` and `sg.load(path)`: checkpoints that can never run code.

PyTorch's `torch.save` writes a pickle, and unpickling a file can execute arbitrary code.
smolgrad writes a **safetensors** file instead: an 8-byte header length, a JSON header
naming every tensor's dtype, shape and byte range, then the raw bytes. Loading only ever
parses JSON and copies bytes.

- A flat `{str: Tensor}` dict (a model's `state_dict()`) is written as a plain safetensors
  file that any safetensors reader (`safetensors.torch.load_file`, Hugging Face) reads, and
  `sg.load` of *any* safetensors file returns a `{name: Tensor}` dict.
- Anything else (an optimizer's state dict: nested dicts with int keys, lists, tuples,
  numbers, strings, bools, None, tensors, NumPy arrays) is stored as the tensors plus a
  JSON description of the structure in the header's `__metadata__` (under the key
  "smolgrad.structure"), in which each tensor is a reference by name. A tensor that
  appears twice (tied weights) is stored once and comes back shared.

Writes are atomic: the bytes go to a temporary file in the same directory, are flushed to
disk (fsync), and only then renamed over the target (`os.replace`), so a crash mid-write
leaves the previous file as it was. Loading a truncated, corrupt or pickle file raises
`CheckpointError` (a RuntimeError) naming the path.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings

import numpy as np

from . import dtypes as dt
from .arrays import canonical_device, get_backend, is_available
from .engine import Tensor

STRUCTURE_KEY = "smolgrad.structure"

# smolgrad dtype -> the dtype name safetensors' serializer takes
_SAVE_DTYPES = {dt.bool_: "bool", dt.int32: "int32", dt.int64: "int64",
                dt.float16: "float16", dt.bfloat16: "bfloat16", dt.float32: "float32",
                dt.float64: "float64"}
# safetensors header dtype -> (NumPy dtype of the bytes, smolgrad dtype to load as)
_LOAD_DTYPES = {
    "BOOL": (np.bool_, dt.bool_), "F16": (np.float16, dt.float16),
    "F32": (np.float32, dt.float32), "F64": (np.float64, dt.float64),
    "I32": (np.int32, dt.int32), "I64": (np.int64, dt.int64),
    # integer types smolgrad lacks are widened without loss
    "I8": (np.int8, dt.int32), "U8": (np.uint8, dt.int32), "I16": (np.int16, dt.int32),
    "U16": (np.uint16, dt.int32), "U32": (np.uint32, dt.int64),
    "BF16": (np.uint16, dt.bfloat16),  # raw bits, decoded by _bfloat16_to_float32
}


class CheckpointError(RuntimeError):
    """A file that `sg.load` refuses: truncated, corrupt, not safetensors, or a pickle."""


def _safetensors():
    try:
        import safetensors
    except ImportError:
        raise ImportError("sg.save / sg.load need the safetensors package: "
                          "pip install safetensors") from None
    return safetensors


# ---------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------


def save(obj, f, metadata: dict | None = None) -> None:
    """Write `obj` (a state dict or any nesting of dicts/lists/tuples of tensors, arrays,
    numbers, strings, bools and None) to `f` (a path, or a binary file object) atomically.

    `metadata`: extra str -> str entries for the safetensors header (kept by other tools).
    """
    arrays: dict = {}
    if _is_flat_tensor_dict(obj):
        for name, tensor in obj.items():
            arrays[name] = _tensor_bytes(tensor, name)
        header_meta = {"format": "pt"}  # what Hugging Face loaders expect to see
    else:
        encoder = _Encoder(arrays)
        structure = encoder.encode(obj, "")
        header_meta = {STRUCTURE_KEY: json.dumps(structure, allow_nan=False)}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"save: metadata must map str to str, got {key!r}: {value!r}")
        header_meta[key] = value
    if hasattr(f, "write"):
        f.write(_serialize(arrays, header_meta))
        return
    _atomic_write(os.fspath(f), arrays, header_meta)


def _is_flat_tensor_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0  # dict or OrderedDict (Module.state_dict)
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, Tensor) for v in obj.values()))


def _tensor_bytes(t: Tensor, name: str):
    """(safetensors dtype name, shape, contiguous little-endian NumPy array of the bytes)."""
    dtype = t.dtype
    if dtype is dt.bfloat16:
        as_f32 = t.backend.to_numpy(t.backend.astype(t.array, dt.float32))
        bits = np.ascontiguousarray(as_f32, dtype="<f4").view(np.uint32) >> 16
        return "bfloat16", tuple(t.shape), bits.astype("<u2")  # exact: values are bf16
    if dtype not in _SAVE_DTYPES:
        raise TypeError(f"save: tensor '{name}' has dtype {dtype}, which cannot be saved")
    array = np.asarray(t.backend.to_numpy(t.array))
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return _SAVE_DTYPES[dtype], tuple(t.shape), array


def _array_bytes(a: np.ndarray, name: str):
    for d, code in _SAVE_DTYPES.items():
        if d is not dt.bfloat16 and a.dtype == np.dtype(code):
            return code, tuple(a.shape), np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    raise TypeError(f"save: NumPy array '{name}' has dtype {a.dtype}, which cannot be saved "
                    f"(use bool, int32, int64, float16, float32 or float64)")


def _specs(arrays: dict) -> dict:
    """safetensors' description of each buffer (dtype, shape, address, length). The caller
    keeps `arrays` alive while the serializer reads through these pointers."""
    safetensors = _safetensors()
    return {name: safetensors.TensorSpec(dtype=code, shape=list(shape),
                                         data_ptr=array.ctypes.data, data_len=array.nbytes)
            for name, (code, shape, array) in arrays.items()}


def _serialize(arrays: dict, header_meta: dict) -> bytes:
    return bytes(_safetensors().serialize(_specs(arrays), metadata=header_meta))


def _write_file(filename: str, arrays: dict, header_meta: dict) -> None:
    """Stream the safetensors file straight to disk (no full copy in memory)."""
    _safetensors().serialize_file(_specs(arrays), filename, metadata=header_meta)


class _Encoder:
    """Turns a Python structure into JSON, moving tensors and arrays into `arrays`.

    JSON encoding: None, bools, ints, finite floats, strings and lists are themselves; every
    other value is a one-key object whose key says what it is:
        {"tensor": name, "device": "cpu", "requires_grad": false}
        {"ndarray": name}            {"tuple": [...]}        {"float": "inf" | "nan"}
        {"dict": [[key, value], ...]}   (keys keep their types: optimizer states use ints)
        {"dtype": "float32"}
    """

    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.names_by_id: dict = {}
        self.keep_alive: list = []  # objects whose id() is in names_by_id

    def _new_name(self, path: str) -> str:
        name = path or "tensor"
        n = 1
        while name in self.arrays:
            name, n = f"{path}#{n}", n + 1
        return name

    def encode(self, value, path: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if math.isfinite(value):
                return float(value)
            return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if isinstance(value, Tensor):
            return {"tensor": self._store(value, path, _tensor_bytes), "device":
                    value.device.type, "requires_grad": value.requires_grad}
        if isinstance(value, np.ndarray):
            return {"ndarray": self._store(value, path, _array_bytes)}
        if isinstance(value, np.generic):
            return self.encode(value.item(), path)
        if isinstance(value, dt.dtype):
            return {"dtype": value.name}
        if isinstance(value, tuple):
            return {"tuple": [self.encode(v, f"{path}.{i}".lstrip("."))
                              for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{path}.{i}".lstrip(".")) for i, v in enumerate(value)]
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                if not (k is None or isinstance(k, (bool, int, float, str, tuple))):
                    raise TypeError(f"save: dict key {k!r} at '{path or '<root>'}' has type "
                                    f"{type(k).__name__}; keys must be str, int, float, bool, "
                                    f"None or tuples of those")
                items.append([self.encode(k, path), self.encode(v, f"{path}.{k}".lstrip("."))])
            return {"dict": items}
        raise TypeError(f"save: cannot save a value of type {type(value).__name__} at "
                        f"'{path or '<root>'}'; smolgrad saves tensors, NumPy arrays, numbers, "
                        f"strings, bools, None and dicts/lists/tuples of them (never pickles)")

    def _store(self, value, path: str, to_bytes) -> str:
        name = self.names_by_id.get(id(value))
        if name is None:
            name = self._new_name(path)
            self.arrays[name] = to_bytes(value, name)
            self.names_by_id[id(value)] = name
            self.keep_alive.append(value)
        return name


def _atomic_write(path: str, arrays: dict, header_meta: dict) -> None:
    """Write to a temporary file beside `path`, fsync it, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write '{path}': the folder '{directory}' does "
                                f"not exist (create it first, e.g. os.makedirs)")
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: cannot write '{path}': it is a folder; give a file "
                                f"name inside it")
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                               dir=directory)
    os.close(fd)
    try:
        _write_file(tmp, arrays, header_meta)
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)  # the bytes are on disk before the rename makes them visible
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (best effort: not every system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def load(f, map_location=None, *, device=None, weights_only: bool = True):
    """Read what `save` wrote (or any safetensors file) from a path or binary file object.

    `map_location` / `device` ("cpu", "mlx", "cuda", "gpu"): put every tensor there. By
    default tensors go back to the device they were saved from (plain safetensors files:
    the CPU). `weights_only` is accepted for PyTorch compatibility; smolgrad never unpickles,
    so loading is always weights-only.
    """
    if map_location is not None and device is not None:
        raise TypeError("load: pass map_location or device, not both")
    target = map_location if map_location is not None else device
    if target is not None and not isinstance(target, str) and not hasattr(target, "type"):
        raise TypeError(f"load: map_location must be a device name like 'cpu', got "
                        f"{type(target).__name__} (callables and dicts are not supported)")
    if hasattr(f, "read"):
        source = _BytesSource(f.read(), getattr(f, "name", "<file object>"))
    else:
        source = _FileSource(os.fspath(f))
    with source:
        return _load_from(source, target)


def _load_from(source, target):
    where = source.where
    structure_text = source.metadata.get(STRUCTURE_KEY)
    decoder = _Decoder(source, target)
    if structure_text is None:
        return {name: decoder.tensor(name, None, False) for name in source.entries}
    try:
        structure = json.loads(structure_text)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"load: '{where}': the smolgrad structure in the header is not "
                              f"valid JSON ({e}); the file is corrupt") from None
    try:
        return decoder.decode(structure)
    except (TypeError, ValueError, KeyError, RecursionError) as e:
        raise CheckpointError(f"load: '{where}': the smolgrad structure in the header is "
                              f"malformed ({e}); the file is corrupt") from None


def _parse_header(head: bytes, header_bytes: bytes, total_size: int, where: str):
    """Check the length field and parse the JSON header (safetensors validates the rest)."""
    _refuse_pickle(head, where)
    if total_size < 8:
        raise CheckpointError(f"load: '{where}' is truncated or not a safetensors file "
                              f"({total_size} bytes; the format starts with an 8-byte header "
                              f"length)")
    header_len = int.from_bytes(head[:8], "little")
    if header_len > total_size - 8:
        raise CheckpointError(f"load: '{where}' is truncated or not a safetensors file: the "
                              f"header claims {header_len} bytes but the file has "
                              f"{total_size - 8} after the length field")
    try:
        header = json.loads(header_bytes[:header_len])
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"load: '{where}' is corrupt: its header is not valid JSON "
                              f"({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: '{where}' is corrupt: its header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"load: '{where}': __metadata__ is not a JSON object")
    return header_len, header, meta


def _ordered_entries(header: dict) -> dict:
    """name -> (dtype code, shape), in the order the bytes lie in the file."""
    names = sorted(header, key=lambda name: header[name]["data_offsets"][0])
    return {name: (header[name]["dtype"], tuple(header[name]["shape"])) for name in names}


class _BytesSource:
    """A safetensors file already in memory (read from a file object)."""

    def __init__(self, data: bytes, where: str):
        self.where = where
        _, header, self.metadata = _parse_header(data[:8], data[8:], len(data), where)
        safetensors = _safetensors()
        try:
            self._data = {name: info["data"] for name, info in safetensors.deserialize(data)}
        except safetensors.SafetensorError as e:
            raise CheckpointError(f"load: '{where}' is truncated or corrupt ({e})") from None
        self.entries = _ordered_entries(header)

    def read(self, name: str, np_dtype) -> np.ndarray:
        return np.frombuffer(self._data[name], dtype=np.dtype(np_dtype).newbyteorder("<"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._data = None


class _FileSource:
    """A safetensors file on disk, read tensor by tensor (never all at once in memory)."""

    def __init__(self, path: str):
        self.where = path
        with open(path, "rb") as file:
            head = file.read(8)
            total = os.fstat(file.fileno()).st_size
            header_bytes = file.read(int.from_bytes(head, "little")) if total >= 8 and \
                int.from_bytes(head, "little") <= total - 8 else b""
        header_len, header, self.metadata = _parse_header(head, header_bytes, total, path)
        self._data_start = 8 + header_len
        self._header = header
        safetensors = _safetensors()
        try:  # safetensors checks every entry's dtype, shape and byte range here
            self._handle = safetensors.safe_open(path, framework="np")
            self._handle.__enter__()
        except safetensors.SafetensorError as e:
            raise CheckpointError(f"load: '{path}' is truncated or corrupt ({e})") from None
        self.entries = _ordered_entries(header)

    def read(self, name: str, np_dtype) -> np.ndarray:
        if self.entries[name][0] != "BF16":
            return self._handle.get_tensor(name).reshape(-1)
        start, end = self._header[name]["data_offsets"]  # NumPy has no bfloat16: raw bits
        return np.fromfile(self.where, dtype="<u2", count=(end - start) // 2,
                           offset=self._data_start + start)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.__exit__(None, None, None)


def _refuse_pickle(data: bytes, where: str) -> None:
    head = data[:8]
    kind = None
    if head.startswith(b"PK\x03\x04"):
        kind = "a zip archive (torch.save's format, which holds a pickle)"
    elif head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        kind = "a Python pickle"
    elif head.startswith(b"\x93NUMPY"):
        kind = "a NumPy .npy file (use numpy.load, then sg.from_numpy)"
    if kind is not None:
        raise CheckpointError(
            f"load: '{where}' is {kind}, not a safetensors file. smolgrad never unpickles "
            f"(unpickling can run arbitrary code). Convert a trusted PyTorch checkpoint with "
            f"safetensors.torch.save_file(torch.load(path, weights_only=True), new_path)")


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: shift the 16 bits back up (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


class _Decoder:
    """Rebuilds the saved structure, making each stored tensor once."""

    def __init__(self, source, target):
        self.source = source
        self.target = None if target is None else canonical_device(target)
        self.where = source.where
        self.made: dict = {}

    def _numpy(self, name: str):
        if name not in self.source.entries:
            raise CheckpointError(f"load: '{self.where}' refers to tensor '{name}', which is "
                                  f"not in the file; the file is corrupt")
        code, shape = self.source.entries[name]
        if code not in _LOAD_DTYPES:
            raise CheckpointError(f"load: '{self.where}': tensor '{name}' has dtype {code}, "
                                  f"which smolgrad cannot load")
        np_dtype, sg_dtype = _LOAD_DTYPES[code]
        array = self.source.read(name, np_dtype).reshape(shape)
        if code == "BF16":
            array = _bfloat16_to_float32(array)
        if not array.dtype.isnative or not array.flags.writeable:
            array = array.astype(array.dtype.newbyteorder("="))
        return array, sg_dtype

    def tensor(self, name: str, saved_device, requires_grad: bool) -> Tensor:
        key = ("tensor", name)
        if key in self.made:
            return self.made[key]
        array, sg_dtype = self._numpy(name)
        device = self.target or saved_device or "cpu"
        if not is_available(device):
            raise RuntimeError(f"load: '{self.where}': tensor '{name}' was saved on device "
                               f"'{device}', which is not available here; pass "
                               f"map_location='cpu' (or another device)")
        backend = get_backend(device)
        if sg_dtype is dt.bfloat16 and not getattr(backend, "has_bfloat16", False):
            warnings.warn(f"load: tensor '{name}' is bfloat16, which device '{device}' does "
                          f"not support; it was loaded as float32 (exactly)", stacklevel=3)
            sg_dtype = dt.float32
        if sg_dtype is dt.float64 and not getattr(backend, "has_float64", True):
            raise RuntimeError(f"load: tensor '{name}' is float64, which device '{device}' "
                               f"does not support; load with map_location='cpu' and convert")
        if sg_dtype is dt.bfloat16:  # the array holds the values as float32
            data = backend.astype(backend.asarray(array, dt.float32), dt.bfloat16)
        else:
            data = backend.asarray(array, sg_dtype)
        t = Tensor._make(data, backend)
        if requires_grad and t.dtype.is_floating_point:
            t.requires_grad_(True)
        self.made[key] = t
        return t

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if isinstance(node, dict) and len(node) >= 1:
            if "tensor" in node:
                return self.tensor(node["tensor"], node.get("device"),
                                   bool(node.get("requires_grad", False)))
            if "ndarray" in node and len(node) == 1:
                key = ("ndarray", node["ndarray"])
                if key not in self.made:
                    self.made[key] = self._numpy(node["ndarray"])[0]
                return self.made[key]
            if "dict" in node and len(node) == 1:
                return {_hashable(self.decode(k)): self.decode(v) for k, v in node["dict"]}
            if "tuple" in node and len(node) == 1:
                return tuple(self.decode(v) for v in node["tuple"])
            if "float" in node and len(node) == 1:
                return float(node["float"])
            if "dtype" in node and len(node) == 1:
                return dt.as_dtype(node["dtype"])
        raise CheckpointError(f"load: '{self.where}': unexpected entry {str(node)[:80]!r} in "
                              f"the smolgrad structure; the file is corrupt or from a newer "
                              f"smolgrad")


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


__all__ = ["save", "load", "CheckpointError"]
