"""smolgrad.nn.functional (everything but convolutions and losses) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from oracle import Arr, assert_close, check_op

import smolgrad as sg
import smolgrad.nn.functional as F


def _fns(name, **kw):
    """The same call for smolgrad (F.name) and PyTorch (TF.name), with keyword arguments."""
    return (lambda *a: getattr(F, name)(*a, **kw)), (lambda *a: getattr(TF, name)(*a, **kw))


def test_functional_is_reachable_from_the_package():
    import smolgrad.nn

    assert smolgrad.nn.functional is F
    assert sg.nn.functional is F


# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------

ACTIVATIONS = [
    ("relu", {}), ("gelu", {}), ("gelu", dict(approximate="tanh")), ("silu", {}),
    ("leaky_relu", {}), ("leaky_relu", dict(negative_slope=0.2)), ("elu", {}),
    ("elu", dict(alpha=0.5)), ("softplus", {}), ("softplus", dict(beta=2.0, threshold=3.0)),
    ("softplus", dict(beta=0.5)), ("tanh", {}), ("sigmoid", {}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=str)
def test_activation(name, kw, device):
    fn, tfn = _fns(name, **kw)
    check_op(fn, (3, 7), device=device, torch_fn=tfn, low=-4, high=4)


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=str)
def test_activation_large_inputs_stay_finite(name, kw, device):
    """No overflow (inf or NaN) in values or gradients for |x| up to 1e4."""
    x = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], np.float32)
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    fn, tfn = _fns(name, **kw)
    ys, yt = fn(xs), tfn(xt)
    ys.sum().backward()
    yt.sum().backward()
    assert_close(ys, yt)
    assert_close(xs.grad, xt.grad)
    assert np.isfinite(xs.grad.numpy()).all()


@pytest.mark.parametrize("name", ["relu", "silu", "leaky_relu", "elu"])
def test_activation_inplace(name, device):
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    xs = sg.tensor(x, device=device)
    out = getattr(F, name)(xs, inplace=True)
    assert out is xs
    assert_close(xs, getattr(TF, name)(torch.tensor(x)))


def test_activation_gradients_at_zero(device):
    """Kinks at 0 follow PyTorch's choices (relu' = 0, leaky' = slope, softplus' = ½)."""
    for name in ("relu", "leaky_relu", "elu", "softplus", "silu", "gelu"):
        xs = sg.zeros(3, device=device, requires_grad=True)
        xt = torch.zeros(3, requires_grad=True)
        getattr(F, name)(xs).sum().backward()
        getattr(TF, name)(xt).sum().backward()
        assert_close(xs.grad, xt.grad, what=name)


def test_gelu_bad_approximate():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        F.gelu(sg.zeros(2), approximate="fast")


def test_gelu_double_backward():
    x = sg.tensor(np.linspace(-3, 3, 7), requires_grad=True)
    assert sg.autograd.gradgradcheck(lambda a: F.gelu(a), (x,))
    assert sg.autograd.gradgradcheck(lambda a: F.gelu(a, approximate="tanh"), (x,))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((4, 6), -1), ((4, 6), 0), ((2, 3, 5), 1),
                                       ((2, 3, 5), None), ((2, 3), None), ((5,), None)],
                         ids=str)
def test_softmax(name, shape, dim, device):
    fn, tfn = _fns(name, dim=dim)
    check_op(fn, shape, device=device, torch_fn=tfn)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_stable_for_huge_logits(name, device):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3e4, 3e4, -3e4]], np.float32)
    xs = sg.tensor(x, device=device, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ys, yt = getattr(F, name)(xs, dim=1), getattr(TF, name)(xt, dim=1)
    assert np.isfinite(ys.detach().numpy()).all()
    assert_close(ys, yt)
    up = np.arange(9, dtype=np.float32).reshape(3, 3)
    (ys * sg.tensor(up, device=device)).sum().backward()
    (yt * torch.tensor(up)).sum().backward()
    assert_close(xs.grad, xt.grad)


# ---------------------------------------------------------------------------------------
# Linear, embedding, one_hot, pad
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape,w_shape,bias", [((4, 3), (5, 3), True), ((2, 3, 4), (6, 4),
                                                   False), ((3,), (2, 3), True),
                                                  ((2, 5), (5,), False)], ids=str)
def test_linear(x_shape, w_shape, bias, device):
    specs = (x_shape, w_shape) + (((w_shape[0],),) if bias else ())
    check_op(F.linear, *specs, device=device, torch_fn=TF.linear)


def test_linear_shape_error_names_shapes():
    with pytest.raises(RuntimeError, match=r"linear: input of shape \(4, 3\) does not match "
                                           r"weight of shape \(5, 2\)"):
        F.linear(sg.zeros(4, 3), sg.zeros(5, 2))


def test_embedding(device):
    idx = Arr(np.array([[0, 3, 3], [4, 1, 0]]))
    check_op(lambda i, w: F.embedding(i, w), idx, (5, 4), device=device,
             torch_fn=lambda i, w: TF.embedding(i, w))


def test_embedding_padding_idx(device):
    """Row 2's values are used but get no gradient (so finite differences would disagree)."""
    idx = Arr(np.array([[0, 2, 2], [4, 2, 1]]))
    check_op(lambda i, w: F.embedding(i, w, padding_idx=2), idx, (5, 3), device=device,
             torch_fn=lambda i, w: TF.embedding(i, w, padding_idx=2), gradcheck=False)


