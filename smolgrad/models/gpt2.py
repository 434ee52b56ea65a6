"""GPT-2 in smolgrad: the decoder-only transformer of Radford et al. (2019).

    from smolgrad.models.gpt2 import GPT2, GPT2Config
    model = GPT2(GPT2Config(vocab_size=65, n_positions=128, n_embd=64, n_layer=2, n_head=4))
    logits = model(idx)                      # idx: (B, T) int64 -> logits: (B, T, vocab)
    logits, loss = model(idx, targets)       # next-token cross-entropy, targets: (B, T)
    out = model.generate(idx, max_new_tokens=20)             # greedy, with a KV cache
    model = GPT2.from_pretrained("path/to/gpt2")             # Hugging Face folder, no network

The shape of the computation, for a batch of B sequences of T token ids:

    x = wte[idx] + wpe[0..T-1]                                (B, T, C)   C = n_embd
    for each of the n_layer blocks:
        x = x + Attention(LayerNorm_1(x))                     pre-norm residual blocks
        x = x + MLP(LayerNorm_2(x))
    logits = LayerNorm_f(x) @ wte.T                           (B, T, vocab): the output
                                                              projection IS the embedding
Attention, with H heads of size D = C / H:
    q, k, v = split(x @ W_attn + b_attn)                      each (B, H, T, D)
    A = softmax(q @ k.T / sqrt(D) + causal_mask)              (B, H, T, T)
    y = (A @ v) merged back to (B, T, C), then @ W_proj + b_proj
MLP:   y = gelu_tanh(x @ W_fc + b_fc) @ W_proj + b_proj      hidden size 4 C

Parameter names are Hugging Face's (`transformer.h.0.attn.c_attn.weight`, ...), so a
state dict maps key for key. One difference: Hugging Face stores these four projections
as `Conv1D` layers whose weight is (in, out); here they are `nn.Linear`, whose weight is
(out, in) as in PyTorch, and `from_pretrained` transposes them while loading.

The KV cache: when generating one token at a time, the keys and values of the tokens
already seen do not change (attention is causal), so each layer keeps them and each new
step only computes q, k, v for the new token and attends over the stored ones. That turns
generation from O(T^2) work per token into O(T).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

import smolgrad as sg
from smolgrad import nn
from smolgrad.nn import functional as F

# The Hugging Face GPT-2 weights stored in `Conv1D` layers, whose weight is (in, out).
_CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                    "mlp.c_proj.weight")
# Buffers that older Hugging Face checkpoints carry (the causal mask); rebuilt here.
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")

_ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh",
                "gelu": "none"}


@dataclasses.dataclass
class GPT2Config:
    """The hyperparameters of a GPT-2 model; field names are those of Hugging Face's
    `config.json`, and the defaults are the 124M-parameter "gpt2"."""

    vocab_size: int = 50257
    n_positions: int = 1024          # the longest sequence (number of position embeddings)
    n_embd: int = 768                # C, the width of the residual stream
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None       # MLP hidden size; None means 4 * n_embd
    activation_function: str = "gelu_new"   # GPT-2's tanh approximation of GELU
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True  # divide attention scores by sqrt(head size)
    scale_attn_by_inverse_layer_idx: bool = False  # and by (layer index + 1)
    tie_word_embeddings: bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"GPT2Config: n_embd ({self.n_embd}) must be divisible by "
                             f"n_head ({self.n_head})")
        if self.activation_function not in _ACTIVATIONS:
            raise ValueError(f"GPT2Config: activation_function "
                             f"'{self.activation_function}' is not supported; use one of "
                             f"{sorted(_ACTIVATIONS)}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def inner_size(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @classmethod
    def from_dict(cls, values: dict) -> GPT2Config:
        """Build from a Hugging Face config dict; keys this model does not use are ignored
        (e.g. `architectures`, `task_specific_params`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_json(cls, path: str) -> GPT2Config:
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class KVCache:
    """The keys and values of the tokens seen so far, one (key, value) pair per layer.

    Each is (B, H, length, D). `GPT2.forward(idx, kv_cache=cache)` reads the stored pairs,
    appends the new tokens' keys and values, and places the new tokens at positions
    `length, length + 1, ...`.
    """

    def __init__(self, n_layer: int):
        self.layers: list = [None] * n_layer

    @property
    def length(self) -> int:
        first = self.layers[0]
        return 0 if first is None else first[0].shape[2]


class CausalSelfAttention(nn.Module):
    """Multi-head attention in which each position sees only itself and earlier ones."""

    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.n_head = config.n_head
        self.head_size = config.head_size
        self.layer_idx = layer_idx
        scale = 1.0 / math.sqrt(self.head_size) if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            scale = scale / (layer_idx + 1)
        self.scale = scale
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)   # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def _heads(self, x: sg.Tensor) -> sg.Tensor:
        """(B, T, C) -> (B, H, T, D)."""
        batch, length, _ = x.shape
        return x.reshape(batch, length, self.n_head, self.head_size).transpose(1, 2)

    def forward(self, x: sg.Tensor, kv_cache: KVCache | None = None) -> sg.Tensor:
        batch, length, channels = x.shape
        q, k, v = self.c_attn(x).split(channels, dim=2)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        past = 0
        if kv_cache is not None:
            stored = kv_cache.layers[self.layer_idx]
            if stored is not None:
                past = stored[0].shape[2]
                k = sg.cat([stored[0], k], dim=2)
                v = sg.cat([stored[1], v], dim=2)
            kv_cache.layers[self.layer_idx] = (k, v)
        # Query i sits at absolute position past + i; it may look at keys 0 .. past + i.
        key_pos = sg.arange(past + length, device=x.device)
        query_pos = sg.arange(past, past + length, device=x.device)
        allowed = key_pos.unsqueeze(0) <= query_pos.unsqueeze(1)  # (T, past + T), bool
        # softmax(q kᵀ · scale, masked) with dropout on the weights, then times v; one node
        dropout_p = self.attn_dropout.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p,
                                           scale=self.scale)     # (B, H, T, D)
        y = y.transpose(1, 2).reshape(batch, length, channels)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: Linear(C, 4C) -> GELU (tanh form) -> Linear(4C, C)."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.inner_size)
        self.c_proj = nn.Linear(config.inner_size, config.n_embd)
        self.dropout = nn.Dropout(config.resid_pdrop)
        self.approximate = _ACTIVATIONS[config.activation_function]

    def forward(self, x: sg.Tensor) -> sg.Tensor:
        hidden = F.gelu(self.c_fc(x), approximate=self.approximate)
        return self.dropout(self.c_proj(hidden))


