"""`sg.save(obj, path)` and `sg.load(path)`: checkpoints that can never run code.

PyTorch's `torch.save` writes a pickle, and unpickling a file can execute arbitrary code.
smolgrad writes a **safetensors** file instead:

    [8 bytes: N, the header length, little-endian unsigned]
    [N bytes: a JSON object {name: {"dtype": "F32", "shape": [2, 3],
                                    "data_offsets": [start, end]}, ...,
                             "__metadata__": {str: str}}, padded with spaces]
    [the tensors' raw little-endian bytes; tensor `name` is bytes start..end of this part]

Loading only ever parses JSON and copies bytes, and it checks the header completely
before it reads any data (see `_check_entry`): every refusal is a `CheckpointError` (a
RuntimeError) naming the file and what is wrong with it, never a bare NumPy error.

- A flat `{str: Tensor}` dict (a model's `state_dict()`) is written as a plain safetensors
  file that any safetensors reader (`safetensors.torch.load_file`, Hugging Face) reads, and
  `sg.load` of *any* safetensors file returns a `{name: Tensor}` dict.
- Anything else (an optimizer's state dict: nested dicts with int keys, lists, tuples,
  sets, numbers, strings, bools, None, dtypes, devices, tensors, NumPy arrays; whole
  `nn.Module`s, see smolgrad/io_modules.py) is stored as the tensors plus a JSON
  description of the structure in the header's `__metadata__` (under the key
  "smolgrad.structure"), in which each tensor is a reference by name. A tensor that
  appears twice (tied weights) is stored once and comes back shared.

Integrity: `__metadata__["smolgrad.checksums"]` holds the CRC-32 of every tensor's bytes
and of the header's meaning (names, dtypes, shapes, structure). `load` checks them and
names the tensor that fails (`verify=False` skips the check); files from other tools, which
have no checksums, load unchecked.

Writes are atomic: the bytes go to a temporary file beside the target (named
`.<target>.<16 hex digits>.smolgrad-tmp`, locked while it is written), are flushed to
disk (fsync), and only then renamed over the target (`os.replace`), so a crash mid-write
leaves the previous file as it was. A save killed outright (kill -9) leaves its temporary
file behind; the next save to the same target deletes it. A SIGTERM or SIGHUP during a
save deletes the temporary file before the process ends. Saving onto a symbolic link
writes the file the link points to.
"""

from __future__ import annotations

import functools
import io as pyio
import json
import math
import os
import re
import secrets
import signal
import sys
import threading
import types
import warnings
import zlib
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from . import dtypes as dt
from ._size import Size
from .arrays import canonical_device, device, get_backend, is_available
from .engine import Tensor
from .io_modules import ModuleDecoder, ModuleEncoder, function_reference
from .nn.module import Module, Parameter

try:
    import fcntl  # advisory file locks (POSIX)
except ImportError:  # Windows: no fcntl, but an open file cannot be deleted there anyway
    fcntl = None

STRUCTURE_KEY = "smolgrad.structure"
CHECKSUM_KEY = "smolgrad.checksums"
CHECKSUM_ALGORITHM = "crc32"

# safetensors dtype code -> (little-endian NumPy dtype of the bytes, smolgrad dtype to load as)
_LOAD_DTYPES = {
    "BOOL": ("|b1", dt.bool_), "F16": ("<f2", dt.float16), "F32": ("<f4", dt.float32),
    "F64": ("<f8", dt.float64), "I32": ("<i4", dt.int32), "I64": ("<i8", dt.int64),
    # integer types smolgrad lacks are widened without loss
    "I8": ("|i1", dt.int32), "U8": ("|u1", dt.int32), "I16": ("<i2", dt.int32),
    "U16": ("<u2", dt.int32), "U32": ("<u4", dt.int64),
    "BF16": ("<u2", dt.bfloat16),  # raw bits, decoded by _bfloat16_to_float32
}
# smolgrad dtype -> safetensors dtype code (bfloat16 is handled in _tensor_bytes)
_SAVE_DTYPES = {dt.bool_: "BOOL", dt.int32: "I32", dt.int64: "I64", dt.float16: "F16",
                dt.float32: "F32", dt.float64: "F64"}
