"""The benchmark workloads, each in three versions: smolgrad, PyTorch, hand-written NumPy.

All three versions of a workload start from the same weights and see the same data, so
their losses agree; `make_<workload>(lib, size)` returns a `step()` callable that runs one
training step (forward, backward, update) and returns the loss as a float.

The NumPy versions are the "no-framework limit": the same arithmetic written out by hand,
forward and backward, with no graph and no Python objects per op.
"""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------
# Shared data and weights
# ---------------------------------------------------------------------------------------


def two_waves(n: int = 400, seed: int = 0):
    """Two noisy waves in the plane: class 0 along sin, class 1 along cos."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-math.pi, math.pi, n)
    label = (np.arange(n) % 2).astype(np.float32)
    y = np.where(label == 0, np.sin(t), np.cos(t)) + rng.normal(0, 0.1, n)
    x = np.stack([t / math.pi, y], axis=1).astype(np.float32)
    return x, label.reshape(-1, 1)


def linear_weights(sizes, seed=0):
    """PyTorch-style init for a stack of Linear layers: (weight (out, in), bias (out,))."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return params


def load_into(model, arrays, lib):
    """Copy arrays into a model's parameters in registration order."""
    params = list(model.parameters())
    assert len(params) == len(arrays), (len(params), len(arrays))
    with lib.no_grad():
        for p, a in zip(params, arrays):
            p.copy_(lib.tensor(a))


def _mlp(lib, sizes, acts):
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(lib.nn.Linear(fan_in, fan_out))
        if acts[i] is not None:
            layers.append(acts[i]())
    return lib.nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------
# W1: MLP 2-5-10-1 on two waves, BCE, SGD lr 0.009, full batch
# ---------------------------------------------------------------------------------------

W1_SIZES = [2, 5, 10, 1]


def _np_mlp3_step(w, x, lr, loss_and_grad):
    """One SGD step of Linear-ReLU-Linear-ReLU-Linear by hand; `loss_and_grad(z)` gives the
    loss of the last layer's output z and dL/dz. Updates the weights `w` in place."""
    W1, b1, W2, b2, W3, b3 = w
    a1 = x @ W1.T
    a1 += b1
    np.maximum(a1, 0, out=a1)                 # relu in place; a1 > 0 is its mask
    a2 = a1 @ W2.T
    a2 += b2
    np.maximum(a2, 0, out=a2)
    z = a2 @ W3.T
    z += b3
    loss, dz = loss_and_grad(z)
    dW3, db3 = dz.T @ a2, dz.sum(0)
    dh2 = dz @ W3
    dh2 *= a2 > 0
    dW2, db2 = dh2.T @ a1, dh2.sum(0)
    dh1 = dh2 @ W2
    dh1 *= a1 > 0
    dW1, db1 = dh1.T @ x, dh1.sum(0)
    for p, g in zip(w, (dW1, db1, dW2, db2, dW3, db3)):
        g *= lr                               # the update in place, no temporaries
        p -= g
    return float(loss)


def _np_bce_with_sigmoid(z, y):
    """Mean binary cross-entropy of sigmoid(z) against y (logs clamped at -100, as PyTorch)
    and its gradient with respect to z."""
    p = 1 / (1 + np.exp(-z))
    loss = -np.mean(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
    return loss, (p - y) / len(z)


def make_w1(lib, size):
    x_np, y_np = two_waves(size["samples"])
    weights = linear_weights(W1_SIZES)
    lr = 0.009
    if lib == "numpy":
        w = [a.copy() for a in weights]

        def step():
            return _np_mlp3_step(w, x_np, lr, lambda z: _np_bce_with_sigmoid(z, y_np))

        return step
    model = _mlp(lib, W1_SIZES, [lib.nn.ReLU, lib.nn.ReLU, lib.nn.Sigmoid])
    load_into(model, weights, lib)
    opt = lib.optim.SGD(model.parameters(), lr=lr)
    x, y = lib.tensor(x_np), lib.tensor(y_np)
    bce = lib.nn.functional.binary_cross_entropy

    def step():
        opt.zero_grad()
        loss = bce(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# ---------------------------------------------------------------------------------------
# W2: MLP 784-512-512-10 ReLU, cross-entropy, SGD, batch 128
# ---------------------------------------------------------------------------------------

W2_SIZES = [784, 512, 512, 10]


def _classification_batch(batch, features, classes, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch,) + features).astype(np.float32),
            rng.integers(0, classes, batch))