def test_embedding_max_norm_renormalises_in_place(device):
    w = np.random.default_rng(0).uniform(-2, 2, (6, 4)).astype(np.float32)
    idx = np.array([1, 3, 3, 5])
    ws, wt = sg.tensor(w, device=device), torch.tensor(w)
    out = F.embedding(sg.tensor(idx, device=device), ws, max_norm=1.0)
    t_out = TF.embedding(torch.tensor(idx), wt, max_norm=1.0)
    assert_close(out, t_out)
    assert_close(ws, wt)  # rows 1, 3, 5 shrunk in place, the others untouched


def test_embedding_errors():
    w = sg.zeros(5, 3)
    with pytest.raises(IndexError, match="embedding: index 7 is out of range .* 5 embeddings"):
        F.embedding(sg.tensor([1, 7]), w)
    with pytest.raises(RuntimeError, match="indices must be an integer tensor"):
        F.embedding(sg.tensor([1.0]), w)
    with pytest.raises(NotImplementedError, match="scale_grad_by_freq"):
        F.embedding(sg.tensor([1]), w, scale_grad_by_freq=True)


@pytest.mark.parametrize("num_classes", [-1, 6])
def test_one_hot(num_classes, device):
    t = np.array([[0, 3], [2, 1]])
    out = F.one_hot(sg.tensor(t, device=device), num_classes)
    expected = TF.one_hot(torch.tensor(t), num_classes)
    assert out.dtype == sg.int64
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match=r"one_hot: class values must be in \[0, 3\), got 5"):
        F.one_hot(sg.tensor([0, 5]), 3)
    with pytest.raises(RuntimeError, match="integer"):
        F.one_hot(sg.tensor([0.0, 1.0]))


PAD_CASES = [
    ((2, 3, 4), (1, 2), "constant", 0.0),
    ((2, 3, 4), (1, 2, 0, 1), "constant", 1.5),
    ((2, 3, 4), (-1, 1), "constant", 0.0),
    ((2, 3, 5), (2, 3), "reflect", None),
    ((1, 2, 4, 5), (1, 2, 3, 1), "reflect", None),
    ((1, 2, 4, 5), (2, 1, 0, 3), "replicate", None),
    ((1, 2, 4, 5), (2, 1, 3, 0), "circular", None),
]


