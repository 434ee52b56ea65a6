"""From Python data to a tensor's array: what `Tensor(data)` converts, and the dtype that
`sg.tensor(data)` infers (PyTorch's rules).

The engine's `Tensor(data, dtype, device)` calls `Tensor._from_data`, which this module
provides (the engine does not import the op modules).
"""

from __future__ import annotations

from .. import dtypes as dt
from ..arrays import canonical_device, get_backend
from ..engine import Tensor


def from_data(data, dtype, device) -> tuple:
    """(array, backend) for scalars, nested lists, arrays of any backend or Tensors: always
    a new array (never the caller's), of `dtype` (default float32, as `torch.Tensor`), on
    `device` (default: data's device for a Tensor, else the default device)."""
    if device is not None:
        backend = get_backend(canonical_device(device))
    elif isinstance(data, Tensor):
        backend = data.backend
    else:
        backend = get_backend(None)
    dtype = dt.float32 if dtype is None else dt.as_dtype(dtype)
    return _to_array(data, dtype, backend), backend


Tensor._from_data = staticmethod(from_data)


def _to_array(data, dtype: dt.dtype, backend):
    """Convert user data (scalars, lists, arrays of any backend, Tensors) to an array."""
    if isinstance(data, Tensor):
        if data.backend is not backend:
            data = data.backend.to_numpy(data.array)
        else:
            return backend.astype(backend.copy(data.array), dtype)
    elif isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
        data = [_to_numpy_nested(d) for d in data]
    array = backend.asarray(data, dtype)
    if array is data or getattr(array, "base", None) is data:
        array = backend.copy(array)  # like torch.tensor: never share the caller's array
    return array


def _flat(data):
    """The leaves of nested lists/tuples, depth first."""
    for d in data:
        if isinstance(d, (list, tuple)):
            yield from _flat(d)
        else:
            yield d


def _to_numpy_nested(d):
    """Nested lists with Tensors inside -> the same nesting with NumPy arrays inside."""
    if isinstance(d, Tensor):
        return d.backend.to_numpy(d.array)
    if isinstance(d, (list, tuple)):
        return [_to_numpy_nested(x) for x in d]
    return d


def infer_dtype(data) -> dt.dtype:
    """PyTorch's inference for `sg.tensor(data)`: float -> default float, int -> int64,
    bool -> bool; an array or Tensor keeps its own dtype."""
    if isinstance(data, Tensor):
        return data.dtype
    native = getattr(data, "dtype", None)
    if native is not None:
        return dt.as_dtype(str(native).split(".")[-1])
    kinds = {type(x) for x in _flat(data)} if isinstance(data, (list, tuple)) else {type(data)}
    kinds = {bool if issubclass(k, bool) else k for k in kinds}
    if not kinds or any(not issubclass(k, (bool, int)) for k in kinds):
        return dt.get_default_dtype()
    return dt.bool_ if kinds == {bool} else dt.int64
