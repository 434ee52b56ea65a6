"""Convolution layers: `Conv1d`, `Conv2d`, `ConvTranspose2d`.

Conv2d: out[n, o] = b[o] + sum_{c in group(o)} (x[n, c] cross-correlated with W[o, c])
  weight: (out_channels, in_channels / groups, kH, kW)
ConvTranspose2d (the gradient of Conv2d with respect to its input, used as a layer):
  weight: (in_channels, out_channels / groups, kH, kW)
Default initialisation (PyTorch's): weight ~ kaiming_uniform_(a=sqrt(5)), bias ~
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = weight.size(1) * kernel area.
"""

from __future__ import annotations

from ..engine import Tensor
from ..ops.creation import empty
from . import functional as F
from .linear import reset_weight_and_bias
from .module import Module, Parameter


def _tuple(value, n: int, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


class _ConvNd(Module):
    """What Conv1d, Conv2d and ConvTranspose2d share: argument checks, parameters, repr."""

    _dims = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 output_padding=0, device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        n = self._dims
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not "
                                      f"supported by smolgrad (only 'zeros'); pad the input "
                                      f"with F.pad first")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be one "
                                 f"of 'valid', 'same'")
            if padding == "same" and any(s != 1 for s in _tuple(stride, n, "stride")):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n, "padding")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.stride = _tuple(stride, n, "stride")
        self.dilation = _tuple(dilation, n, "dilation")
        self.output_padding = _tuple(output_padding, n, "output_padding")
        self.transposed = self._transposed
        self.groups = groups
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def _check_input(self, input: Tensor) -> None:
        n = self._dims
        if input.ndim not in (n + 1, n + 2):
            raise RuntimeError(f"{type(self).__name__}: expected a {n + 1}-D (unbatched) or "
                               f"{n + 2}-D (batched) input, got shape {tuple(input.shape)}")
        channels = input.shape[-n - 1]
        if channels != self.in_channels:
            raise RuntimeError(f"{type(self).__name__}: expected input with "
                               f"{self.in_channels} channels (dim {-n - 1}), got shape "
                               f"{tuple(input.shape)}")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        ones = (1,) * self._dims
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"
        if self.dilation != ones:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """(N, C_in, L) -> (N, C_out, L_out), L_out = (L + 2p - d(k - 1) - 1) // s + 1"""

    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device=device, dtype=dtype)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        return F.conv1d(input, self.weight, self.bias, stride=self.stride,
                        padding=self.padding, dilation=self.dilation, groups=self.groups)


class Conv2d(_ConvNd):
    """(N, C_in, H, W) -> (N, C_out, H_out, W_out), each spatial size as in Conv1d"""

    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device=device, dtype=dtype)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        return F.conv2d(input, self.weight, self.bias, stride=self.stride,
                        padding=self.padding, dilation=self.dilation, groups=self.groups)


class ConvTranspose2d(_ConvNd):
    """(N, C_in, H, W) -> (N, C_out, H_out, W_out),
    H_out = (H - 1) s - 2p + d(k - 1) + output_padding + 1"""

    _dims = 2
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        if isinstance(padding, str):
            raise ValueError("ConvTranspose2d: padding must be an int or a tuple of ints "
                             f"(got {padding!r})")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device=device,
                         dtype=dtype)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op >= max(s, d):
                raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} "
                                 f"must be smaller than either stride {self.stride} or "
                                 f"dilation {self.dilation}")

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        """The output_padding that makes the output's spatial size `output_size`."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)[-2:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must have 2 or more elements, "
                             f"got {output_size}")
        result = []
        for i in range(2):
            size = input.shape[-2 + i]
            smallest = ((size - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = output_size[i] - smallest
            if not 0 <= extra < self.stride[i]:
                raise ValueError(f"ConvTranspose2d: requested output size {output_size} is "
                                 f"not reachable from input shape {tuple(input.shape)}; "
                                 f"sizes from {smallest} to {smallest + self.stride[i] - 1} "
                                 f"are possible in dim {i}")
            result.append(extra)
        return tuple(result)

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        self._check_input(input)
        return F.conv_transpose2d(input, self.weight, self.bias, stride=self.stride,
                                  padding=self.padding,
                                  output_padding=self._output_padding(input, output_size),
                                  groups=self.groups, dilation=self.dilation)