@pytest.mark.parametrize("shape,widths,mode,value", PAD_CASES, ids=str)
def test_pad(shape, widths, mode, value, device):
    fn, tfn = _fns("pad", pad=widths, mode=mode, value=value)
    check_op(fn, shape, device=device, torch_fn=tfn)


def test_pad_errors():
    with pytest.raises(ValueError, match="too large for reflect"):
        F.pad(sg.zeros(1, 1, 3), (3, 0), mode="reflect")
    with pytest.raises(NotImplementedError, match="mode 'wrap'"):
        F.pad(sg.zeros(1, 1, 3), (1, 1), mode="wrap")


# ---------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------


def test_dropout_statistics_and_scaling(device):
    sg.manual_seed(1)
    x = sg.ones(200, 500, device=device, requires_grad=True)
    p = 0.3
    y = F.dropout(x, p)
    values = y.detach().numpy()
    kept = values != 0
    # kept elements are exactly 1 / (1 - p); the kept fraction is 1 - p within 4 sigma
    np.testing.assert_allclose(values[kept], 1.0 / (1.0 - p), rtol=1e-6)
    n = values.size
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    # the gradient uses the same mask and scale
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)
    # different calls draw different masks
    assert (F.dropout(x, p).detach().numpy() != values).any()


def test_dropout_identity_cases(device):
    x = sg.randn(4, 5, device=device)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


def test_dropout_is_seeded(device):
    sg.manual_seed(5)
    a = F.dropout(sg.ones(50, device=device), 0.5).numpy()
    sg.manual_seed(5)
    b = F.dropout(sg.ones(50, device=device), 0.5).numpy()
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,normalized,affine", [((4, 7), (7,), True),
                                                     ((2, 3, 5), (3, 5), True),
                                                     ((2, 3, 5), 5, False),
                                                     ((6,), (6,), True)], ids=str)
def test_layer_norm(shape, normalized, affine, device):
    norm_shape = (normalized,) if isinstance(normalized, int) else normalized
    specs = (shape,) + ((norm_shape, norm_shape) if affine else ())

    def fn(lib):  # torch's functional form wants a tuple; smolgrad also takes an int
        shape_arg = normalized if lib is F else norm_shape
        return lambda x, *wb: lib.layer_norm(x, shape_arg, *wb, eps=1e-5)

    check_op(fn(F), *specs, device=device, torch_fn=fn(TF))


def test_layer_norm_double_backward():
    """The fused Normalize recomputes x̂ with Tensor ops under create_graph."""
    rng = np.random.default_rng(0)
    x = sg.tensor(rng.standard_normal((2, 5)), requires_grad=True)
    w = sg.tensor(rng.standard_normal(5), requires_grad=True)
    assert sg.autograd.gradgradcheck(lambda a, b: F.layer_norm(a, (5,), b), (x, w))


def test_layer_norm_matches_its_composition(device):
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    a = sg.tensor(x, device=device, requires_grad=True)
    b = sg.tensor(x, device=device, requires_grad=True)
    up = sg.tensor(np.random.default_rng(2).standard_normal((3, 8)).astype(np.float32),
                   device=device)
    (F.layer_norm(a, (8,)) * up).sum().backward()
    mean = b.mean(dim=-1, keepdim=True)
    var = ((b - mean) ** 2).mean(dim=-1, keepdim=True)
    (((b - mean) / (var + 1e-5).sqrt()) * up).sum().backward()
    assert_close(a.grad, b.grad, atol=1e-5)


def test_layer_norm_shape_error():
    with pytest.raises(RuntimeError, match=r"layer_norm: normalized_shape \[4\] does not match"
                                           r" .* \(2, 3\)"):
        F.layer_norm(sg.zeros(2, 3), (4,))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (2, 3, 4, 5)], ids=str)
