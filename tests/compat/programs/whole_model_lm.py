"""Whole models saved and loaded, as word-level language model scripts do at the end of
training: `torch.save(model, f)` into a file opened with open(..., "wb"), then
`model = torch.load(f)` in a `torch.serialization.safe_globals([...])` block (PyTorch's
weights-only loading) or with `weights_only=False`, and text generated from the loaded
model. Two models: an LSTM whose decoder shares the embedding's weight (tied), and a model
built on nn.Transformer with a sinusoidal position buffer and a causal mask kept in a plain
attribute, as the classic example keeps it.
"""

import math
import os
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from _common import numpy_init, report

STORY = ("at first light the keeper climbs the tower and trims the wick ; the boats come "
         "home past the rocks , and the keeper writes the weather in his book ; at night "
         "the wind turns and the boats stay in the harbour while the lamp burns").split()


class TiedLSTM(nn.Module):
    """Embedding -> LSTM -> Linear, the Linear's weight being the embedding's."""

    def __init__(self, ntoken, size, layers):
        super().__init__()
        self.encoder = nn.Embedding(ntoken, size)
        self.rnn = nn.LSTM(size, size, layers)
        self.decoder = nn.Linear(size, ntoken)
        self.decoder.weight = self.encoder.weight
        self.ntoken, self.size, self.layers = ntoken, size, layers

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.encoder(tokens), hidden)
        return F.log_softmax(self.decoder(output), dim=-1), hidden

    def init_hidden(self, batch):
        weight = next(self.parameters())
        return (weight.new_zeros(self.layers, batch, self.size),
                weight.new_zeros(self.layers, batch, self.size))


class Positions(nn.Module):
    """Adds sin/cos position codes (a registered buffer) to a (T, B, C) input."""

    def __init__(self, size, longest=64):
        super().__init__()
        where = torch.arange(longest, dtype=torch.float).unsqueeze(1)
        rates = torch.exp(torch.arange(0, size, 2).float() * (-math.log(10000.0) / size))
        table = torch.zeros(longest, size)
        table[:, 0::2] = torch.sin(where * rates)
        table[:, 1::2] = torch.cos(where * rates)
        self.register_buffer("table", table.unsqueeze(1))

    def forward(self, x):
        return x + self.table[:x.size(0)]


class TinyTransformerLM(nn.Transformer):
    """nn.Transformer's encoder used alone, with a causal mask cached in `self.mask`."""

    def __init__(self, ntoken, size, heads, hidden, layers):
        super().__init__(d_model=size, nhead=heads, dim_feedforward=hidden,
                         num_encoder_layers=layers, num_decoder_layers=1, dropout=0.0)
        self.kind = "Transformer"
        self.mask = None
        self.positions = Positions(size)
        self.embed = nn.Embedding(ntoken, size)
        self.head = nn.Linear(size, ntoken)
        self.size = size

    def forward(self, tokens):
        if self.mask is None or self.mask.size(0) != len(tokens):
            self.mask = torch.triu(torch.full((len(tokens), len(tokens)), float("-inf")),
                                   diagonal=1)
        x = self.positions(self.embed(tokens) * math.sqrt(self.size))
        return F.log_softmax(self.head(self.encoder(x, mask=self.mask)), dim=-1)