# The most dimensions an array may have: NumPy 2 allows 64, NumPy 1 allowed 32.
_MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32
_MAX_HEADER_BYTES = 100_000_000  # as safetensors' reader: a longer one is damage, not a header
_TEMP_SUFFIX = ".smolgrad-tmp"
_TEMP_STEM_BYTES = 200  # a temporary file's name must stay under the usual 255-byte limit


class CheckpointError(RuntimeError):
    """A file that `sg.load` refuses: truncated, corrupt, not safetensors, or a pickle."""


# ---------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------


def save(obj, f, metadata: dict | None = None) -> None:
    """Write `obj` (a state dict, a whole `nn.Module`, or any nesting of dicts/lists/tuples
    of tensors, modules, arrays, numbers, strings, bools and None) to `f` (a path, or a
    binary file object) atomically. Nothing is written when a value cannot be saved.

    `metadata`: extra str -> str entries for the safetensors header (kept by other tools;
    the keys "smolgrad.structure" and "smolgrad.checksums" are smolgrad's own).
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
        if key in (STRUCTURE_KEY, CHECKSUM_KEY):
            raise ValueError(f"save: metadata key '{key}' is reserved for smolgrad's own use")
        header_meta[key] = value
    header, buffers = _layout(arrays, header_meta)
    if hasattr(f, "write"):
        _write(f, header, buffers)
        return
    with _TerminationGuard():
        _atomic_write(os.fspath(f), header, buffers)


def _is_flat_tensor_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0  # dict or OrderedDict (Module.state_dict)
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, Tensor) for v in obj.values()))


def _tensor_bytes(t: Tensor, name: str):
    """(safetensors dtype code, shape, contiguous little-endian NumPy array of the bytes)."""
    dtype = t.dtype
    if dtype is dt.bfloat16:
        as_f32 = t.backend.to_numpy(t.backend.astype(t.array, dt.float32))
        bits = np.ascontiguousarray(as_f32, dtype="<f4").view(np.uint32) >> 16
        return "BF16", tuple(t.shape), bits.astype("<u2")  # exact: values are bf16
    if dtype not in _SAVE_DTYPES:
        raise TypeError(f"save: tensor '{name}' has dtype {dtype}, which cannot be saved")
    array = np.asarray(t.backend.to_numpy(t.array))
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return _SAVE_DTYPES[dtype], tuple(t.shape), array


def _array_bytes(a: np.ndarray, name: str):
    for code in _SAVE_DTYPES.values():
        if a.dtype == np.dtype(_LOAD_DTYPES[code][0]):
            return code, tuple(a.shape), np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    raise TypeError(f"save: NumPy array '{name}' has dtype {a.dtype}, which cannot be saved "
                    f"(use bool, int32, int64, float16, float32 or float64)")


def _as_bytes(array: np.ndarray) -> np.ndarray:
    """The bytes of a contiguous array as a flat uint8 view (no copy)."""
    return array.reshape(-1).view(np.uint8)


def _crc32(array: np.ndarray) -> str:
    return f"{zlib.crc32(_as_bytes(array)):08x}"


def _header_digest(entries: dict, structure_text: str | None) -> str:
    """CRC-32 of what the header means: each tensor's name, dtype code and shape, and the
    smolgrad structure. Byte offsets and other metadata are left out, so a tool that
    rewrites the file in another layout keeps it valid; damage to the offsets shows up
    in the tensors' own checksums or in the layout checks."""
    described = sorted([name, code, list(shape)] for name, (code, shape) in entries.items())
    text = json.dumps([described, structure_text], separators=(",", ":"))
    return f"{zlib.crc32(text.encode()):08x}"


