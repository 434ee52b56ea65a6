# Generated from the op registry by `.venv/bin/python tools/gen_stubs.py`: do not edit.
# ruff: noqa: E501, I001  (one line per name, grouped by module)
"""Type stub of the smolgrad package: every name of `__all__`, from where it is defined."""

from . import accelerator as accelerator
from . import amp as amp
from . import arrays as arrays
from . import autograd as autograd
from . import backends as backends
from . import compat as compat
from . import cuda as cuda
from . import distributed as distributed
from . import dtypes as dtypes
from . import engine as engine
from . import grad_mode as grad_mode
from . import io as io
from . import io_modules as io_modules
from . import nn as nn
from . import onnx as onnx
from . import ops as ops
from . import optim as optim
from . import random as random
from . import registry as registry
from . import serialization as serialization
from . import torch_alias as torch_alias
from . import utils as utils
from . import viz as viz
from ._size import Size as Size
from .amp.autocast_mode import autocast as autocast
from .arrays import device as device
from .arrays import get_default_device as get_default_device
from .arrays import is_available as is_available
from .arrays import set_default_device as set_default_device
from .compat import are_deterministic_algorithms_enabled as are_deterministic_algorithms_enabled
from .compat import compile as compile
from .compat import finfo as finfo
from .compat import get_float32_matmul_precision as get_float32_matmul_precision
from .compat import get_num_interop_threads as get_num_interop_threads
from .compat import get_num_threads as get_num_threads
from .compat import iinfo as iinfo
from .compat import is_deterministic_algorithms_warn_only_enabled as is_deterministic_algorithms_warn_only_enabled
from .compat import is_tensor as is_tensor
from .compat import set_float32_matmul_precision as set_float32_matmul_precision
from .compat import set_num_interop_threads as set_num_interop_threads
from .compat import set_num_threads as set_num_threads
from .compat import use_deterministic_algorithms as use_deterministic_algorithms
from .dtypes import bfloat16 as bfloat16
from .dtypes import bool_ as bool
from .dtypes import dtype as dtype
from .dtypes import float16 as float16
from .dtypes import float16 as half
from .dtypes import float32 as float
from .dtypes import float32 as float32
from .dtypes import float64 as double
from .dtypes import float64 as float64
from .dtypes import get_default_dtype as get_default_dtype
from .dtypes import int32 as int
from .dtypes import int32 as int32
from .dtypes import int64 as int64
from .dtypes import int64 as long
from .dtypes import promote_types as promote_types
from .dtypes import set_default_dtype as set_default_dtype
from .engine import Tensor as Tensor
from .grad_mode import enable_grad as enable_grad
from .grad_mode import inference_mode as inference_mode
from .grad_mode import is_grad_enabled as is_grad_enabled
from .grad_mode import no_grad as no_grad
from .grad_mode import set_grad_enabled as set_grad_enabled
from .io import load as load
from .io import save as save
from .ops.autocast import get_autocast_dtype as get_autocast_dtype
from .ops.autocast import is_autocast_enabled as is_autocast_enabled
from .ops.convert import clone as clone
from .ops.convert import to as to
from .ops.creation import BFloat16Tensor as BFloat16Tensor
from .ops.creation import BoolTensor as BoolTensor
from .ops.creation import ByteTensor as ByteTensor
from .ops.creation import CharTensor as CharTensor
from .ops.creation import DoubleTensor as DoubleTensor
from .ops.creation import FloatTensor as FloatTensor
from .ops.creation import HalfTensor as HalfTensor
from .ops.creation import IntTensor as IntTensor
from .ops.creation import LongTensor as LongTensor
from .ops.creation import ShortTensor as ShortTensor
from .ops.creation import arange as arange
from .ops.creation import as_tensor as as_tensor
from .ops.creation import empty as empty
from .ops.creation import empty_like as empty_like
from .ops.creation import eye as eye
from .ops.creation import from_numpy as from_numpy
from .ops.creation import full as full
from .ops.creation import full_like as full_like
from .ops.creation import linspace as linspace
from .ops.creation import manual_seed as manual_seed
from .ops.creation import ones as ones
from .ops.creation import ones_like as ones_like
from .ops.creation import rand as rand
from .ops.creation import rand_like as rand_like
from .ops.creation import randint as randint
from .ops.creation import randn as randn
from .ops.creation import randn_like as randn_like
from .ops.creation import randperm as randperm
from .ops.creation import tensor as tensor
from .ops.creation import zeros as zeros
from .ops.creation import zeros_like as zeros_like
from .ops.elementwise import abs as abs
from .ops.elementwise import add as add
from .ops.elementwise import allclose as allclose
from .ops.elementwise import cast as cast
from .ops.elementwise import ceil as ceil
from .ops.elementwise import clamp as clamp
from .ops.elementwise import clamp as clip
from .ops.elementwise import clamp_max as clamp_max
from .ops.elementwise import clamp_min as clamp_min
from .ops.elementwise import cos as cos
from .ops.elementwise import div as div
from .ops.elementwise import div as divide
from .ops.elementwise import div as true_divide
from .ops.elementwise import eq as eq
from .ops.elementwise import equal as equal
from .ops.elementwise import erf as erf
from .ops.elementwise import exp as exp
from .ops.elementwise import expm1 as expm1
from .ops.elementwise import floor as floor
from .ops.elementwise import floor_divide as floor_divide
from .ops.elementwise import ge as ge
from .ops.elementwise import ge as greater_equal
from .ops.elementwise import gt as greater
from .ops.elementwise import gt as gt
from .ops.elementwise import isclose as isclose
from .ops.elementwise import isfinite as isfinite
from .ops.elementwise import isinf as isinf
from .ops.elementwise import isnan as isnan
from .ops.elementwise import le as le
from .ops.elementwise import le as less_equal
from .ops.elementwise import lerp as lerp
from .ops.elementwise import log as log
from .ops.elementwise import log10 as log10
from .ops.elementwise import log1p as log1p
from .ops.elementwise import log2 as log2
from .ops.elementwise import logaddexp as logaddexp
from .ops.elementwise import logical_and as logical_and
from .ops.elementwise import logical_not as logical_not
from .ops.elementwise import logical_or as logical_or
from .ops.elementwise import logical_xor as logical_xor
from .ops.elementwise import lt as less
from .ops.elementwise import lt as lt
from .ops.elementwise import masked_fill as masked_fill
from .ops.elementwise import maximum as maximum
from .ops.elementwise import minimum as minimum
from .ops.elementwise import mul as mul
from .ops.elementwise import mul as multiply
from .ops.elementwise import ne as ne
from .ops.elementwise import ne as not_equal
from .ops.elementwise import neg as neg
from .ops.elementwise import neg as negative
from .ops.elementwise import pow as pow
from .ops.elementwise import reciprocal as reciprocal
from .ops.elementwise import relu as relu
from .ops.elementwise import remainder as remainder
from .ops.elementwise import round as round
from .ops.elementwise import rsqrt as rsqrt
from .ops.elementwise import sigmoid as sigmoid
from .ops.elementwise import sign as sign
from .ops.elementwise import sin as sin
from .ops.elementwise import sqrt as sqrt
from .ops.elementwise import square as square
from .ops.elementwise import sub as sub
from .ops.elementwise import sub as subtract
from .ops.elementwise import tanh as tanh
from .ops.elementwise import where as where
from .ops.linalg import bmm as bmm
from .ops.linalg import dot as dot
from .ops.linalg import einsum as einsum
from .ops.linalg import matmul as matmul
from .ops.linalg import mm as mm
from .ops.linalg import mv as mv
from .ops.linalg import outer as outer
from .ops.movement import broadcast_shapes as broadcast_shapes
from .ops.movement import broadcast_tensors as broadcast_tensors
from .ops.movement import broadcast_to as broadcast_to
from .ops.movement import cat as cat
from .ops.movement import chunk as chunk
from .ops.movement import concat as concat
from .ops.movement import concatenate as concatenate
from .ops.movement import expand as expand
from .ops.movement import flatten as flatten
from .ops.movement import flip as flip
from .ops.movement import fliplr as fliplr
from .ops.movement import flipud as flipud
from .ops.movement import gather as gather
from .ops.movement import hstack as hstack
from .ops.movement import index_add as index_add
from .ops.movement import index_put as index_put
from .ops.movement import index_select as index_select
from .ops.movement import masked_select as masked_select
from .ops.movement import movedim as moveaxis
from .ops.movement import movedim as movedim
from .ops.movement import narrow as narrow
from .ops.movement import nonzero as nonzero
from .ops.movement import pad as pad
from .ops.movement import permute as permute
from .ops.movement import repeat_interleave as repeat_interleave
from .ops.movement import reshape as reshape
from .ops.movement import roll as roll
from .ops.movement import scatter_add as scatter_add
from .ops.movement import split as split
from .ops.movement import squeeze as squeeze
from .ops.movement import stack as stack
from .ops.movement import swapaxes as swapaxes
from .ops.movement import swapdims as swapdims
from .ops.movement import t as t
from .ops.movement import take_along_dim as take_along_dim
from .ops.movement import tensor_split as tensor_split
from .ops.movement import transpose as transpose
from .ops.movement import tril as tril
from .ops.movement import triu as triu
from .ops.movement import unbind as unbind
from .ops.movement import unflatten as unflatten
from .ops.movement import unsqueeze as unsqueeze
from .ops.movement import vstack as vstack
from .ops.printing import set_printoptions as set_printoptions
from .ops.reduce import all as all
from .ops.reduce import amax as amax
from .ops.reduce import amin as amin
from .ops.reduce import any as any
from .ops.reduce import argmax as argmax
from .ops.reduce import argmin as argmin
from .ops.reduce import argsort as argsort
from .ops.reduce import count_nonzero as count_nonzero
from .ops.reduce import cumsum as cumsum
from .ops.reduce import log_softmax as log_softmax
from .ops.reduce import logsumexp as logsumexp
from .ops.reduce import max as max
from .ops.reduce import mean as mean
from .ops.reduce import min as min
from .ops.reduce import norm as norm
from .ops.reduce import prod as prod
from .ops.reduce import softmax as softmax
from .ops.reduce import sort as sort
from .ops.reduce import std as std
from .ops.reduce import std_mean as std_mean
from .ops.reduce import sum as sum
from .ops.reduce import topk as topk
from .ops.reduce import var as var
from .ops.reduce import var_mean as var_mean
from .ops.sampling import bincount as bincount
from .ops.sampling import histc as histc
from .ops.sampling import histogram as histogram
from .ops.sampling import multinomial as multinomial
from .ops.sampling import unique as unique
from .ops.tensor_api import is_complex as is_complex
from .ops.tensor_api import is_floating_point as is_floating_point
from .ops.tensor_api import is_nonzero as is_nonzero
from .ops.tensor_api import numel as numel
from .random import Generator as Generator
from .random import default_generator as default_generator
from .random import get_rng_state as get_rng_state
from .random import initial_seed as initial_seed
from .random import seed as seed
from .random import set_rng_state as set_rng_state
from .torch_alias import install_as_torch as install_as_torch

