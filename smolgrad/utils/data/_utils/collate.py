"""Collation: turning a list of samples into a batch (`torch.utils.data._utils.collate`).

`default_collate` is what a DataLoader uses when it batches; `default_convert` when it
does not (`batch_size=None`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .... import dtypes as dt
from ....engine import Tensor
from ....ops.creation import tensor
from ....ops.movement import stack


def _collate_error(found) -> TypeError:
    return TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                     f"dicts or lists; found {found}")


def default_collate(batch: list):
    """Turn a list of samples into a batch, by the type of the first sample:

    Tensor -> stacked Tensor (new leading batch dim)    NumPy array/scalar -> stacked Tensor
    float -> float64 Tensor   int -> int64 Tensor   bool -> bool Tensor   str -> list of str
    dict -> dict of collated values   tuple/list -> list of collated columns
    namedtuple -> the same namedtuple of collated fields
    """
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(b.shape) for b in batch}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, "
                               f"but got shapes {sorted(shapes)}")
        return stack(batch)
    if isinstance(elem, np.ndarray) or (isinstance(elem, np.generic) and
                                        not isinstance(elem, (np.str_, np.bytes_))):
        if elem.dtype.kind in "SUOV":
            raise _collate_error(f"NumPy dtype {elem.dtype}")
        shapes = {np.shape(b) for b in batch}
        if len(shapes) > 1:
            raise RuntimeError(f"default_collate: stack expects each array to be equal size, "
                               f"but got shapes {sorted(shapes)}")
        return tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, bool):
        return tensor(batch, dtype=dt.bool_)
    if isinstance(elem, int):
        return tensor(batch, dtype=dt.int64)
    if isinstance(elem, float):
        return tensor(batch, dtype=dt.float64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        for i, d in enumerate(batch):
            if not isinstance(d, Mapping) or set(d) != set(elem):
                found = sorted(map(str, d)) if isinstance(d, Mapping) else type(d).__name__
                raise KeyError(f"default_collate: sample {i} of the batch has keys {found}, "
                               f"but sample 0 has {sorted(map(str, elem))}; every sample "
                               f"must have the same keys (or pass a collate_fn)")
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(column) for column in zip(*batch)]
        if isinstance(elem, tuple):
            return columns  # PyTorch returns a list for tuples too
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise _collate_error(type(elem).__name__)


def default_convert(data):
    """Without batching (`batch_size=None`): NumPy arrays become Tensors, recursively."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "SUOV":
        return tensor(data)
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