def _layout(arrays: dict, header_meta: dict) -> tuple[bytes, list]:
    """The file's first bytes (length field + JSON header) and the arrays in the order
    their bytes follow. Wider dtypes come first and the header is padded to a multiple of
    8 bytes, so every tensor starts at a multiple of its item size (as safetensors' own
    writer does); the header lists the tensors in `arrays`' order."""
    order = sorted(arrays, key=lambda name: -arrays[name][2].itemsize)  # stable sort
    offsets, position = {}, 0
    for name in order:
        offsets[name] = [position, position + arrays[name][2].nbytes]
        position += arrays[name][2].nbytes
    entries = {name: (code, shape) for name, (code, shape, _) in arrays.items()}
    checksums = {"algorithm": CHECKSUM_ALGORITHM,
                 "header": _header_digest(entries, header_meta.get(STRUCTURE_KEY)),
                 "tensors": {name: _crc32(array) for name, (_, _, array) in arrays.items()}}
    checksum_text = json.dumps(checksums, separators=(",", ":"))
    header: dict = {"__metadata__": {**header_meta, CHECKSUM_KEY: checksum_text}}
    for name, (code, shape, _) in arrays.items():
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": offsets[name]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text, [arrays[name][2] for name in order]


def _write(stream, header: bytes, buffers: list) -> None:
    stream.write(header)
    for array in buffers:
        stream.write(_as_bytes(array))


class _Encoder:
    """Turns a Python structure into JSON, moving tensors and arrays into `arrays`.

    JSON encoding: None, bools, ints, finite floats, strings and lists are themselves; every
    other value is an object whose (first) key says what it is:
        {"tensor": name, "device": "cpu", "requires_grad": false}   (+ "parameter": true)
        {"ndarray": name}            {"tuple": [...]}        {"float": "inf" | "nan"}
        {"dict": [[key, value], ...]}   (keys keep their types: optimizer states use ints)
        {"odict": [[key, value], ...]}  (an OrderedDict)     {"set": [...]}
        {"dtype": "float32"}         {"device": "cpu"}           {"size": [2, 3]}
        {"function": ["smolgrad.nn.functional", "relu"]}     (smolgrad's own functions only)
        {"module": ...} / {"module_ref": n}                  (see smolgrad/io_modules.py)
    """

    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.names_by_id: dict = {}
        self.keep_alive: list = []  # objects whose id() is in names_by_id
        self.modules = ModuleEncoder(self)

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
            node = {"tensor": self._store(value, path, _tensor_bytes), "device":
                    value.device.type, "requires_grad": value.requires_grad}
            if isinstance(value, Parameter):
                node["parameter"] = True
            return node
        if isinstance(value, Module):
            return self.modules.encode(value, path)
        if isinstance(value, np.ndarray):
            return {"ndarray": self._store(value, path, _array_bytes)}
        if isinstance(value, np.generic):
            return self.encode(value.item(), path)
        if isinstance(value, dt.dtype):
            return {"dtype": value.name}
        if isinstance(value, device):
            return {"device": value.type}
        if isinstance(value, Size):
            return {"size": [int(n) for n in value]}
        if isinstance(value, tuple):
            return {"tuple": [self.encode(v, f"{path}.{i}".lstrip("."))
                              for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{path}.{i}".lstrip(".")) for i, v in enumerate(value)]
        if isinstance(value, (set, frozenset)):
            return {"set": [self._key(v, path) for v in value]}
        if isinstance(value, OrderedDict):
            return {"odict": self._items(value, path)}
        if isinstance(value, dict):
            return {"dict": self._items(value, path)}
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                              functools.partial)):
            return {"function": function_reference(value, path)}
        raise TypeError(f"save: cannot save a value of type {type(value).__name__} at "
                        f"'{path or '<root>'}'; smolgrad saves tensors, modules, NumPy arrays, "
                        f"numbers, strings, bools, None, dtypes, devices and dicts/lists/"
                        f"tuples/sets of them (never pickles)")

    def _items(self, mapping: dict, path: str) -> list:
        """[[key, value], ...] of a dict, keys checked (they must be JSON-able scalars)."""
        return [[self._key(k, path), self.encode(v, f"{path}.{k}".lstrip("."))]
                for k, v in mapping.items()]

    def _key(self, key, path: str):
        if not (key is None or isinstance(key, (bool, int, float, str, tuple))):
            raise TypeError(f"save: dict key or set element {key!r} at '{path or '<root>'}' "
                            f"has type {type(key).__name__}; keys must be str, int, float, "
                            f"bool, None or tuples of those")
        return self.encode(key, path)

    def _store(self, value, path: str, to_bytes) -> str:
        name = self.names_by_id.get(id(value))
        if name is None:
            name = self._new_name(path)
            self.arrays[name] = to_bytes(value, name)
            self.names_by_id[id(value)] = name
            self.keep_alive.append(value)
        return name