__version__: str

__all__ = [
    "BFloat16Tensor",
    "BoolTensor",
    "ByteTensor",
    "CharTensor",
    "DoubleTensor",
    "FloatTensor",
    "Generator",
    "HalfTensor",
    "IntTensor",
    "LongTensor",
    "ShortTensor",
    "Size",
    "Tensor",
    "abs",
    "accelerator",
    "add",
    "all",
    "allclose",
    "amax",
    "amin",
    "amp",
    "any",
    "arange",
    "are_deterministic_algorithms_enabled",
    "argmax",
    "argmin",
    "argsort",
    "arrays",
    "as_tensor",
    "autocast",
    "autograd",
    "backends",
    "bfloat16",
    "bincount",
    "bmm",
    "bool",
    "broadcast_shapes",
    "broadcast_tensors",
    "broadcast_to",
    "cast",
    "cat",
    "ceil",
    "chunk",
    "clamp",
    "clamp_max",
    "clamp_min",
    "clip",
    "clone",
    "compat",
    "compile",
    "concat",
    "concatenate",
    "cos",
    "count_nonzero",
    "cuda",
    "cumsum",
    "default_generator",
    "device",
    "distributed",
    "div",
    "divide",
    "dot",
    "double",
    "dtype",
    "dtypes",
    "einsum",
    "empty",
    "empty_like",
    "enable_grad",
    "engine",
    "eq",
    "equal",
    "erf",
    "exp",
    "expand",
    "expm1",
    "eye",
    "finfo",
    "flatten",
    "flip",
    "fliplr",
    "flipud",
    "float",
    "float16",
    "float32",
    "float64",
    "floor",
    "floor_divide",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "ge",
    "get_autocast_dtype",
    "get_default_device",
    "get_default_dtype",
    "get_float32_matmul_precision",
    "get_num_interop_threads",
    "get_num_threads",
    "get_rng_state",
    "grad_mode",
    "greater",
    "greater_equal",
    "gt",
    "half",
    "histc",
    "histogram",
    "hstack",
    "iinfo",
    "index_add",
    "index_put",
    "index_select",
    "inference_mode",
    "initial_seed",
    "install_as_torch",
    "int",
    "int32",
    "int64",
    "io",
    "io_modules",
    "is_autocast_enabled",
    "is_available",
    "is_complex",
    "is_deterministic_algorithms_warn_only_enabled",
    "is_floating_point",
    "is_grad_enabled",
    "is_nonzero",
    "is_tensor",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "le",
    "lerp",
    "less",
    "less_equal",
    "linspace",
    "load",
    "log",
    "log10",
    "log1p",
    "log2",
    "log_softmax",
    "logaddexp",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "logsumexp",
    "long",
    "lt",
    "manual_seed",
    "masked_fill",
    "masked_select",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mm",
    "moveaxis",
    "movedim",
    "mul",
    "multinomial",
    "multiply",
    "mv",
    "narrow",
    "ne",
    "neg",
    "negative",
    "nn",
    "no_grad",
    "nonzero",
    "norm",
    "not_equal",
    "numel",
    "ones",
    "ones_like",
    "onnx",
    "ops",
    "optim",
    "outer",
    "pad",
    "permute",
    "pow",
    "prod",
    "promote_types",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "random",
    "randperm",
    "reciprocal",
    "registry",
    "relu",
    "remainder",
    "repeat_interleave",
    "reshape",
    "roll",
    "round",
    "rsqrt",
    "save",
    "scatter_add",
    "seed",
    "serialization",
    "set_default_device",
    "set_default_dtype",
    "set_float32_matmul_precision",
    "set_grad_enabled",
    "set_num_interop_threads",
    "set_num_threads",
    "set_printoptions",
    "set_rng_state",
    "sigmoid",
    "sign",
    "sin",
    "softmax",
    "sort",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "std_mean",
    "sub",
    "subtract",
    "sum",
    "swapaxes",
    "swapdims",
    "t",
    "take_along_dim",
    "tanh",
    "tensor",
    "tensor_split",
    "to",
    "topk",
    "torch_alias",
    "transpose",
    "tril",
    "triu",
    "true_divide",
    "unbind",
    "unflatten",
    "unique",
    "unsqueeze",
    "use_deterministic_algorithms",
    "utils",
    "var",
    "var_mean",
    "viz",
    "vstack",
    "where",
    "zeros",
    "zeros_like",
]
