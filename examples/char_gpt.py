"""A character-level GPT: train smolgrad's GPT-2 on any text file, then let it write.

    python examples/char_gpt.py                              # the bundled short story
    python examples/char_gpt.py --text my_notes.txt --steps 2000 --n-layer 4 --n-embd 128
    python examples/char_gpt.py --device gpu --prompt "The keeper" --sample-tokens 400

Every distinct character of the text is one token. The model is
`smolgrad.models.gpt2.GPT2` (the same code that loads Hugging Face's GPT-2 weights),
only smaller and with a vocabulary of characters. Training samples random windows of
`block_size` characters and learns to predict each next character; AdamW, a linear
warm-up then cosine decay of the learning rate, gradient clipping at 1.0. At the end it
samples text with the KV cache (`GPT2.generate`).

The default corpus, examples/data/lighthouse.txt, is a few kilobytes of prose written for
this repository (public domain). With the defaults (a few minutes on a laptop CPU) the
samples are word-shaped gibberish with the story's spacing and punctuation; more steps
and a wider model give real words.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

import smolgrad as sg
from smolgrad import nn, optim
from smolgrad.models.gpt2 import GPT2, GPT2Config

DEFAULT_TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                            "lighthouse.txt")


class CharTokenizer:
    """Characters <-> integer ids, the vocabulary being the sorted distinct characters."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"characters {unknown!r} do not occur in the training text")
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)


def get_batch(data: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator,
              device: str) -> tuple:
    """batch_size random windows: inputs data[i : i+T] and targets data[i+1 : i+T+1]."""
    starts = rng.integers(0, len(data) - block_size - 1, size=batch_size)
    x = np.stack([data[s:s + block_size] for s in starts])
    y = np.stack([data[s + 1:s + block_size + 1] for s in starts])
    return sg.tensor(x, device=device), sg.tensor(y, device=device)


def learning_rate(step: int, max_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up to max_lr, then cosine decay to max_lr / 10."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return max_lr / 10 + 0.5 * (max_lr - max_lr / 10) * (1 + math.cos(math.pi * progress))


@sg.no_grad()
def estimate_loss(model: GPT2, data: np.ndarray, args, rng: np.random.Generator) -> float:
    model.eval()
    losses = []
    for _ in range(args.eval_batches):
        x, y = get_batch(data, args.block_size, args.batch_size, rng, args.device)
        losses.append(model(x, y)[1].item())
    model.train()
    return float(np.mean(losses))


def train(args: argparse.Namespace) -> dict:
    """Train on args.text and sample; returns the losses and the sampled text."""
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    tokenizer = CharTokenizer(text)
    data = np.array(tokenizer.encode(text), dtype=np.int64)
    if len(data) < args.block_size + 2:
        raise SystemExit(f"char_gpt: the text has {len(data)} characters, fewer than "
                         f"block_size + 2 = {args.block_size + 2}; use a longer text or a "
                         f"smaller --block-size")
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    if len(val_data) < args.block_size + 2:
        val_data = train_data  # too short to hold out a validation part

    sg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=args.block_size,
                        n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head,
                        resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                        attn_pdrop=args.dropout)
    model = GPT2(config).to(args.device)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99),
                               weight_decay=0.1)
    print(f"text: {args.text} ({len(data):,} characters, vocabulary of "
          f"{tokenizer.vocab_size}); GPT with {model.num_parameters():,} parameters on "
          f"{args.device}")

    losses = []
    warmup = max(1, args.steps // 10)
    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.lr, warmup, args.steps)
        x, y = get_batch(train_data, args.block_size, args.batch_size, rng, args.device)
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % args.log_every == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - start
            print(f"step {step:5d}  loss {losses[-1]:.4f}  "
                  f"({(step + 1) * args.batch_size * args.block_size / elapsed:,.0f} tokens/s)",
                  flush=True)
    val_loss = estimate_loss(model, val_data, args, rng)
    print(f"validation loss {val_loss:.4f} (uniform guessing: "
          f"{math.log(tokenizer.vocab_size):.4f})")

    prompt = args.prompt if args.prompt else text[0]
    idx = sg.tensor([tokenizer.encode(prompt)], device=args.device)
    out = model.generate(idx, max_new_tokens=args.sample_tokens, temperature=args.temperature,
                         top_k=args.top_k, do_sample=True)
    sample = tokenizer.decode(out[0].tolist())
    print("-" * 40 + " sample " + "-" * 40)
    print(sample)
    print("-" * 88)
    return {"losses": losses, "val_loss": val_loss, "sample": sample, "model": model,
            "tokenizer": tokenizer}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=DEFAULT_TEXT, help="a UTF-8 text file to learn")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=64, help="context length")
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-batches", type=int, default=10)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--sample-tokens", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--prompt", default="", help="text to continue (default: the "
                                                     "first character of the corpus)")
    parser.add_argument("--device", default="cpu", help="cpu, mlx, cuda or gpu")
    parser.add_argument("--seed", type=int, default=1337)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