def _atomic_write(path: str, header: bytes, buffers: list) -> None:
    """Write to a temporary file beside the target, fsync it, then rename it over the
    target. A symbolic link is followed: the file it points to is replaced, the link kept."""
    target = os.path.realpath(path)
    directory, base = os.path.split(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write '{path}': the folder '{directory}' does "
                                f"not exist (create it first, e.g. os.makedirs)")
    if os.path.isdir(target):
        raise IsADirectoryError(f"save: cannot write '{path}': it is a folder; give a file "
                                f"name inside it")
    mode = os.stat(target).st_mode & 0o777 if os.path.exists(target) else 0o644
    _remove_abandoned_temp_files(directory, base)
    temp = _TempFile(directory, base)
    try:
        temp.create()
        with os.fdopen(temp.fd, "wb", closefd=False) as stream:
            _write(stream, header, buffers)
        os.fsync(temp.fd)  # the bytes are on disk before the rename makes them visible
        os.chmod(temp.path, mode)
        os.replace(temp.path, target)
    except BaseException:
        temp.close()
        temp.delete()
        raise
    temp.close()
    _fsync_directory(directory)


def _temp_stem(base: str) -> str:
    """The target's name, cut to 200 bytes, as it starts its temporary files' names."""
    return os.fsdecode(os.fsencode(base)[:_TEMP_STEM_BYTES])


def _temp_name_pattern(base: str) -> re.Pattern:
    return re.compile(re.escape(f".{_temp_stem(base)}.") + "[0-9a-f]{16}"
                      + re.escape(_TEMP_SUFFIX))


class _TempFile:
    """A new, exclusively locked file `.<base>.<16 random hex digits>.smolgrad-tmp` in
    `directory`. The lock (an flock, which the system drops when the process dies, even by
    kill -9) tells other saves that this file is being written and must be left alone."""

    def __init__(self, directory: str, base: str):
        self.directory = directory
        self.stem = _temp_stem(base)
        self.path: str | None = None
        self.fd: int | None = None

    def create(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            name = f".{self.stem}.{secrets.token_hex(8)}{_TEMP_SUFFIX}"
            self.path = os.path.join(self.directory, name)
            self.fd = os.open(self.path, flags, 0o600)
            if self._lock():
                return
            self.close()  # another save deleted it before we locked it: make a new one

    def _lock(self) -> bool:
        """Lock the new file; False if it was deleted (as abandoned) before the lock."""
        if fcntl is None:
            return True
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: carry on unprotected
            return True
        try:
            return os.stat(self.path).st_ino == os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False

    def close(self) -> None:
        """Close the file, which releases the lock."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def delete(self) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _remove_abandoned_temp_files(directory: str, base: str) -> None:
    """Delete the temporary files that killed saves to `directory/base` left behind. A
    file is abandoned when its lock can be taken: the save that held it is gone."""
    pattern = _temp_name_pattern(base)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if pattern.fullmatch(name):
            _remove_if_abandoned(os.path.join(directory, name))


def _remove_if_abandoned(path: str) -> None:
    if fcntl is None:  # Windows refuses to delete a file that a running save has open
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except OSError:  # locked: a save in progress (or locks unsupported: leave it)
        pass
    finally:
        os.close(fd)


class _Terminated(BaseException):
    """Raised inside `save` when SIGTERM or SIGHUP arrives (see `_TerminationGuard`)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum} during sg.save")
        self.signum = signum


