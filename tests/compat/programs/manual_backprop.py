"""Backpropagation by hand, notebook style: an embedding -> linear -> batchnorm -> tanh ->
linear -> cross-entropy network written out step by step, every intermediate kept with
`.retain_grad()`, each gradient derived by hand and compared with autograd's, then the
compact forms (cross-entropy and batchnorm in one expression each) and a few training steps
that use only the hand-derived gradients (`p.data += -lr * grad`).
"""

import numpy as np
import torch
import torch.nn.functional as F
from _common import build_dataset, make_words, report


def cmp(s, dt, t, results):
    ex = torch.all(dt == t.grad).item()
    app = torch.allclose(dt, t.grad, rtol=1e-4, atol=1e-6)
    maxdiff = (dt - t.grad).abs().max().item()
    print(f"{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff}")
    results[s] = app


def main():
    words = make_words(np.random.default_rng(7), 200)
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    vocab_size = len(stoi)
    block_size, n_embd, n_hidden, n = 3, 10, 64, 32
    X, Y = build_dataset(words, stoi, block_size)

    rng = np.random.default_rng(42)

    def param(*shape, scale=1.0):
        values = rng.normal(0.0, 1.0, size=shape) * scale
        return torch.tensor(values, dtype=torch.float32, requires_grad=True)

    C = param(vocab_size, n_embd)
    W1 = param(n_embd * block_size, n_hidden, scale=(5 / 3) / ((n_embd * block_size) ** 0.5))
    b1 = param(n_hidden, scale=0.1)
    W2 = param(n_hidden, vocab_size, scale=0.1)
    b2 = param(vocab_size, scale=0.1)
    bngain = param(1, n_hidden, scale=0.1)
    bnbias = param(1, n_hidden, scale=0.1)
    with torch.no_grad():
        bngain += 1.0
    parameters = [C, W1, b1, W2, b2, bngain, bnbias]
    print(sum(p.nelement() for p in parameters))

    ix = torch.from_numpy(rng.integers(0, X.shape[0], size=n))
    Xb, Yb = X[ix], Y[ix]

    # forward pass, chunked into steps that can be backpropagated one at a time
    emb = C[Xb]
    embcat = emb.view(emb.shape[0], -1)
    hprebn = embcat @ W1 + b1
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdim=True)
    bnvar_inv = (bnvar + 1e-5)**-0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()

    for p in parameters:
        p.grad = None
    for t in [logprobs, probs, counts, counts_sum, counts_sum_inv, norm_logits, logit_maxes,
              logits, h, hpreact, bnraw, bnvar_inv, bnvar, bndiff2, bndiff, hprebn, bnmeani,
              embcat, emb]:
        t.retain_grad()
    loss.backward()
    print(f"loss {loss:.4f}")

    # the same gradients, by hand
    dlogprobs = torch.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
    dcounts += torch.ones_like(counts) * dcounts_sum
    dnorm_logits = counts * dcounts
    dlogits = dnorm_logits.clone()
    dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)
    dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes
    dh = dlogits @ W2.T
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    dhpreact = (1.0 - h**2) * dh
    dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
    dbnraw = bngain * dhpreact
    dbnbias = dhpreact.sum(0, keepdim=True)
    dbndiff = bnvar_inv * dbnraw
    dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)
    dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
    dbndiff2 = (1.0 / (n - 1)) * torch.ones_like(bndiff2) * dbnvar
    dbndiff += (2 * bndiff) * dbndiff2
    dhprebn = dbndiff.clone()
    dbnmeani = (-dbndiff).sum(0)
    dhprebn += 1.0 / n * (torch.ones_like(hprebn) * dbnmeani)
    dembcat = dhprebn @ W1.T
    dW1 = embcat.T @ dhprebn
    db1 = dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = torch.zeros_like(C)
    for k in range(Xb.shape[0]):
        for j in range(Xb.shape[1]):
            dC[Xb[k, j]] += demb[k, j]

    results = {}
    for name, d, t in [("logprobs", dlogprobs, logprobs), ("probs", dprobs, probs),
                       ("counts_sum_inv", dcounts_sum_inv, counts_sum_inv),
                       ("counts_sum", dcounts_sum, counts_sum), ("counts", dcounts, counts),
                       ("norm_logits", dnorm_logits, norm_logits),
                       ("logit_maxes", dlogit_maxes, logit_maxes), ("logits", dlogits, logits),
                       ("h", dh, h), ("W2", dW2, W2), ("b2", db2, b2),
                       ("hpreact", dhpreact, hpreact), ("bngain", dbngain, bngain),
                       ("bnbias", dbnbias, bnbias), ("bnraw", dbnraw, bnraw),
                       ("bnvar_inv", dbnvar_inv, bnvar_inv), ("bnvar", dbnvar, bnvar),
                       ("bndiff2", dbndiff2, bndiff2), ("bndiff", dbndiff, bndiff),
                       ("bnmeani", dbnmeani, bnmeani), ("hprebn", dhprebn, hprebn),
                       ("embcat", dembcat, embcat), ("W1", dW1, W1), ("b1", db1, b1),
                       ("emb", demb, emb), ("C", dC, C)]:
        cmp(name, d, t, results)

    # the compact forms: cross-entropy and batchnorm backward in one expression each
    loss_fast = F.cross_entropy(logits, Yb)
    dlogits_fast = F.softmax(logits, 1)
    dlogits_fast[range(n), Yb] -= 1
    dlogits_fast /= n
    cmp("logits_fast", dlogits_fast, logits, results)
    dhprebn_fast = bngain * bnvar_inv / n * (
        n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    cmp("hprebn_fast", dhprebn_fast, hprebn, results)

    # training with the hand-derived gradients only
    losses = []
    with torch.no_grad():
        for _ in range(20):
            ix = torch.from_numpy(rng.integers(0, X.shape[0], size=n))
            Xb, Yb = X[ix], Y[ix]
            embcat = C[Xb].view(n, -1)
            hprebn = embcat @ W1 + b1
            bnmean = hprebn.mean(0, keepdim=True)
            bnvar = hprebn.var(0, keepdim=True, unbiased=True)
            bnvar_inv = (bnvar + 1e-5)**-0.5
            bnraw = (hprebn - bnmean) * bnvar_inv
            h = torch.tanh(bngain * bnraw + bnbias)
            logits = h @ W2 + b2
            step_loss = F.cross_entropy(logits, Yb)
            dlogits = F.softmax(logits, 1)
            dlogits[range(n), Yb] -= 1
            dlogits /= n
            dh = dlogits @ W2.T
            dhpreact = (1.0 - h**2) * dh
            dhprebn = bngain * bnvar_inv / n * (
                n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
            demb = (dhprebn @ W1.T).view(n, block_size, n_embd)
            dC = torch.zeros_like(C)
            dC.index_add_(0, Xb.view(-1), demb.view(-1, n_embd))
            grads = [dC, embcat.T @ dhprebn, dhprebn.sum(0), h.T @ dlogits, dlogits.sum(0),
                     (bnraw * dhpreact).sum(0, keepdim=True), dhpreact.sum(0, keepdim=True)]
            for p, grad in zip(parameters, grads):
                p.data += -0.1 * grad
            losses.append(step_loss.item())

    report(
        deterministic={"loss": loss.item(), "loss_fast": loss_fast.item(), "losses": losses,
                       "nparams": sum(p.nelement() for p in parameters)},
        checks={f"grad_{k}": v for k, v in results.items()},
    )


if __name__ == "__main__":
    main()
