"""`MultiheadAttention`, the encoder/decoder layers and stacks, and `Transformer`.

Multi-head attention with E = embed_dim, H = num_heads, d = E / H:

    q, k, v = query W_q^T + b_q,  key W_k^T + b_k,  value W_v^T + b_v   (in_proj_weight holds
                                                                        W_q, W_k, W_v stacked)
    per head h:  A_h = softmax(q_h k_h^T / sqrt(d) + mask),   o_h = A_h v_h
    out = concat_h(o_h) W_o^T + b_o                                    (out_proj)

Shapes: (L, N, E) for query and (S, N, E) for key/value, or (N, L, E) / (N, S, E) with
batch_first=True, or unbatched (L, E) / (S, E). attn_mask: (L, S) or (N*H, L, S), bool
(True = not allowed to attend) or float (added to the scores). key_padding_mask: (N, S),
bool (True = ignore that key) or float (added).

The layers (post-norm by default; pre-norm with norm_first=True), each block followed by
dropout and a residual connection:

    encoder layer:  self-attention on x, then feed-forward
    decoder layer:  self-attention on x (tgt_mask: usually causal), then attention from x to
                    the encoder's output `memory`, then feed-forward
    feed-forward:   linear2(dropout(activation(linear1(x))))

`Transformer` = `TransformerEncoder` (N encoder layers + LayerNorm) feeding its output as
`memory` to `TransformerDecoder` (M decoder layers + LayerNorm), as in "Attention Is All
You Need". State-dict keys are PyTorch's.
"""

from __future__ import annotations

import copy
import math

from .. import dtypes as dt
from ..engine import Tensor
from ..ops.creation import empty, full, ones, zeros
from ..ops.elementwise import where
from . import functional as F
from . import init
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module, Parameter
from .normalization import LayerNorm


def _additive_mask(mask: Tensor, dtype: dt.dtype, what: str) -> Tensor:
    """A bool mask (True = masked) as 0 / -inf to add to the scores; float masks pass."""
    if mask.dtype is dt.bool_:
        zero = zeros((), dtype=dtype, device=mask.device)
        return where(mask, zero - math.inf, zero)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"MultiheadAttention: only bool and floating types of {what} are "
                        f"supported, got {mask.dtype}")
    return mask.to(dtype)


class MultiheadAttention(Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater "
                             f"than 0, got embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv=True and "
                                      "add_zero_attn=True are not supported by smolgrad")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        factory = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **factory))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: xavier_uniform_ projections, zero biases (out_proj weight keeps
        Linear's default)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projections(self, query: Tensor, key: Tensor, value: Tensor):
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = (self.in_proj_weight[0:e], self.in_proj_weight[e:2 * e],
                             self.in_proj_weight[2 * e:])
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias
        b_q, b_k, b_v = (None, None, None) if b is None else (b[0:e], b[e:2 * e], b[2 * e:])
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _merged_mask(self, attn_mask, key_padding_mask, is_causal: bool, n: int, tgt: int,
                     src: int, dtype, device) -> Tensor | None:
        """attn_mask and key_padding_mask combined into one additive (N|1, H|1, L, S) mask."""
        h = self.num_heads
        mask = None
        if attn_mask is None and is_causal:
            attn_mask = ones(tgt, src, dtype=dt.bool_, device=device).triu(1)
        if attn_mask is not None:
            if attn_mask.ndim == 2:
                if tuple(attn_mask.shape) != (tgt, src):
                    raise RuntimeError(f"MultiheadAttention: the shape of the 2D attn_mask is "
                                       f"{tuple(attn_mask.shape)}, but should be "
                                       f"{(tgt, src)}")
                mask = _additive_mask(attn_mask, dtype, "attn_mask").reshape(1, 1, tgt, src)
            elif attn_mask.ndim == 3:
                if tuple(attn_mask.shape) != (n * h, tgt, src):
                    raise RuntimeError(f"MultiheadAttention: the shape of the 3D attn_mask is "
                                       f"{tuple(attn_mask.shape)}, but should be "
                                       f"{(n * h, tgt, src)}")
                mask = _additive_mask(attn_mask, dtype, "attn_mask").reshape(n, h, tgt, src)
            else:
                raise RuntimeError(f"MultiheadAttention: attn_mask's dimension "
                                   f"{attn_mask.ndim} is not supported (2 or 3)")
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, src):
                raise RuntimeError(f"MultiheadAttention: expected key_padding_mask of shape "
                                   f"{(n, src)}, got {tuple(key_padding_mask.shape)}")
            pad = _additive_mask(key_padding_mask, dtype, "key_padding_mask")
            pad = pad.reshape(n, 1, 1, src)
            mask = pad if mask is None else mask + pad
        return mask

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        """Returns (attn_output, attn_weights); attn_weights is None unless need_weights,
        (N, L, S) averaged over heads, or (N, H, L, S) with average_attn_weights=False."""
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise RuntimeError(f"MultiheadAttention: query, key and value must all be 3-D "
                               f"(batched) or 2-D (unbatched), got shapes "
                               f"{tuple(query.shape)}, {tuple(key.shape)}, "
                               f"{tuple(value.shape)}")
        if query.shape[-1] != self.embed_dim:
            raise RuntimeError(f"MultiheadAttention: expected query's last dim to be "
                               f"embed_dim={self.embed_dim}, got shape {tuple(query.shape)}")
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            # (L, N, E) -> (N, L, E): everything below is batch first
            query, key, value = (query.transpose(0, 1), key.transpose(0, 1),
                                 value.transpose(0, 1))
        n, tgt, _ = query.shape
        src = key.shape[1]
        h, d = self.num_heads, self.head_dim
        q, k, v = self._projections(query, key, value)
        q = q.reshape(n, tgt, h, d).transpose(1, 2)  # (N, H, L, d)
        k = k.reshape(n, src, h, d).transpose(1, 2)  # (N, H, S, d)
        v = v.reshape(n, src, h, d).transpose(1, 2)
        mask = self._merged_mask(attn_mask, key_padding_mask, is_causal, n, tgt, src, q.dtype,
                                  q.device)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, dim=-1)
            attn = F.dropout(weights, p=dropout_p, training=True) if dropout_p > 0 else weights
            out = attn @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        out = out.transpose(1, 2).reshape(n, tgt, self.embed_dim)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(0)
            if weights is not None:
                weights = weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