class _TerminationGuard:
    """While a save runs in the main thread, a SIGTERM or SIGHUP that would end the process
    (its action is the default) raises `_Terminated` instead, so that the save deletes its
    temporary file on the way out. On exit the handlers are put back and the signal is
    raised again: the process still ends by that signal, as it would have. Signals with a
    handler of the program's own, or ignored ones, are left alone."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                    if hasattr(signal, name))

    def __enter__(self) -> _TerminationGuard:
        self.previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) == signal.SIG_DFL:
                    self.previous[signum] = signal.signal(signum, self._raise)
        return self

    def _raise(self, signum, frame):
        raise _Terminated(signum)

    def __exit__(self, kind, error, traceback) -> bool:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if isinstance(error, _Terminated):
            signal.raise_signal(error.signum)  # the default action: the process ends here
        return False


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


def load(f, map_location=None, *, device=None, weights_only: bool = True,
         verify: bool = True):
    """Read what `save` wrote (or any safetensors file) from a path or binary file object.

    `map_location` / `device` ("cpu", "mlx", "cuda", "gpu"): put every tensor there. By
    default tensors go back to the device they were saved from (plain safetensors files:
    the CPU). `weights_only` is accepted for PyTorch compatibility; smolgrad never unpickles,
    so loading is always weights-only. `verify=False` skips the checksum check (the file's
    layout is always checked).
    """
    if map_location is not None and device is not None:
        raise TypeError("load: pass map_location or device, not both")
    target = map_location if map_location is not None else device
    if target is not None and not isinstance(target, str) and not hasattr(target, "type"):
        raise TypeError(f"load: map_location must be a device name like 'cpu', got "
                        f"{type(target).__name__} (callables and dicts are not supported)")
    if hasattr(f, "read"):
        where = getattr(f, "name", "<file object>")
        data = f.read()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"load: the file object '{where}' gave {type(data).__name__}, not "
                            f"bytes; open the file in binary mode ('rb')")
        stream = pyio.BytesIO(data)
    else:
        where = os.fspath(f)
        stream = open(where, "rb")  # closed by _Source
    with _Source(stream, where, verify) as source:
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


class _Entry(NamedTuple):
    """One tensor as the header describes it; its bytes are start..end of the data part."""

    dtype: str
    shape: tuple
    start: int
    end: int


class _Source:
    """An open safetensors file: its header, checked in full when opened, and each tensor's
    bytes on demand (read one at a time, never the whole file at once)."""

    def __init__(self, stream, where, verify: bool):
        self.stream = stream
        self.where = where
        try:
            self.entries, self.metadata, self.data_start = _read_header(stream, where)
            self.checksums = _read_checksums(self.entries, self.metadata, where) \
                if verify else None
        except BaseException:
            stream.close()
            raise

    def read(self, name: str) -> np.ndarray:
        """The tensor's elements: a new 1-D little-endian array, checked against its CRC."""
        entry = self.entries[name]
        array = np.empty((entry.end - entry.start) // _itemsize(entry.dtype),
                         dtype=_LOAD_DTYPES[entry.dtype][0])
        self.stream.seek(self.data_start + entry.start)
        if _read_into(self.stream, _as_bytes(array)) != array.nbytes:
            raise CheckpointError(f"load: '{self.where}': the bytes of tensor '{name}' end "
                                  f"early; the file was truncated while being read")
        if self.checksums is not None and _crc32(array) != self.checksums[name]:
            raise CheckpointError(
                f"load: '{self.where}': tensor '{name}' fails its checksum (stored "
                f"{CHECKSUM_ALGORITHM} {self.checksums[name]}, its bytes give {_crc32(array)}): "
                f"the file was damaged after it was written. Load with verify=False to read "
                f"it anyway")
        return array

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc) -> None:
        self.stream.close()


def _read_into(stream, buffer: np.ndarray) -> int:
    """Fill `buffer` from the stream; the number of bytes read (less only at end of file)."""
    view, filled = memoryview(buffer), 0
    while filled < len(view):
        n = stream.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled


def _itemsize(code: str) -> int:
    return np.dtype(_LOAD_DTYPES[code][0]).itemsize