def _np_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(1, keepdims=True)
    e = np.exp(shifted)
    probs = e / e.sum(1, keepdims=True)
    n = len(labels)
    loss = -np.mean(np.log(probs[np.arange(n), labels]))
    probs[np.arange(n), labels] -= 1
    return loss, probs / n


def make_w2(lib, size):
    x_np, y_np = _classification_batch(size["batch"], (784,), 10)
    weights = linear_weights(W2_SIZES)
    lr = 0.01
    if lib == "numpy":
        w = [a.copy() for a in weights]

        def step():
            return _np_mlp3_step(w, x_np, lr, lambda z: _np_cross_entropy(z, y_np))

        return step
    model = _mlp(lib, W2_SIZES, [lib.nn.ReLU, lib.nn.ReLU, None])
    load_into(model, weights, lib)
    opt = lib.optim.SGD(model.parameters(), lr=lr)
    x, y = lib.tensor(x_np), lib.tensor(y_np)

    def step():
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# ---------------------------------------------------------------------------------------
# W3: a chain of elementwise ops (x 1.0001, + 0.001, tanh) on 16x16, sum, backward
# ---------------------------------------------------------------------------------------


def make_w3(lib, size):
    n_ops = size["ops"]
    x_np = np.random.default_rng(2).standard_normal((16, 16)).astype(np.float32)
    if lib == "numpy":

        def step():
            y, outs = x_np, []
            for i in range(n_ops):
                k = i % 3
                y = y * np.float32(1.0001) if k == 0 else (
                    y + np.float32(0.001) if k == 1 else np.tanh(y))
                outs.append(y)
            g = np.ones_like(y)
            for i in reversed(range(n_ops)):
                k = i % 3
                if k == 0:
                    g = g * np.float32(1.0001)
                elif k == 2:
                    g = g * (1 - outs[i] * outs[i])
            return float(y.sum())

        return step

    def step():
        x = lib.tensor(x_np, requires_grad=True)
        y = x
        for i in range(n_ops):
            k = i % 3
            y = y * 1.0001 if k == 0 else (y + 0.001 if k == 1 else y.tanh())
        loss = y.sum()
        loss.backward()
        return loss.item()

    return step


# ---------------------------------------------------------------------------------------
# W4: a chain of N multiplications on a 1-element tensor: build + backward
# ---------------------------------------------------------------------------------------


def make_w4(lib, size):
    n = size["n"]
    if lib == "numpy":

        def step():
            y, outs = np.ones(1, np.float32), []
            for _ in range(n):
                outs.append(y)
                y = y * np.float32(1.0)
            g = np.ones(1, np.float32)
            for _ in reversed(outs):
                g = g * np.float32(1.0)
            return float(y[0])

        return step

    def step():
        x = lib.ones(1, requires_grad=True)
        y = x
        for _ in range(n):
            y = y * 1.0
        y.sum().backward()
        return float(x.grad[0])

    return step


# ---------------------------------------------------------------------------------------
# W5: a small GPT (2 blocks, d_model 128, 4 heads, T 64, batch 16, vocab 65), AdamW
# ---------------------------------------------------------------------------------------


