"""A character-level GPT trained for a few steps and then sampled, in the style of the
small GPT training scripts learners run: config dataclass, causal self-attention with a
registered `tril` buffer, AdamW with decay / no-decay parameter groups, gradient clipping,
an autocast context that is a no-op on the CPU, `torch.multinomial` sampling with top-k.
"""

import math
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from _common import numpy_init, report
from torch.nn import functional as F

TEXT = (
    "the lamp burns low and the river runs cold;\n"
    "we count the stones along the road, and the road counts us.\n"
    "a heron waits, a bell rings twice, the ferry turns for home.\n"
) * 8


@dataclass
class Config:
    block_size: int = 16
    vocab_size: int = 0
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    dropout: float = 0.0
    bias: bool = True


class CausalSelfAttention(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        mask = torch.tril(torch.ones(config.block_size, config.block_size))
        self.register_buffer("bias", mask.view(1, 1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        att = self.attn_dropout(att)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
            nn.Dropout(config.dropout),
        )

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying

    def get_num_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None):
        device = idx.device
        b, t = idx.size()
        assert t <= self.config.block_size, f"sequence of {t} > block size"
        pos = torch.arange(0, t, dtype=torch.long, device=device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        else:
            logits = self.lm_head(x[:, [-1], :])
            loss = None
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        decay = [p for p in param_dict.values() if p.dim() >= 2]
        nodecay = [p for p in param_dict.values() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": nodecay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, greedy=False):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.config.block_size \
                else idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            if greedy:
                idx_next = torch.argmax(probs, dim=-1, keepdim=True)
            else:
                idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    device_type = "cuda" if "cuda" in device else "cpu"
    torch.manual_seed(1337)
    torch.cuda.manual_seed(1337)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    ctx = nullcontext() if device_type == "cpu" else torch.amp.autocast(device_type=device_type)
    scaler = torch.cuda.amp.GradScaler(enabled=False)

    chars = sorted(set(TEXT))
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in TEXT], dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]

    config = Config(vocab_size=len(chars))
    model = GPT(config)
    numpy_init(model)
    model.to(device)
    print(f"number of parameters: {model.get_num_params() / 1e3:.2f}K")
    optimizer = model.configure_optimizers(0.1, 3e-3, (0.9, 0.99))

    batch_rng = np.random.default_rng(0)

    def get_batch(split):
        source = train_data if split == "train" else val_data
        ix = torch.from_numpy(batch_rng.integers(0, len(source) - config.block_size, size=8))
        x = torch.stack([source[i:i + config.block_size] for i in ix])
        y = torch.stack([source[i + 1:i + 1 + config.block_size] for i in ix])
        return x.to(device), y.to(device)

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        x = val_data[:-1].view(1, -1)[:, :config.block_size * 4]
        losses = torch.zeros(4)
        for k in range(4):
            xb = x[:, k * config.block_size:(k + 1) * config.block_size]
            yb = val_data[1 + k * config.block_size:1 + (k + 1) * config.block_size].view(1, -1)
            with ctx:
                _, loss = model(xb, yb)
            losses[k] = loss.item()
        model.train()
        return losses.mean()

    losses = []
    for it in range(30):
        lr = 3e-3 * min(1.0, (it + 1) / 10)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        X, Y = get_batch("train")
        with ctx:
            logits, loss = model(X, Y)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if it % 10 == 0:
            print(f"iter {it}: loss {loss.item():.4f}, lr {lr:.2e}")
    val = estimate_loss()
    print(f"val loss {val:.4f}")

    model.eval()
    start = torch.tensor([[stoi["t"]]], dtype=torch.long, device=device)
    greedy = model.generate(start, 20, greedy=True)[0].tolist()
    torch.manual_seed(0)
    sampled = model.generate(start.repeat(256, 1), 4, temperature=0.8, top_k=5)
    text = "".join(itos[i] for i in sampled[0].tolist())
    print(text)
    first_counts = torch.bincount(sampled[:, 1], minlength=len(chars)).float() / 256

    # the probabilities the sampler draws the first new character from
    logits, _ = model(start)
    top = torch.topk(logits[0, -1] / 0.8, 5)
    probs = torch.zeros(len(chars))
    probs[top.indices] = F.softmax(top.values, dim=-1)
    report(
        deterministic={"losses": losses, "val": float(val), "greedy": greedy,
                       "params": model.get_num_params(),
                       "probs": probs.tolist()},
        statistical={"first_counts": first_counts.tolist()},
        checks={"samples_in_top_k": bool((probs[sampled[:, 1]] > 0).all()),
                "sample_shape": list(sampled.shape) == [256, 5],
                "loss_went_down": losses[-1] < losses[0]},
    )


if __name__ == "__main__":
    main()