def _read_header(stream, where) -> tuple[dict, dict, int]:
    """({name: _Entry} in header order, __metadata__, where the data part starts).

    A file is safetensors when its first 8 bytes give a header length that fits in the
    file and the header is a JSON object; only when that fails do we look at what else
    the file might be (a pickle, a zip), to say so in the error."""
    total = stream.seek(0, os.SEEK_END)
    stream.seek(0)
    head = stream.read(8)
    header_len = int.from_bytes(head, "little")
    if len(head) < 8:
        raise _not_safetensors(stream, where, f"it has {total} bytes; a safetensors file "
                                              f"starts with an 8-byte header length")
    if header_len > total - 8:
        raise _not_safetensors(stream, where, f"the header length field says {header_len} "
                                              f"bytes but only {total - 8} follow it")
    if header_len > _MAX_HEADER_BYTES:
        raise _not_safetensors(stream, where, f"the header length field says {header_len} "
                                              f"bytes, more than the {_MAX_HEADER_BYTES} that "
                                              f"the format allows")
    header_bytes = stream.read(header_len)
    if not header_bytes.startswith(b"{"):
        raise _not_safetensors(stream, where, "its header does not start with '{' (a "
                                              "safetensors header is a JSON object)")
    try:
        header = json.loads(header_bytes.decode("utf-8"),
                            object_pairs_hook=_refuse_duplicate_keys)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"load: '{where}' is corrupt: its header is not valid JSON "
                              f"({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: '{where}' is corrupt: its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"load: '{where}' is corrupt: __metadata__ must be a JSON "
                              f"object of strings, got {str(metadata)[:80]}")
    entries = {name: _check_entry(name, info, where) for name, info in header.items()}
    _check_layout(entries, total - 8 - header_len, where)
    return entries, metadata, 8 + header_len