def _activation(activation, who: str):
    """A string names a function (not registered as a submodule, as in PyTorch)."""
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"{who}: activation should be relu/gelu, not {activation!r}")


class _TransformerLayer(Module):
    """What encoder and decoder layers share: self-attention, a feed-forward block, and
    one LayerNorm and one Dropout per block (two blocks in an encoder layer, three in a
    decoder layer, whose middle block attends to the encoder's output).

    Both have PyTorch's constructor below; a subclass says with `_has_cross_attention`
    whether it has the middle block. Submodules are registered in PyTorch's order, so
    `parameters()` and `state_dict()` list them as PyTorch does.
    """

    _has_cross_attention = False

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **factory)
        if self._has_cross_attention:
            self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                                     bias=bias, batch_first=batch_first,
                                                     **factory)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        blocks = 3 if self._has_cross_attention else 2
        for i in range(1, blocks + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias,
                                                **factory))
        for i in range(1, blocks + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation, type(self).__name__)

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _feed_forward(self, x: Tensor) -> Tensor:
        """linear2(dropout(activation(linear1(x)))), before the block's own dropout."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class TransformerEncoderLayer(_TransformerLayer):
    """Self-attention then a feed-forward block, each with a residual connection:

    norm_first=False (post-norm): x = norm1(x + sa(x));  x = norm2(x + ff(x))
    norm_first=True  (pre-norm):  x = x + sa(norm1(x));  x = x + ff(norm2(x))
    ff(x) = linear2(dropout(activation(linear1(x))))
    """

    _has_cross_attention = False

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self._feed_forward(x))

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerDecoderLayer(_TransformerLayer):
    """Self-attention, attention to the encoder's output `memory`, then feed-forward, each
    with a residual connection:

    norm_first=False (post-norm):              norm_first=True (pre-norm):
        x = norm1(x + sa(x))                       x = x + sa(norm1(x))
        x = norm2(x + mha(x, memory))              x = x + mha(norm2(x), memory)
        x = norm3(x + ff(x))                       x = x + ff(norm3(x))

    sa uses tgt_mask / tgt_key_padding_mask (queries, keys and values all from x); mha uses
    memory_mask / memory_key_padding_mask (queries from x, keys and values from memory).
    """

    _has_cross_attention = True

    def _mha_block(self, x: Tensor, memory: Tensor, attn_mask, key_padding_mask,
                   is_causal: bool) -> Tensor:
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout3(self._feed_forward(x))

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask,
                                   tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask,
                                              tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask,
                                               memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x


def _clones(layer: Module, num_layers: int) -> ModuleList:
    """`num_layers` independent deep copies of `layer` (each with its own parameters)."""
    return ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerEncoder(Module):
    """`num_layers` independent copies of `encoder_layer`, then an optional `norm`."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        if self.norm is not None:
            x = self.norm(x)
        return x


class TransformerDecoder(Module):
    """`num_layers` independent copies of `decoder_layer`, each attending to the same
    `memory`, then an optional `norm`."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        if self.norm is not None:
            x = self.norm(x)
        return x


class Transformer(Module):
    """The encoder-decoder transformer of "Attention Is All You Need":

        memory = encoder(src)             num_encoder_layers layers, then LayerNorm
        output = decoder(tgt, memory)     num_decoder_layers layers, then LayerNorm

    Shapes (S = source length, T = target length, N = batch, E = d_model): src (S, N, E),
    tgt (T, N, E) -> output (T, N, E); (N, S, E) etc. with batch_first=True; unbatched
    (S, E), (T, E) also work. Masks: src_mask (S, S), tgt_mask (T, T) (usually
    `generate_square_subsequent_mask(T)`), memory_mask (T, S); key padding masks (N, S),
    (N, T), (N, S). `custom_encoder` / `custom_decoder` replace the built stacks. Every
    parameter with more than one dimension is re-initialised with xavier_uniform_, as in
    PyTorch.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                      batch_first, norm_first, bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(*layer_args, **factory)
            encoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(*layer_args, **factory)
            decoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None,
                tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        self._check_inputs(src, tgt)
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    def _check_inputs(self, src: Tensor, tgt: Tensor) -> None:
        batch_dim = 0 if self.batch_first else 1
        if src.ndim != tgt.ndim or src.ndim not in (2, 3):
            raise RuntimeError(f"Transformer: src and tgt must both be 3-D (batched) or 2-D "
                               f"(unbatched), got shapes {tuple(src.shape)} and "
                               f"{tuple(tgt.shape)}")
        if src.ndim == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise RuntimeError(f"the batch number of src and tgt must be equal: src "
                               f"{tuple(src.shape)}, tgt {tuple(tgt.shape)} "
                               f"(batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(f"the feature number of src and tgt must be equal to d_model "
                               f"({self.d_model}): src {tuple(src.shape)}, tgt "
                               f"{tuple(tgt.shape)}")

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """The causal mask for a sequence of length sz: an (sz, sz) float tensor with -inf
        above the diagonal (position i may not attend to j > i) and 0 elsewhere."""
        return full((sz, sz), -math.inf, dtype=dtype or dt.float32, device=device).triu(1)
