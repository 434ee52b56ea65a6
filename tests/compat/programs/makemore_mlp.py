"""A makemore-style character MLP in the manner of the later lecture notebooks: hand-made
layer classes (Linear, BatchNorm1d with running statistics, Tanh, Embedding,
FlattenConsecutive) stacked in a Sequential, every layer's output kept with
`.retain_grad()` for activation / gradient statistics (std, saturation, histograms,
update-to-data ratios in log10), a step learning-rate decay, split losses under
torch.no_grad(), sampling with torch.multinomial, and an "infinite" DataLoader over a
RandomSampler(replacement=True, num_samples=int(1e10)).
"""

import numpy as np
import torch
import torch.nn.functional as F
from _common import build_dataset, make_words, report
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

RNG = np.random.default_rng(3)


def numpy_randn(*shape):
    return torch.from_numpy(RNG.normal(size=shape).astype(np.float32))


class Linear:
    def __init__(self, fan_in, fan_out, bias=True):
        self.weight = numpy_randn(fan_in, fan_out) / fan_in**0.5
        self.bias = torch.zeros(fan_out) if bias else None

    def __call__(self, x):
        self.out = x @ self.weight
        if self.bias is not None:
            self.out += self.bias
        return self.out

    def parameters(self):
        return [self.weight] + ([] if self.bias is None else [self.bias])


class BatchNorm1d:
    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.gamma, self.beta = torch.ones(dim), torch.zeros(dim)
        self.running_mean, self.running_var = torch.zeros(dim), torch.ones(dim)

    def __call__(self, x):
        if self.training:
            dim = 0 if x.ndim == 2 else (0, 1)
            xmean = x.mean(dim, keepdim=True)
            xvar = x.var(dim, keepdim=True)
        else:
            xmean, xvar = self.running_mean, self.running_var
        xhat = (x - xmean) / torch.sqrt(xvar + self.eps)
        self.out = self.gamma * xhat + self.beta
        if self.training:
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean \
                    + self.momentum * xmean.squeeze()
                self.running_var = (1 - self.momentum) * self.running_var \
                    + self.momentum * xvar.squeeze()
        return self.out

    def parameters(self):
        return [self.gamma, self.beta]


class Tanh:
    def __call__(self, x):
        self.out = torch.tanh(x)
        return self.out

    def parameters(self):
        return []


class Embedding:
    def __init__(self, num_embeddings, embedding_dim):
        self.weight = numpy_randn(num_embeddings, embedding_dim)

    def __call__(self, IX):
        self.out = self.weight[IX]
        return self.out

    def parameters(self):
        return [self.weight]


class FlattenConsecutive:
    def __init__(self, n):
        self.n = n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out

    def parameters(self):
        return []


class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def main():
    words = make_words(RNG, 400)
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}
    vocab_size, block_size = len(itos), 8
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    Xtr, Ytr = build_dataset(words[:n1], stoi, block_size)
    Xdev, Ydev = build_dataset(words[n1:n2], stoi, block_size)
    print(Xtr.shape, Ytr.shape, Xdev.shape)

    n_embd, n_hidden = 10, 32
    model = Sequential([
        Embedding(vocab_size, n_embd),
        FlattenConsecutive(2), Linear(n_embd * 2, n_hidden, bias=False), BatchNorm1d(n_hidden),
        Tanh(),
        FlattenConsecutive(2), Linear(n_hidden * 2, n_hidden, bias=False),
        BatchNorm1d(n_hidden), Tanh(),
        FlattenConsecutive(2), Linear(n_hidden * 2, n_hidden, bias=False),
        BatchNorm1d(n_hidden), Tanh(),
        Linear(n_hidden, vocab_size),
    ])
    with torch.no_grad():
        model.layers[-1].weight *= 0.1
    parameters = model.parameters()
    print(sum(p.nelement() for p in parameters))
    for p in parameters:
        p.requires_grad = True

    lossi, ud = [], []
    for i in range(60):
        ix = torch.from_numpy(RNG.integers(0, Xtr.shape[0], size=32))
        Xb, Yb = Xtr[ix], Ytr[ix]
        logits = model(Xb)
        for layer in model.layers:
            layer.out.retain_grad()
        loss = F.cross_entropy(logits, Yb)
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 40 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        if i % 20 == 0:
            print(f"{i:7d}/{60:7d}: {loss.item():.4f}")
        lossi.append(loss.log10().item())
        with torch.no_grad():
            ud.append([((lr * p.grad).std() / p.data.std()).log10().item() for p in parameters])

    stats = []
    for layer in model.layers:
        if isinstance(layer, Tanh):
            t = layer.out
            saturated = (t.abs() > 0.97).float().mean()
            hy, hx = torch.histogram(t, density=True)
            stats.append([t.mean().item(), t.std().item(), saturated.item(),
                          t.grad.std().item(), hy[:5].tolist(), hx[:3].tolist()])
            print(f"mean {t.mean():+.2f}, std {t.std():.2f}, saturated: {saturated * 100:.2f}%")

    for layer in model.layers:
        layer.training = False

    @torch.no_grad()
    def split_loss(split):
        x, y = {"train": (Xtr, Ytr), "val": (Xdev, Ydev)}[split]
        logits = model(x)
        return F.cross_entropy(logits, y).item()

    losses = {"train": split_loss("train"), "val": split_loss("val")}
    print(losses)

    g = torch.Generator().manual_seed(2147483647 + 10)
    samples = []
    for _ in range(5):
        out, context = [], [0] * block_size
        while len(out) < 20:
            probs = F.softmax(model(torch.tensor([context])), dim=1)
            ix = torch.multinomial(probs, num_samples=1, generator=g).item()
            context = context[1:] + [ix]
            out.append(ix)
            if ix == 0:
                break
        samples.append("".join(itos[i] for i in out))
    print(samples)

    sampler = RandomSampler(TensorDataset(Xtr, Ytr), replacement=True, num_samples=int(1e10))
    loader = DataLoader(TensorDataset(Xtr, Ytr), sampler=sampler, batch_size=16)
    batches = iter(loader)
    xb, yb = next(batches)
    xb2, _ = next(batches)

    report(
        deterministic={"lossi": lossi, "ud_last": ud[-1], "stats": stats, "losses": losses,
                       "train_shape": list(Xtr.shape)},
        checks={"sampler_len": len(sampler) == int(1e10),
                "loader_batch": list(xb.shape) == [16, block_size] and list(yb.shape) == [16],
                "loader_in_range": int(xb2.max()) < vocab_size,
                "samples": all(len(s) > 0 for s in samples)},
    )


if __name__ == "__main__":
    main()