def _refuse_duplicate_keys(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the name '{key}' appears twice")
        result[key] = value
    return result


def _is_count(value) -> bool:
    """A non-negative JSON integer (true/false are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entry(name: str, info, where) -> _Entry:
    """Check one header entry completely, so that reading it cannot fail in NumPy."""
    what = f"load: '{where}' is corrupt: tensor '{name}'"
    if not isinstance(info, dict):
        raise CheckpointError(f"{what} is described by {str(info)[:80]!r}, not a JSON object")
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in info]
    if missing:
        raise CheckpointError(f"{what} has no {' or '.join(missing)}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str) or code not in _LOAD_DTYPES:
        raise CheckpointError(f"load: '{where}': tensor '{name}' has dtype {code!r}, which "
                              f"smolgrad cannot load (it loads {', '.join(_LOAD_DTYPES)})")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise CheckpointError(f"{what} has shape {str(shape)[:80]}; a shape is a list of "
                              f"non-negative integers")
    if len(shape) > _MAX_DIMS:
        raise CheckpointError(f"load: '{where}': tensor '{name}' has {len(shape)} "
                              f"dimensions; at most {_MAX_DIMS} are supported")
    itemsize = _itemsize(code)
    if math.prod(n for n in shape if n) * itemsize > sys.maxsize:
        raise CheckpointError(f"load: '{where}': tensor '{name}' has shape {shape}, too large "
                              f"for an array (its sizes times {itemsize} bytes exceed "
                              f"{sys.maxsize})")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))
            and offsets[0] <= offsets[1]):
        raise CheckpointError(f"{what} has data_offsets {str(offsets)[:80]}; they must be "
                              f"[start, end] with 0 <= start <= end")
    needed = math.prod(shape) * itemsize
    if offsets[1] - offsets[0] != needed:
        raise CheckpointError(f"{what}: dtype {code} and shape {shape} need {needed} bytes, "
                              f"but its data_offsets {offsets} span {offsets[1] - offsets[0]}")
    return _Entry(code, tuple(shape), offsets[0], offsets[1])


def _check_layout(entries: dict, data_len: int, where) -> None:
    """The tensors' byte ranges must tile the data part exactly: no overlap, no gap, and
    nothing past its end (what the safetensors format requires)."""
    position, previous = 0, None
    for name, entry in sorted(entries.items(), key=lambda item: (item[1].start, item[1].end)):
        if entry.end > data_len:
            raise CheckpointError(f"load: '{where}' is truncated or corrupt: tensor '{name}' "
                                  f"is bytes {entry.start}..{entry.end} of the data, which has "
                                  f"only {data_len} bytes")
        if entry.start < position:
            raise CheckpointError(f"load: '{where}' is corrupt: the bytes of tensors "
                                  f"'{previous}' and '{name}' overlap (at {entry.start})")
        if entry.start > position:
            raise CheckpointError(f"load: '{where}' is corrupt: no tensor holds bytes "
                                  f"{position}..{entry.start} of the data")
        position, previous = entry.end, name
    if position != data_len:
        raise CheckpointError(f"load: '{where}' is corrupt: the tensors hold {position} bytes "
                              f"but {data_len} follow the header")


def _read_checksums(entries: dict, metadata: dict, where) -> dict | None:
    """{name: CRC-32 hex} from the header, after checking the header's own CRC; None for
    files without checksums (written by other tools)."""
    text = metadata.get(CHECKSUM_KEY)
    if text is None:
        return None
    try:
        record = json.loads(text)
        algorithm, header_crc, crcs = record["algorithm"], record["header"], record["tensors"]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise CheckpointError(f"load: '{where}' is corrupt: its checksum list "
                              f"({CHECKSUM_KEY}) is malformed") from None
    if algorithm != CHECKSUM_ALGORITHM:
        raise CheckpointError(f"load: '{where}': its checksums use {str(algorithm)[:40]!r}, "
                              f"which this smolgrad does not know (the file is damaged or "
                              f"from a newer smolgrad); load with verify=False to skip them")
    if not isinstance(crcs, dict) or set(crcs) != set(entries):
        names = set(crcs) ^ set(entries) if isinstance(crcs, dict) else set()
        raise CheckpointError(f"load: '{where}' is corrupt: the checksum list and the header "
                              f"disagree on the tensors {sorted(names)[:5]}")
    if header_crc != _header_digest({name: (e.dtype, e.shape) for name, e in entries.items()},
                                    metadata.get(STRUCTURE_KEY)):
        raise CheckpointError(f"load: '{where}' is corrupt: its header fails its checksum (a "
                              f"tensor's name, dtype or shape, or the saved structure, was "
                              f"changed after writing). Load with verify=False to read it "
                              f"anyway")
    return crcs


def _not_safetensors(stream, where, reason: str) -> CheckpointError:
    """The error for a file that is not (or no longer) safetensors, saying what it looks
    like instead: a pickle, a zip (torch.save), a .npy, or a damaged safetensors file."""
    stream.seek(0)
    start = stream.read(9)
    last = b""
    if start:
        stream.seek(-1, os.SEEK_END)
        last = stream.read(1)
    kind = None
    if start[8:9] == b"{":  # a length, then a JSON object: safetensors, cut short or damaged
        pass
    elif start.startswith(b"PK\x03\x04"):
        kind = "a zip archive (torch.save's format, which holds a pickle)"
    elif (start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) \
            or last == b".":  # protocol 2+ starts with PROTO; every pickle ends with STOP
        kind = "a Python pickle"
    elif start.startswith(b"\x93NUMPY"):
        return CheckpointError(f"load: '{where}' is a NumPy .npy file, not a safetensors "
                               f"file (use numpy.load, then sg.from_numpy)")
    if kind is None:
        return CheckpointError(f"load: '{where}' is truncated or not a safetensors file: "
                               f"{reason}")
    return CheckpointError(
        f"load: '{where}' looks like {kind}, not a safetensors file ({reason}). smolgrad "
        f"never unpickles (unpickling can run arbitrary code). Convert a trusted PyTorch "
        f"checkpoint with safetensors.torch.save_file(torch.load(path, weights_only=True), "
        f"new_path)")


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
        self.modules = ModuleDecoder(self, self.error)

    def error(self, problem: str) -> CheckpointError:
        return CheckpointError(f"load: '{self.where}': {problem}")

    def _numpy(self, name: str):
        if not isinstance(name, str) or name not in self.source.entries:
            raise CheckpointError(f"load: '{self.where}' refers to tensor {name!r}, which is "
                                  f"not in the file; the file is corrupt")
        entry = self.source.entries[name]
        array = self.source.read(name).reshape(entry.shape)
        if entry.dtype == "BF16":
            array = _bfloat16_to_float32(array)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return array, _LOAD_DTYPES[entry.dtype][1]

    def tensor(self, name: str, saved_device, requires_grad: bool,
               parameter: bool = False) -> Tensor:
        """The stored tensor `name` (made once, shared by every reference to it), as an
        `nn.Parameter` when it was saved as one."""
        key = ("tensor", name)
        if key in self.made:
            return self.made[key]
        array, sg_dtype = self._numpy(name)
        device = self.target or saved_device or "cpu"
        if not is_available(device):
            raise CheckpointError(f"load: '{self.where}': tensor '{name}' was saved on device "
                                  f"'{device}', which is not available here; pass "
                                  f"map_location='cpu' (or another device)")
        backend = get_backend(device)
        if sg_dtype is dt.bfloat16 and not getattr(backend, "has_bfloat16", False):
            warnings.warn(f"load: tensor '{name}' is bfloat16, which device '{device}' does "
                          f"not support; it was loaded as float32 (exactly)", stacklevel=3)
            sg_dtype = dt.float32
        if sg_dtype is dt.float64 and not getattr(backend, "has_float64", True):
            raise CheckpointError(f"load: '{self.where}': tensor '{name}' is float64, which "
                                  f"device '{device}' does not support; load with "
                                  f"map_location='cpu' and convert")
        try:
            if sg_dtype is dt.bfloat16:  # the array holds the values as float32
                data = backend.astype(backend.asarray(array, dt.float32), dt.bfloat16)
            else:
                data = backend.asarray(array, sg_dtype)
        except Exception as e:  # e.g. MLX allows no dimension of 2**31 or more
            raise CheckpointError(f"load: '{self.where}': tensor '{name}' ({sg_dtype.name}, shape "
                                  f"{tuple(array.shape)}) cannot be made on device "
                                  f"'{device}': {e}") from e
        t = Tensor._make(data, backend)
        if parameter:
            t = Parameter(t, requires_grad=requires_grad and t.dtype.is_floating_point)
        elif requires_grad and t.dtype.is_floating_point:
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
                                   bool(node.get("requires_grad", False)),
                                   node.get("parameter") is True)
            if "module" in node:
                return self.modules.decode(node)
            if "ndarray" in node and len(node) == 1:
                key = ("ndarray", node["ndarray"])
                if key not in self.made:
                    self.made[key] = self._numpy(node["ndarray"])[0]
                return self.made[key]
            if "dict" in node and len(node) == 1:
                return {_hashable(self.decode(k)): self.decode(v) for k, v in node["dict"]}
            if "odict" in node and len(node) == 1:
                return OrderedDict((_hashable(self.decode(k)), self.decode(v))
                                   for k, v in node["odict"])
            if "set" in node and len(node) == 1:
                return {_hashable(self.decode(v)) for v in node["set"]}
            if "tuple" in node and len(node) == 1:
                return tuple(self.decode(v) for v in node["tuple"])
            if "float" in node and len(node) == 1:
                return float(node["float"])
            if "dtype" in node and len(node) == 1:
                return dt.as_dtype(node["dtype"])
            if "device" in node and len(node) == 1:
                return device(node["device"])
            if "size" in node and len(node) == 1:
                return Size(node["size"])
            if "function" in node and len(node) == 1:
                return self.modules.function(node["function"])
            if "module_ref" in node and len(node) == 1:
                return self.modules.reference(node["module_ref"])
        raise CheckpointError(f"load: '{self.where}': unexpected entry {str(node)[:80]!r} in "
                              f"the smolgrad structure; the file is corrupt or from a newer "
                              f"smolgrad")


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


__all__ = ["save", "load", "CheckpointError"]