def test_batch_norm_training_updates_running_stats(shape, device):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 1
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm, rv = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    s_rm, s_rv = sg.tensor(rm, device=device), sg.tensor(rv, device=device)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    check_op(lambda x, w, b: F.batch_norm(x, s_rm, s_rv, w, b, training=True, momentum=0.2),
             x, w, b, device=device, gradcheck=False,
             torch_fn=lambda x, w, b: TF.batch_norm(x, t_rm, t_rv, w, b, training=True,
                                                    momentum=0.2))
    assert_close(s_rm, t_rm)
    assert_close(s_rv, t_rv)


def test_batch_norm_gradcheck():
    rng = np.random.default_rng(1)
    x = sg.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    w = sg.tensor(rng.standard_normal(2), requires_grad=True)
    assert sg.autograd.gradcheck(lambda a, b: F.batch_norm(a, None, None, b, training=True),
                                 (x, w))


def test_batch_norm_eval_uses_running_stats(device):
    rng = np.random.default_rng(0)
    rm, rv = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)

    def fn(lib):
        def call(x, w, b):
            mean, var = (sg.tensor(rm, device=device), sg.tensor(rv, device=device)) \
                if lib is F else (torch.tensor(rm), torch.tensor(rv))
            return lib.batch_norm(x, mean, var, w, b, training=False)
        return call

    check_op(fn(F), (4, 3, 5), (3,), (3,), device=device, torch_fn=fn(TF))


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(sg.zeros(1, 3), None, None, training=True)
    with pytest.raises(RuntimeError, match="running_mean and running_var must be given"):
        F.batch_norm(sg.zeros(2, 3), None, None, training=False)
    with pytest.raises(RuntimeError, match=r"weight must have 3 elements .* \(4,\)"):
        F.batch_norm(sg.zeros(2, 3), None, None, sg.ones(4), training=True)


@pytest.mark.parametrize("shape,groups", [((2, 6, 5), 3), ((2, 4, 3, 3), 2), ((3, 4), 2)],
                         ids=str)
def test_group_norm(shape, groups, device):
    c = shape[1]
    check_op(lambda x, w, b: F.group_norm(x, groups, w, b), shape, (c,), (c,), device=device,
             torch_fn=lambda x, w, b: TF.group_norm(x, groups, w, b))


def test_group_norm_error():
    with pytest.raises(RuntimeError, match="divisible by num_groups=4"):
        F.group_norm(sg.zeros(2, 6, 3), 4)


@pytest.mark.parametrize("shape,normalized,eps", [((3, 6), (6,), None), ((2, 3, 4), (3, 4),
                                                  1e-3)], ids=str)
def test_rms_norm(shape, normalized, eps, device):
    check_op(lambda x, w: F.rms_norm(x, normalized, w, eps), shape, normalized, device=device,
             torch_fn=lambda x, w: TF.rms_norm(x, normalized, w, eps))
    check_op(lambda x: F.rms_norm(x, normalized), shape, device=device,
             torch_fn=lambda x: TF.rms_norm(x, normalized))


# ---------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------

SDPA_SHAPES = ((2, 2, 5, 4), (2, 2, 7, 4), (2, 2, 7, 3))


@pytest.mark.parametrize("kw", [{}, dict(is_causal=True), dict(scale=0.3)], ids=str)
def test_sdpa(kw, device):
    fn, tfn = _fns("scaled_dot_product_attention", **kw)
    check_op(fn, *SDPA_SHAPES, device=device, torch_fn=tfn, gradcheck=False)


def test_sdpa_causal_square_gradcheck(device):
    fn, tfn = _fns("scaled_dot_product_attention", is_causal=True)
    check_op(fn, (1, 4, 3), (1, 4, 3), (1, 4, 2), device=device, torch_fn=tfn)


def _mask_case(kind):
    rng = np.random.default_rng(7)
    if kind == "bool":
        m = rng.uniform(size=(5, 7)) > 0.4
        m[:, 0] = True
        return m
    if kind == "bool_dead_row":  # one query may attend to nothing: zeros, as PyTorch
        m = rng.uniform(size=(2, 1, 5, 7)) > 0.4
        m[0, 0, 2] = False
        return m
    return rng.standard_normal((5, 7)).astype(np.float32)  # float mask (added)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["bool", "bool_dead_row", "float"])