def batches(ids, batch, steps):
    """(input, target) pairs of `steps` tokens from `batch` columns of the corpus."""
    columns = ids[: len(ids) // batch * batch].view(batch, -1).t().contiguous()
    for i in range(0, columns.size(0) - 1, steps):
        n = min(steps, columns.size(0) - 1 - i)
        yield columns[i:i + n], columns[i + 1:i + 1 + n].reshape(-1)


def train(model, ids, recurrent, epochs=3, lr=0.05):
    """A few epochs of plain SGD through p.data, as the classic example does."""
    losses = []
    criterion = nn.NLLLoss()
    for _ in range(epochs):
        model.train()
        hidden = model.init_hidden(4) if recurrent else None
        for data, target in batches(ids, 4, 6):
            model.zero_grad()
            if recurrent:
                hidden = tuple(h.detach() for h in hidden)
                output, hidden = model(data, hidden)
            else:
                output = model(data)
            loss = criterion(output.view(-1, model.ntoken if recurrent else output.size(-1)),
                             target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            for p in model.parameters():
                if p.grad is not None:  # nn.Transformer's decoder stack is left unused
                    p.data.add_(p.grad, alpha=-lr)
            losses.append(loss.item())
    return losses


def evaluate(model, ids, recurrent):
    model.eval()
    total = 0.0
    hidden = model.init_hidden(2) if recurrent else None
    with torch.no_grad():
        for data, target in batches(ids, 2, 6):
            if recurrent:
                output, hidden = model(data, hidden)
            else:
                output = model(data)
            total += len(data) * F.nll_loss(output.view(-1, output.size(-1)), target).item()
    return total / (len(ids) // 2 - 1)


def generate(model, first, count, recurrent, sample):
    """`count` word ids after `first`: the most likely next word each time (sample=False)
    or one drawn with torch.multinomial."""
    words = []
    tokens = torch.tensor([[first]])
    hidden = model.init_hidden(1) if recurrent else None
    with torch.no_grad():
        for _ in range(count):
            if recurrent:
                output, hidden = model(tokens[-1:], hidden)
            else:
                output = model(tokens)
            weights = output[-1].squeeze().exp()
            word = torch.multinomial(weights, 1)[0] if sample else weights.argmax()
            words.append(int(word))
            tokens = torch.cat([tokens, torch.tensor([[int(word)]])], 0)
    return words


def save_and_load(model, folder, name, allowed):
    """torch.save(model, f), then torch.load(f): weights-only with `allowed` as the safe
    globals, or with weights_only=False when `allowed` is None."""
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        torch.save(model, f)
    with open(path, "rb") as f:
        if allowed is None:
            return torch.load(f, weights_only=False)
        with torch.serialization.safe_globals(allowed):
            return torch.load(f)


def main():
    torch.manual_seed(0)
    vocab = sorted(set(STORY))
    ids = torch.tensor([vocab.index(w) for w in STORY * 3], dtype=torch.long)
    lstm = TiedLSTM(len(vocab), 16, 2)
    transformer = TinyTransformerLM(len(vocab), 16, 2, 32, 2)
    numpy_init(lstm)
    numpy_init(transformer)
    lstm_losses = train(lstm, ids, recurrent=True, epochs=15, lr=2.0)
    transformer_losses = train(transformer, ids, recurrent=False)
    lstm_before = evaluate(lstm, ids, True)
    transformer_before = evaluate(transformer, ids, False)

    with tempfile.TemporaryDirectory() as folder:
        lstm2 = save_and_load(lstm, folder, "lstm.pt", [
            TiedLSTM, torch.nn.modules.sparse.Embedding, torch.nn.modules.rnn.LSTM,
            torch.nn.modules.linear.Linear])
        transformer2 = save_and_load(transformer, folder, "transformer.pt", None)
    lstm_after = evaluate(lstm2, ids, True)
    transformer_after = evaluate(transformer2, ids, False)
    first = vocab.index("the")
    greedy_lstm = generate(lstm2, first, 12, True, sample=False)
    greedy_transformer = generate(transformer2, first, 12, False, sample=False)
    sampled = generate(lstm2, first, 20, True, sample=True)
    print(" ".join(vocab[i] for i in greedy_lstm))
    print(" ".join(vocab[i] for i in greedy_transformer))

    report(
        deterministic={"lstm_losses": lstm_losses, "transformer_losses": transformer_losses,
                       "lstm_eval": lstm_after, "transformer_eval": transformer_after,
                       "greedy_lstm": greedy_lstm, "greedy_transformer": greedy_transformer,
                       "lstm_class": type(lstm2).__name__,
                       "transformer_class": type(transformer2).__name__,
                       "transformer_kind": transformer2.kind,
                       "parameters": [n for n, _ in lstm2.named_parameters()]},
        checks={
            "same_eval_after_load": (lstm_after == lstm_before
                                     and transformer_after == transformer_before),
            "tied_after_load": lstm2.decoder.weight is lstm2.encoder.weight,
            "not_the_same_object": lstm2 is not lstm and transformer2 is not transformer,
            "eval_mode_kept": not any(m.training for m in [*lstm2.modules(),
                                                           *transformer2.modules()]),
            "mask_attribute_kept": transformer2.mask is not None,
            "position_buffer_kept": torch.equal(transformer2.positions.table,
                                                transformer.positions.table),
            "sampled_words_valid": len(sampled) == 20 and all(
                0 <= i < len(vocab) for i in sampled),
            "loss_went_down": (lstm_losses[-1] < lstm_losses[0]
                               and transformer_losses[-1] < transformer_losses[0]),
        },
    )


if __name__ == "__main__":
    main()
