"""Recurrent layers `RNN`, `LSTM`, `GRU` and their one-step cells: per time step an
`F.linear` of the hidden state, then the gates (RNN: `tanh`/`relu`; LSTM and GRU: one fused
node each, `ops.nn.LSTMStep` / `ops.nn.GRUStep`, whose docstrings give the gradients).

With x_t the input at step t and h the previous hidden state (PyTorch's gate order):
  RNN:   h' = tanh(x_t W_ih^T + b_ih + h W_hh^T + b_hh)            (or relu)
  LSTM:  i, f, g, o = split(x_t W_ih^T + b_ih + h W_hh^T + b_hh, 4)
         c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')
  GRU:   r, z, n from  a = x_t W_ih^T + b_ih  and  b = h W_hh^T + b_hh  split in 3:
         r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z);  n = tanh(a_n + r * b_n)
         h' = (1 - z) * n + z * h
Parameters per layer k and direction: weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
bias_hh_l{k} (suffix "_reverse" for the backward direction), all initialised
U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
Shapes: input (L, N, H_in), or (N, L, H_in) with batch_first, or unbatched (L, H_in);
h_0 (num_layers * num_directions, N, H); output (L, N, num_directions * H).
"""

from __future__ import annotations

import math

from ..engine import Tensor
from ..ops.creation import empty, zeros
from ..ops.movement import cat, stack, unbind
from ..ops.nn import gru_step, lstm_step
from . import functional as F
from . import init
from .module import Module, Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def rnn_tanh_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """One RNN step given the input's projection x_proj = x W_ih^T + b_ih."""
    return (x_proj + F.linear(h, w_hh, b_hh)).tanh()


def rnn_relu_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    return (x_proj + F.linear(h, w_hh, b_hh)).relu()


