"""Normalisation layers: `BatchNorm1d`, `BatchNorm2d`, `LayerNorm`, `GroupNorm`, `RMSNorm`.

All compute  y = (x - mean) / sqrt(var + eps) * weight + bias  (RMSNorm: x / rms * weight)
over different axes:
  BatchNorm  over the batch (and spatial) axes, per channel; in training it uses the
             batch's statistics and updates running_mean / running_var, in eval it uses
             the running ones.
  LayerNorm  over the last len(normalized_shape) axes, per sample.
  GroupNorm  over each group of channels (and spatial axes), per sample.
  RMSNorm    rms = sqrt(mean(x^2) + eps) over the last axes (no mean subtracted).
Default initialisation: weight = 1, bias = 0; running_mean = 0, running_var = 1.
"""

from __future__ import annotations

import numbers

from .. import dtypes as dt
from ..engine import Tensor, evaluate, no_grad
from ..ops.creation import ones, tensor, zeros
from . import functional as F
from . import init
from .module import Module, Parameter


def _affine_parameters(module: Module, shape, affine: bool, bias: bool, device, dtype) -> None:
    """Register `weight` (ones) and `bias` (zeros) of `shape`, or None when switched off."""
    weight = Parameter(ones(shape, device=device, dtype=dtype)) if affine else None
    module.register_parameter("weight", weight)
    offset = Parameter(zeros(shape, device=device, dtype=dtype)) if affine and bias else None
    module.register_parameter("bias", offset)


def _reset_affine(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)



class _BatchNorm(Module):
    _allowed_ndims = (2, 3)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.use_bias = bias
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, num_features, affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device,
                                                       dtype=dtype))
            self.register_buffer("running_var", ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=dt.int64,
                                                               device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._allowed_ndims:
            dims = " or ".join(f"{d}D" for d in self._allowed_ndims)
            raise ValueError(f"{type(self).__name__}: expected {dims} input (got "
                             f"{input.ndim}D input of shape {tuple(input.shape)})")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels "
                             f"(dim 1), got input of shape {tuple(input.shape)}")

    def _update_running_stats(self, input: Tensor) -> None:
        """running = (1 - momentum) * running + momentum * batch statistic (unbiased var);
        momentum=None makes it the cumulative average over all batches seen."""
        axes = (0,) + tuple(range(2, input.ndim))
        count = input.numel() // input.shape[1]
        with no_grad():
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
            else:
                factor = self.momentum
            x = input.detach()
            mean = x.mean(dim=axes)
            var = x.var(dim=axes, correction=1 if count > 1 else 0)
            rm, rv = self.running_mean, self.running_var
            rm.copy_(rm * (1 - factor) + mean.to(rm.dtype) * factor)
            rv.copy_(rv * (1 - factor) + var.to(rv.dtype) * factor)
        # lazy backends (MLX): compute the new statistics now, or each step's graph (holding
        # that step's input) would stay attached to the buffers until they are next read
        evaluate([rm, rv, self.num_batches_tracked])

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            count = input.numel() // input.shape[1]
            if self.training and count <= 1:
                raise ValueError(f"{type(self).__name__}: expected more than 1 value per "
                                 f"channel when training, got input of shape "
                                 f"{tuple(input.shape)}")
            if self.training and self.track_running_stats:
                self._update_running_stats(input)
            return F.batch_norm(input, None, None, self.weight, self.bias, training=True,
                                momentum=0.0, eps=self.eps)
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight,
                            self.bias, training=False, momentum=0.0, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.use_bias}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L); statistics per channel C."""

    _allowed_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W); statistics per channel C."""

    _allowed_ndims = (4,)


def _shape_tuple(normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.use_bias = bias
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, device, dtype)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.use_bias}")


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self.use_bias = bias
        _affine_parameters(self, num_channels, affine, bias, device, dtype)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.use_bias}")


class RMSNorm(Module):
    """y = x / sqrt(mean(x^2 over the last axes) + eps) * weight; eps=None means the
    dtype's machine epsilon (PyTorch's default)."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ones(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
