"""The bigram language model of the first lecture notebooks, both ways: counts in a 2-d
tensor (`N[ix1, ix2] += 1`, smoothed, rows normalised with keepdims=True, sampled with
torch.multinomial and a torch.Generator), then the same table learned by gradient descent
on one-hot inputs with a hand-written update `W.data += -lr * W.grad`, and a tiny
micrograd-style neuron checked against its hand-derived gradient.
"""

import numpy as np
import torch
import torch.nn.functional as F
from _common import report

NAMES = ["anna", "bella", "cora", "dora", "ella", "emma", "nora", "ola", "mia", "lena",
         "ada", "ida", "lola", "mara", "nina", "rosa", "vera", "zora", "alba", "abel"]


def main():
    chars = sorted(set("".join(NAMES)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}
    V = len(stoi)

    # --- counting
    N = torch.zeros((V, V), dtype=torch.int32)
    for w in NAMES:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            N[stoi[ch1], stoi[ch2]] += 1
    P = (N + 1).float()
    P /= P.sum(1, keepdims=True)
    print(P[0].sum(), N.dtype, P.shape)

    g = torch.Generator().manual_seed(2147483647)
    names_out = []
    for _ in range(5):
        out, ix = [], 0
        while True:
            p = P[ix]
            ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
            out.append(itos[ix])
            if ix == 0:
                break
        names_out.append("".join(out))
    print(names_out)
    draws = torch.multinomial(P[0], num_samples=4000, replacement=True, generator=g)
    freq = torch.bincount(draws, minlength=V).float() / 4000

    log_likelihood, n = 0.0, 0
    for w in NAMES:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            log_likelihood += torch.log(P[stoi[ch1], stoi[ch2]])
            n += 1
    nll = -log_likelihood
    print(f"{log_likelihood=}")
    print(f"{nll/n}")

    # --- the same model by gradient descent
    xs, ys = [], []
    for w in NAMES:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            xs.append(stoi[ch1])
            ys.append(stoi[ch2])
    xs, ys = torch.tensor(xs), torch.tensor(ys)
    num = xs.nelement()
    W = torch.tensor(np.random.default_rng(0).normal(size=(V, V)), dtype=torch.float32,
                     requires_grad=True)
    losses = []
    for _ in range(40):
        xenc = F.one_hot(xs, num_classes=V).float()
        logits = xenc @ W
        counts = logits.exp()
        probs = counts / counts.sum(1, keepdims=True)
        loss = -probs[torch.arange(num), ys].log().mean() + 0.01 * (W**2).mean()
        W.grad = None
        loss.backward()
        W.data += -10 * W.grad
        losses.append(loss.item())
    print(f"loss {loss.item():.4f}")

    # --- a neuron, micrograd style: o = tanh(x1 w1 + x2 w2 + b)
    x1 = torch.Tensor([2.0]).double()
    x1.requires_grad = True
    x2 = torch.Tensor([0.0]).double()
    x2.requires_grad = True
    w1 = torch.Tensor([-3.0]).double()
    w1.requires_grad = True
    w2 = torch.Tensor([1.0]).double()
    w2.requires_grad = True
    b = torch.Tensor([6.8813735870195432]).double()
    b.requires_grad = True
    nn_ = x1 * w1 + x2 * w2 + b
    o = torch.tanh(nn_)
    print(o.data.item())
    o.backward()
    do_dn = 1 - o.data.item() ** 2
    print("x2", x2.grad.item(), "w2", w2.grad.item(), "x1", x1.grad.item(),
          "w1", w1.grad.item())

    report(
        deterministic={"P_row0": P[0].tolist(), "nll": (nll / n).item(), "losses": losses,
                       "o": o.item(), "grads": [x1.grad.item(), w1.grad.item(),
                                                x2.grad.item(), w2.grad.item()],
                       "dtype": str(P.dtype).split(".")[-1],
                       "N_dtype": str(N.dtype).split(".")[-1]},
        statistical={"freq_row0": freq.tolist()},
        checks={"names_end_with_dot": all(s.endswith(".") for s in names_out),
                "hand_grad_w1": abs(w1.grad.item() - do_dn * x1.item()) < 1e-12,
                "data_is_tensor": isinstance(W.data, torch.Tensor),
                "loss_went_down": losses[-1] < losses[0]},
    )


if __name__ == "__main__":
    main()