def lstm_cell(x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """One LSTM step; returns (h', c'). The gates are one fused node (`ops.nn.LSTMStep`)."""
    return lstm_step(x_proj, F.linear(h, w_hh, b_hh), c)


def gru_cell(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """One GRU step. The gates are one fused node (`ops.nn.GRUStep`)."""
    return gru_step(x_proj, F.linear(h, w_hh, b_hh), h)


class RNNBase(Module):
    """The shared machinery: parameters by PyTorch's names, layers, directions, time loop."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if proj_size != 0:
            raise NotImplementedError(f"{name}: proj_size is not supported by smolgrad")
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1], got "
                             f"{dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: hidden_size and num_layers must be positive, got "
                             f"hidden_size={hidden_size}, num_layers={num_layers}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for base, shape in shapes:
                    setattr(self, base + suffix, Parameter(empty(shape, device=device,
                                                                 dtype=dtype)))
                    self._flat_weights_names.append(base + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op, as PyTorch's is off cuDNN: programs call it after loading a model so
        that cuDNN sees one contiguous weight buffer; smolgrad keeps separate tensors."""

    def _layer_params(self, layer: int, direction: int):
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        get = self._parameters.get
        return (get("weight_ih" + suffix), get("weight_hh" + suffix), get("bias_ih" + suffix),
                get("bias_hh" + suffix))

    def _step(self, x_proj: Tensor, state, w_hh: Tensor, b_hh: Tensor | None):
        """One time step: state is h (or (h, c) for LSTM); returns (output h, new state)."""
        if self.mode == "LSTM":
            h, c = lstm_cell(x_proj, state[0], state[1], w_hh, b_hh)
            return h, (h, c)
        if self.mode == "GRU":
            h = gru_cell(x_proj, state, w_hh, b_hh)
        elif self.mode == "RNN_RELU":
            h = rnn_relu_cell(x_proj, state, w_hh, b_hh)
        else:
            h = rnn_tanh_cell(x_proj, state, w_hh, b_hh)
        return h, h

    def _check_hidden(self, h: Tensor, expected: tuple, what: str) -> None:
        if tuple(h.shape) != expected:
            raise RuntimeError(f"{type(self).__name__}: expected {what} size {expected}, got "
                               f"{tuple(h.shape)}")

    def forward(self, input: Tensor, hx=None):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor input (PackedSequence is not "
                            f"supported by smolgrad), got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input to be 2-D (unbatched) or 3-D "
                             f"(batched), got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {input.shape[-1]}")
        batched = input.ndim == 3
        is_lstm = self.mode == "LSTM"
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # everything below is (L, N, H_in)
        steps, n = x.shape[0], x.shape[1]
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, n, self.hidden_size)
        if hx is None:
            h0 = zeros(expected, dtype=x.dtype, device=x.device)
            hx = (h0, h0) if is_lstm else h0
        else:
            if is_lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0)")
            if not batched:
                hx = (tuple(h.unsqueeze(1) for h in hx) if is_lstm else hx.unsqueeze(1))
            for h, what in zip(hx if is_lstm else (hx,), ("hidden", "cell")):
                self._check_hidden(h, expected, what)
        final_h, final_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, direction)
                index = layer * directions + direction
                state = (hx[0][index], hx[1][index]) if is_lstm else hx[index]
                x_proj = F.linear(layer_input, w_ih, b_ih)  # all steps at once: (L, N, G)
                order = range(steps - 1, -1, -1) if direction == 1 else range(steps)
                x_steps = unbind(x_proj)  # one node, L outputs (not L slices)
                hs = [None] * steps
                for t in order:
                    hs[t], state = self._step(x_steps[t], state, w_hh, b_hh)
                outputs.append(stack(hs) if steps
                               else x_proj[:, :, :self.hidden_size])
                if is_lstm:
                    final_h.append(state[0])
                    final_c.append(state[1])
                else:
                    final_h.append(state)
            layer_input = outputs[0] if directions == 1 else cat(outputs, dim=-1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, p=self.dropout, training=True)
        output = layer_input
        h_n = stack(final_h)
        hidden = (h_n, stack(final_c)) if is_lstm else h_n
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(1)
            hidden = tuple(h.squeeze(1) for h in hidden) if is_lstm else hidden.squeeze(1)
        return output, hidden

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (nonlinearity='relu' too)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r}; select from "
                             f"'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + f", nonlinearity={self.nonlinearity}"


class LSTM(RNNBase):
    """Long short-term memory; forward(input, (h_0, c_0)) -> output, (h_n, c_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit; forward(input, h_0) -> output, h_n."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


class _CellBase(Module):
    """One time step; parameters weight_ih, weight_hh, bias_ih, bias_hh."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = self._gates * hidden_size
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = Parameter(empty(gate_size, input_size, **factory))
        self.weight_hh = Parameter(empty(gate_size, hidden_size, **factory))
        if bias:
            self.bias_ih = Parameter(empty(gate_size, **factory))
            self.bias_hh = Parameter(empty(gate_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, input: Tensor, hx):
        """(batched input, batched hx or None, was the input batched?)"""
        if input.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: expected input to be 1-D or 2-D, got "
                             f"shape {tuple(input.shape)}")
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
            if hx is not None:
                hx = tuple(h.unsqueeze(0) for h in hx) if isinstance(hx, tuple) \
                    else hx.unsqueeze(0)
        return input, hx, batched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(_CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        input, hx, batched = self._prepare(input, hx)
        if hx is None:
            hx = zeros(input.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
        cell = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        h = cell(F.linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh,
                 self.bias_hh)
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    _gates = 4

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, Tensor]:
        input, hx, batched = self._prepare(input, hx)
        if hx is None:
            z = zeros(input.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
            hx = (z, z)
        h, c = lstm_cell(F.linear(input, self.weight_ih, self.bias_ih), hx[0], hx[1],
                         self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        input, hx, batched = self._prepare(input, hx)
        if hx is None:
            hx = zeros(input.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
        h = gru_cell(F.linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh,
                     self.bias_hh)
        return h if batched else h.squeeze(0)