def test_sdpa_masks(kind, causal, device):
    """attn_mask with is_causal=True: both apply (torch's math path without grad does this;
    with grad it refuses, so the reference folds the causal mask into attn_mask)."""
    mask = _mask_case(kind)

    def mine(q, k, v, m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal)

    def reference(q, k, v, m):
        if causal:
            tri = torch.ones(5, 7, dtype=torch.bool).tril()
            m = m & tri if m.dtype == torch.bool else m.masked_fill(~tri, float("-inf"))
        return TF.scaled_dot_product_attention(q, k, v, attn_mask=m)

    check_op(mine, *SDPA_SHAPES, Arr(mask), device=device, torch_fn=reference,
             gradcheck=False)


def test_sdpa_gqa(device):
    fn, tfn = _fns("scaled_dot_product_attention", enable_gqa=True)
    check_op(fn, (1, 4, 3, 2), (1, 2, 5, 2), (1, 2, 5, 3), device=device, torch_fn=tfn,
             gradcheck=False)


def test_sdpa_dropout_keeps_expectation(device):
    """With dropout_p, each weight is dropped or scaled by 1/(1-p); rows stay unbiased."""
    sg.manual_seed(0)
    q = sg.zeros(1, 400, 4, device=device)  # uniform attention over 8 keys
    k = sg.zeros(1, 8, 4, device=device)
    v = sg.ones(1, 8, 1, device=device)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.25).numpy().ravel()
    # each output = (1/8)·(1/0.75)·(number kept), kept ~ Binomial(8, 0.75)
    kept = out * 8 * 0.75
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-4)
    assert abs(out.mean() - 1.0) < 0.05


def test_sdpa_shape_error():
    with pytest.raises(RuntimeError, match="scaled_dot_product_attention: query .* key .* "
                                           "value .* do not fit"):
        F.scaled_dot_product_attention(sg.zeros(2, 3, 4), sg.zeros(2, 5, 3), sg.zeros(2, 5, 4))


def test_sdpa_is_grad_of_composition_double_backward():
    rng = np.random.default_rng(3)
    q = sg.tensor(rng.standard_normal((1, 3, 2)), requires_grad=True)
    k = sg.tensor(rng.standard_normal((1, 3, 2)), requires_grad=True)
    v = sg.tensor(rng.standard_normal((1, 3, 2)))
    assert sg.autograd.gradgradcheck(
        lambda a, b: F.scaled_dot_product_attention(a, b, v, is_causal=True), (q, k))


def test_sdpa_dropout_node_matches_its_composite(device):
    """The fused node with dropout equals the composite with the same dropout mask, in
    values and in every gradient; and its double backward is exact (gradgradcheck)."""
    from smolgrad.ops.attention import attention_weights

    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((2, 5, 3), (2, 6, 3),
                                                                   (2, 6, 4))]

    def run(fused):
        q, k, v = (sg.tensor(a, device=device, requires_grad=True) for a in arrays)
        sg.manual_seed(11)
        if fused:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True)
        else:
            keep = F.dropout(sg.ones(2, 5, 6, device=device), 0.3)
            allowed = sg.ones(5, 6, dtype=sg.bool, device=device).tril()
            out = (attention_weights(q, k, allowed, None, 1 / np.sqrt(3)) * keep) @ v
        (out * out).sum().backward()
        return [out] + [t.grad for t in (q, k, v)]

    for a, b in zip(run(True), run(False)):
        assert_close(a, b.detach(), atol=1e-5)
    if device == "cpu":
        q, k, v = (sg.tensor(a.astype(np.float64), requires_grad=True) for a in arrays)

        def seeded(a, b, c):
            sg.manual_seed(5)
            return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3)

        assert sg.autograd.gradgradcheck(seeded, (q, k, v))