class Block(nn.Module):
    """One transformer layer: pre-LayerNorm attention and MLP, each added to the residual."""

    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x: sg.Tensor, kv_cache: KVCache | None = None) -> sg.Tensor:
        x = x + self.attn(self.ln_1(x), kv_cache)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    """The transformer body (Hugging Face's `GPT2Model`): embeddings, blocks, final norm."""

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)    # token embeddings
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)   # position embeddings
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, idx: sg.Tensor, kv_cache: KVCache | None = None) -> sg.Tensor:
        """idx (B, T) int64 -> hidden states (B, T, C)."""
        past = kv_cache.length if kv_cache is not None else 0
        positions = sg.arange(past, past + idx.shape[1], device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(positions))
        for block in self.h:
            x = block(x, kv_cache)
        return self.ln_f(x)


class GPT2(nn.Module):
    """GPT-2 with its language-modelling head (Hugging Face's `GPT2LMHeadModel`).

    With `tie_word_embeddings` (GPT-2's choice) the head's weight is the very same
    Parameter as `transformer.wte.weight`: one array, updated once, gradient summed from
    both uses.
    """

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        # GPT-2 scales the init of the projections that write into the residual stream by
        # 1/sqrt(number of residual additions), so its variance does not grow with depth.
        std = config.initializer_range / math.sqrt(2 * config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=std)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def num_parameters(self) -> int:
        """How many numbers the model learns (a tied weight counts once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: sg.Tensor, targets: sg.Tensor | None = None,
                kv_cache: KVCache | None = None):
        """Logits (B, T, vocab) for token ids idx (B, T); with `targets` (B, T) also the
        mean cross-entropy of predicting targets[b, t] from idx[b, :t+1] (targets equal to
        -100 are ignored, as in `F.cross_entropy`): returns `(logits, loss)`."""
        if idx.ndim != 2:
            raise ValueError(f"GPT2: expected token ids of shape (batch, time), got shape "
                             f"{tuple(idx.shape)}")
        past = kv_cache.length if kv_cache is not None else 0
        if past + idx.shape[1] > self.config.n_positions:
            raise ValueError(f"GPT2: {past} cached + {idx.shape[1]} new tokens exceed "
                             f"n_positions={self.config.n_positions}; crop the sequence")
        logits = self.lm_head(self.transformer(idx, kv_cache))
        if targets is None:
            return logits
        if targets.shape != idx.shape:
            raise ValueError(f"GPT2: targets of shape {tuple(targets.shape)} do not match idx of "
                             f"shape {tuple(idx.shape)}")
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    @sg.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, do_sample: bool = False,
                 use_cache: bool = True) -> sg.Tensor:
        """Continue token sequences idx (B, T) by max_new_tokens tokens -> (B, T + new).

        Greedy (the most likely token) unless `do_sample`, in which case tokens are drawn
        from softmax(logits / temperature), restricted to the `top_k` most likely when
        given; the draws use smolgrad's random state (`sg.manual_seed`). With `use_cache`
        each step feeds only the new token through the model (see `KVCache`). When the
        sequence outgrows n_positions, only its last n_positions tokens are used.
        """
        if not isinstance(idx, sg.Tensor):
            idx = sg.tensor(idx, dtype=sg.int64, device=self._device())
        if idx.ndim == 1:
            idx = idx.unsqueeze(0)
        if do_sample and temperature <= 0:
            raise ValueError(f"generate: temperature must be > 0 when sampling, got "
                             f"{temperature}")
        was_training = self.training
        self.eval()
        limit = self.config.n_positions
        cache = KVCache(self.config.n_layer) if use_cache else None
        try:
            for _ in range(max_new_tokens):
                if cache is None:
                    logits = self(idx[:, -limit:])
                elif idx.shape[1] > limit:
                    # No room for another position: start over on the last `limit` tokens.
                    cache = KVCache(self.config.n_layer)
                    logits = self(idx[:, -limit:], kv_cache=cache)
                else:
                    logits = self(idx[:, cache.length:], kv_cache=cache)
                next_ids = _choose_next(logits[:, -1, :], temperature, top_k, do_sample)
                next_ids = sg.tensor(next_ids, dtype=sg.int64, device=idx.device)
                idx = sg.cat([idx, next_ids.unsqueeze(1)], dim=1)
        finally:
            self.train(was_training)
        return idx

    def _device(self):
        return next(iter(self.parameters())).device

    # -- Hugging Face weights ------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str, device=None, dtype=None) -> GPT2:
        """Load a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`) from disk.

        Reads the weights with safetensors' NumPy loader (no pickle, no network), maps the
        keys, transposes the `Conv1D` weights to `nn.Linear`'s (out, in) layout, and loads
        them strictly: a missing or unexpected key raises. The model comes back in eval
        mode (dropout off), as Hugging Face's does; call `.train()` to fine-tune.
        """
        config_path = os.path.join(path, "config.json")
        weights_path = os.path.join(path, "model.safetensors")
        for needed in (config_path, weights_path):
            if not os.path.isfile(needed):
                raise FileNotFoundError(
                    f"GPT2.from_pretrained: '{needed}' not found; the folder must hold a "
                    f"Hugging Face GPT-2 config.json and model.safetensors (save one with "
                    f"save_pretrained(..., safe_serialization=True))")
        from safetensors.numpy import load_file

        config = GPT2Config.from_json(config_path)
        model = cls(config)
        model.load_hf_state_dict(load_file(weights_path), dtype=dtype)
        if device is not None:
            model.to(device)
        return model.eval()   # as Hugging Face does: dropout off until .train()

    def load_hf_state_dict(self, hf_state: dict, dtype=None) -> None:
        """Load a Hugging Face GPT-2 state dict of NumPy arrays into this model.

        Keys may carry the `transformer.` prefix (saved from GPT2LMHeadModel) or not (the
        original "gpt2" checkpoint, saved from GPT2Model). Values are read as float32, then
        the model is cast to `dtype` when one is given (e.g. sg.float16).
        """
        expected = self.state_dict()
        converted = {}
        for key, array in hf_state.items():
            if key.endswith(_IGNORED_SUFFIXES):
                continue
            name = key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key
            array = np.asarray(array, dtype=np.float32)
            if name.endswith(_CONV1D_SUFFIXES):
                array = np.ascontiguousarray(array.T)
            converted[name] = array
        if self.config.tie_word_embeddings:
            # The head shares wte's weight; checkpoints store it once (or both, equal).
            converted.pop("lm_head.weight", None)
            if "lm_head.weight" in expected and "transformer.wte.weight" in converted:
                converted["lm_head.weight"] = converted["transformer.wte.weight"]
        self.load_state_dict(converted, strict=True)
        if dtype is not None:
            self.to(dtype)


def _choose_next(last_logits: sg.Tensor, temperature: float, top_k: int | None,
                 do_sample: bool) -> list:
    """Pick one token id per row of last_logits (B, vocab).

    Done on the host in NumPy float64: it is B x vocab numbers per step, and it needs
    sorting and a cumulative sum for inverse-CDF sampling, which are not tensor ops here.
    """
    logits = last_logits.float().detach().cpu().numpy().astype(np.float64)
    if not do_sample:
        return np.argmax(logits, axis=-1).tolist()
    logits = logits / temperature
    if top_k is not None:
        k = min(int(top_k), logits.shape[-1])
        kth_largest = np.sort(logits, axis=-1)[:, -k][:, None]
        logits = np.where(logits < kth_largest, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(probs, axis=-1)
    # One uniform draw per row from smolgrad's generator, so sg.manual_seed fixes samples.
    u = sg.rand(logits.shape[0]).numpy().astype(np.float64)[:, None] * cdf[:, -1:]
    choice = (cdf <= u).sum(axis=-1)
    return np.minimum(choice, logits.shape[-1] - 1).tolist()