def _gpt_module(lib, vocab, d, heads, layers, block):
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.fc = nn.Linear(d, 4 * d)
            self.out = nn.Linear(4 * d, d)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
            q, k, v = (z.reshape(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(block, d)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(t, device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln(x))

    return GPT()


def make_w5(lib, size):
    vocab, d, heads, layers, t, b = 65, size["d"], 4, 2, size["T"], size["batch"]
    rng = np.random.default_rng(3)
    idx_np = rng.integers(0, vocab, (b, t))
    tgt_np = rng.integers(0, vocab, (b, t))
    if lib == "numpy":
        return _numpy_gpt_step(_gpt_module_weights(vocab, d, layers, t), idx_np, tgt_np,
                               heads, layers)
    lib.manual_seed(0)
    model = _gpt_module(lib, vocab, d, heads, layers, t)
    reference = _gpt_module_weights(vocab, d, layers, t)
    sd = model.state_dict()
    model.load_state_dict({k: lib.tensor(reference[k]) for k in sd})
    opt = lib.optim.AdamW(model.parameters(), lr=3e-4)
    idx, tgt = lib.tensor(idx_np), lib.tensor(tgt_np)

    def step():
        opt.zero_grad()
        logits = model(idx)
        loss = lib.nn.functional.cross_entropy(logits.reshape(-1, vocab), tgt.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _np_layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    inv = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xhat = xc * inv
    return xhat * g + b, (xhat, inv, g)


def _np_layer_norm_backward(dy, cache):
    xhat, inv, g = cache
    dxhat = dy * g
    dx = inv * (dxhat - dxhat.mean(-1, keepdims=True)
                - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).reshape(-1, xhat.shape[-1]).sum(0), dy.reshape(-1, dy.shape[-1]).sum(0)


def _np_linear_backward(dy, x, w):
    """y = x @ w.T + b: returns dx, dw, db (batch and time axes flattened)."""
    dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])
    return dy @ w, dy2.T @ x2, dy2.sum(0)


_GELU_C = math.sqrt(2 / math.pi)


def _numpy_gpt_step(weights, idx, tgt, heads, layers):
    """The W5 GPT written out by hand: forward, backward and AdamW (PyTorch's defaults)."""
    w = {k: v.copy() for k, v in weights.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v2 = {k: np.zeros_like(v) for k, v in w.items()}
    lr, beta1, beta2, eps, wd = 3e-4, 0.9, 0.999, 1e-8, 0.01
    state = {"t": 0}
    b, t = idx.shape
    causal = np.where(np.triu(np.ones((t, t), bool), 1), -np.inf, 0).astype(np.float32)

    def step():
        grads = {k: np.zeros_like(v) for k, v in w.items()}
        x = w["tok.weight"][idx] + w["pos.weight"][:t]
        caches = []
        for i in range(layers):
            p = f"blocks.{i}."
            d = x.shape[-1]
            hd = d // heads
            h1, ln1 = _np_layer_norm(x, w[p + "ln1.weight"], w[p + "ln1.bias"])
            qkv = h1 @ w[p + "qkv.weight"].T + w[p + "qkv.bias"]
            q, k, vv = (z.reshape(b, t, heads, hd).transpose(0, 2, 1, 3)
                        for z in np.split(qkv, 3, axis=-1))
            scale = 1 / math.sqrt(hd)
            s = q @ k.transpose(0, 1, 3, 2)
            s *= scale
            s += causal                        # 0 on and below the diagonal, -inf above
            s -= s.max(-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(-1, keepdims=True)
            att = s
            y = (att @ vv).transpose(0, 2, 1, 3).reshape(b, t, d)
            x1 = x + y @ w[p + "proj.weight"].T + w[p + "proj.bias"]
            h2, ln2 = _np_layer_norm(x1, w[p + "ln2.weight"], w[p + "ln2.bias"])
            f = h2 @ w[p + "fc.weight"].T + w[p + "fc.bias"]
            th = np.tanh(_GELU_C * (f + 0.044715 * f ** 3))
            gelu = 0.5 * f * (1 + th)
            x2 = x1 + gelu @ w[p + "out.weight"].T + w[p + "out.bias"]
            caches.append((x, h1, ln1, q, k, vv, att, y, x1, h2, ln2, f, th, gelu, scale))
            x = x2
        hf, lnf = _np_layer_norm(x, w["ln.weight"], w["ln.bias"])
        logits = hf @ w["head.weight"].T
        loss, dlogits = _np_cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                          tgt.reshape(-1))
        dlogits = dlogits.reshape(logits.shape)
        dhf, grads["head.weight"], _ = _np_linear_backward(dlogits, hf, w["head.weight"])
        dx, grads["ln.weight"], grads["ln.bias"] = _np_layer_norm_backward(dhf, lnf)
        for i in reversed(range(layers)):
            p = f"blocks.{i}."
            x0, h1, ln1, q, k, vv, att, y, x1, h2, ln2, f, th, gelu, scale = caches[i]
            d = x0.shape[-1]
            dgelu, grads[p + "out.weight"], grads[p + "out.bias"] = _np_linear_backward(
                dx, gelu, w[p + "out.weight"])
            df = dgelu * (0.5 * (1 + th) + 0.5 * f * (1 - th * th) * _GELU_C
                          * (1 + 3 * 0.044715 * f * f))
            dh2, grads[p + "fc.weight"], grads[p + "fc.bias"] = _np_linear_backward(
                df, h2, w[p + "fc.weight"])
            dln2, grads[p + "ln2.weight"], grads[p + "ln2.bias"] = _np_layer_norm_backward(
                dh2, ln2)
            dx1 = dx + dln2
            dy, grads[p + "proj.weight"], grads[p + "proj.bias"] = _np_linear_backward(
                dx1, y, w[p + "proj.weight"])
            dyh = dy.reshape(b, t, heads, -1).transpose(0, 2, 1, 3)
            datt = dyh @ vv.transpose(0, 1, 3, 2)
            dv = att.transpose(0, 1, 3, 2) @ dyh
            ds = att * (datt - (datt * att).sum(-1, keepdims=True)) * scale
            dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
            dqkv = np.concatenate([z.transpose(0, 2, 1, 3).reshape(b, t, d)
                                   for z in (dq, dk, dv)], axis=-1)
            dh1, grads[p + "qkv.weight"], grads[p + "qkv.bias"] = _np_linear_backward(
                dqkv, h1, w[p + "qkv.weight"])
            dln1, grads[p + "ln1.weight"], grads[p + "ln1.bias"] = _np_layer_norm_backward(
                dh1, ln1)
            dx = dx1 + dln1
        np.add.at(grads["tok.weight"], idx, dx)
        grads["pos.weight"][:t] += dx.sum(0)
        state["t"] += 1
        c1, c2 = 1 - beta1 ** state["t"], 1 - beta2 ** state["t"]
        for key, g in grads.items():           # AdamW, in place
            w[key] *= 1 - lr * wd
            m[key] *= beta1
            m[key] += (1 - beta1) * g
            g *= g
            v2[key] *= beta2
            v2[key] += (1 - beta2) * g
            denom = v2[key] / c2
            np.sqrt(denom, out=denom)
            denom += eps
            np.divide(m[key], denom, out=denom)
            denom *= lr / c1
            w[key] -= denom
        return float(loss)

    return step


def _gpt_module_weights(vocab, d, layers, block):
    """Deterministic weights for the W5 GPT, keyed like its state_dict."""
    rng = np.random.default_rng(4)
    w = {"tok.weight": rng.normal(0, 0.02, (vocab, d)), "pos.weight": rng.normal(0, 0.02,
                                                                                  (block, d)),
         "ln.weight": np.ones(d), "ln.bias": np.zeros(d),
         "head.weight": rng.normal(0, 0.02, (vocab, d))}
    for i in range(layers):
        p = f"blocks.{i}."
        for name, shape in (("qkv", (3 * d, d)), ("proj", (d, d)), ("fc", (4 * d, d)),
                            ("out", (d, 4 * d))):
            w[p + name + ".weight"] = rng.normal(0, 0.02, shape)
            w[p + name + ".bias"] = np.zeros(shape[0])
        for ln in ("ln1", "ln2"):
            w[p + ln + ".weight"] = np.ones(d)
            w[p + ln + ".bias"] = np.zeros(d)
    return {k: v.astype(np.float32) for k, v in w.items()}


# ---------------------------------------------------------------------------------------
# W6: CNN on 64x1x28x28: conv3x3(1->16)+ReLU+maxpool2, conv3x3(16->32)+ReLU+maxpool2,
#     linear -> 10, cross-entropy, SGD
# ---------------------------------------------------------------------------------------


def _cnn_weights(seed=5):
    rng = np.random.default_rng(seed)

    def uni(shape, fan_in):
        b = 1 / math.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)

    return [uni((16, 1, 3, 3), 9), uni((16,), 9), uni((32, 16, 3, 3), 144), uni((32,), 144),
            uni((10, 800), 800), uni((10,), 800)]


def _np_conv(x, w, b):
    """Valid 3x3 convolution, channels-first layout: x (C, N, H, W), w (O, C, 3, 3), b (O,)
    -> y (O, N, H-2, W-2) and the im2col matrix (C·9, N·Ho·Wo), kept for the weight
    gradient. One copy (im2col, read along image rows) and one BLAS product for the whole
    batch; the bias is added in place."""
    c, n, h, wd = x.shape
    ho, wo = h - 2, wd - 2
    cols = np.empty((c, 3, 3, n, ho, wo), np.float32)
    for i in range(3):
        for j in range(3):
            cols[:, i, j] = x[:, :, i:i + ho, j:j + wo]
    cols = cols.reshape(c * 9, n * ho * wo)
    y = w.reshape(len(w), -1) @ cols
    y += b[:, None]
    return y.reshape(len(w), n, ho, wo), cols


def _np_conv_backward(dy, cols, w, x_shape):
    """Gradients of _np_conv: dy (O, N, Ho, Wo) -> dx (C, N, H, W) or None when x_shape is
    None, dw, db. dx is col2im of wᵀ·dy: nine slice-adds of contiguous blocks."""
    o = len(w)
    dy2 = dy.reshape(o, -1)
    dw = (dy2 @ cols.T).reshape(w.shape)
    db = dy2.sum(1)
    if x_shape is None:
        return None, dw, db
    c, n, ho, wo = w.shape[1], dy.shape[1], dy.shape[2], dy.shape[3]
    dcols = (w.reshape(o, -1).T @ dy2).reshape(c, 3, 3, n, ho, wo)
    dx = np.zeros(x_shape, np.float32)
    for i in range(3):
        for j in range(3):
            dx[:, :, i:i + ho, j:j + wo] += dcols[:, i, j]
    return dx, dw, db


def _np_relu_maxpool(h):
    """relu then 2x2 max pool (floor) of h (C, N, H, W), relu in place: returns the pooled
    (C, N, H/2, W/2) and the four strided views of relu(h), one per window position."""
    np.maximum(h, 0, out=h)
    h2, w2 = h.shape[2] // 2, h.shape[3] // 2
    v = h[:, :, :h2 * 2, :w2 * 2].reshape(h.shape[0], h.shape[1], h2, 2, w2, 2)
    views = [v[:, :, :, i, :, j] for i in (0, 1) for j in (0, 1)]
    out = np.maximum(np.maximum(views[0], views[1]), np.maximum(views[2], views[3]))
    return out, views


def _np_relu_maxpool_backward(dout, out, views, h_shape):
    """Gradient through the pool and the relu: dout goes to the position holding the max,
    masked by relu (a window whose max is 0 sends nothing). Ties between positive values,
    where PyTorch picks one position, do not occur with continuous data."""
    dpos = dout * (out > 0)
    dh = np.zeros(h_shape, np.float32)
    h2, w2 = out.shape[2:]
    dv = dh[:, :, :h2 * 2, :w2 * 2].reshape(h_shape[0], h_shape[1], h2, 2, w2, 2)
    for k, view in enumerate(views):
        np.multiply(dpos, view == out, out=dv[:, :, :, k // 2, :, k % 2])
    return dh


def make_w6(lib, size):
    x_np, y_np = _classification_batch(size["batch"], (1, 28, 28), 10, seed=6)
    weights = _cnn_weights()
    lr = 0.01
    if lib == "numpy":
        w = [a.copy() for a in weights]
        x_cn = np.ascontiguousarray(x_np.transpose(1, 0, 2, 3))   # (C, N, H, W) throughout

        def step():
            c1w, c1b, c2w, c2b, lw, lb = w
            n = len(x_np)
            h1, cols1 = _np_conv(x_cn, c1w, c1b)
            p1, views1 = _np_relu_maxpool(h1)
            h2, cols2 = _np_conv(p1, c2w, c2b)
            p2, views2 = _np_relu_maxpool(h2)
            flat = p2.transpose(1, 0, 2, 3).reshape(n, -1)
            logits = flat @ lw.T
            logits += lb
            loss, dz = _np_cross_entropy(logits, y_np)
            dlw, dlb = dz.T @ flat, dz.sum(0)
            c2, _, ph, pw = p2.shape
            dp2 = (dz @ lw).reshape(n, c2, ph, pw).transpose(1, 0, 2, 3)   # (C, N, 5, 5)
            dh2 = _np_relu_maxpool_backward(dp2, p2, views2, h2.shape)
            dp1, dc2w, dc2b = _np_conv_backward(dh2, cols2, c2w, p1.shape)
            dh1 = _np_relu_maxpool_backward(dp1, p1, views1, h1.shape)
            _, dc1w, dc1b = _np_conv_backward(dh1, cols1, c1w, None)
            for p_, g in zip(w, (dc1w, dc1b, dc2w, dc2b, dlw, dlb)):
                g *= lr
                p_ -= g
            return float(loss)

        return step
    nn = lib.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(800, 10))
    load_into(model, weights, lib)
    opt = lib.optim.SGD(model.parameters(), lr=lr)
    x, y = lib.tensor(x_np), lib.tensor(y_np)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


WORKLOADS = {
    "W1": (make_w1, {"samples": 400, "epochs": 450}, {"samples": 40, "epochs": 3}),
    "W2": (make_w2, {"batch": 128}, {"batch": 8}),
    "W3": (make_w3, {"ops": 200}, {"ops": 9}),
    "W4": (make_w4, {"n": 100_000}, {"n": 10}),
    "W5": (make_w5, {"d": 128, "T": 64, "batch": 16}, {"d": 16, "T": 8, "batch": 2}),
    "W6": (make_w6, {"batch": 64}, {"batch": 2}),
}
