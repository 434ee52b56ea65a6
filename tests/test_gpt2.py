"""smolgrad.models.gpt2 against Hugging Face's GPT2LMHeadModel with the same weights.

A tiny random Hugging Face model is saved with save_pretrained (safetensors) once per
session; each test loads it through GPT2.from_pretrained and compares logits, gradients of
the language-modelling loss and greedy generations.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import smolgrad as sg
from smolgrad import optim
from smolgrad.models.gpt2 import GPT2, GPT2Config, KVCache

TINY = dict(vocab_size=100, n_positions=64, n_embd=32, n_layer=2, n_head=4)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A tiny random GPT-2 saved the Hugging Face way; returns (folder, torch model)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    # a wider init than GPT-2's 0.02, so that logits differ clearly between tokens
    config = transformers.GPT2Config(**TINY, initializer_range=0.1)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():   # non-trivial LayerNorm parameters and biases, too
        for name, p in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    model.save_pretrained(folder, safe_serialization=True)
    return folder, model


def _ids(batch: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, TINY["vocab_size"], (batch, length))


def test_config_reads_hugging_face_json(hf_dir):
    folder, _ = hf_dir
    with open(folder / "config.json") as f:
        raw = json.load(f)
    config = GPT2Config.from_dict(raw)   # unknown keys (architectures, ...) are ignored
    assert (config.n_layer, config.n_embd, config.n_head) == (2, 32, 4)
    assert config.vocab_size == 100 and config.inner_size == 128 and config.head_size == 8


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPT2Config(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="activation_function"):
        GPT2Config(activation_function="swish")


def test_state_dict_keys_are_hugging_face_keys(hf_dir):
    _, hf = hf_dir
    ours = GPT2(GPT2Config(**TINY))
    hf_shapes = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert set(our_shapes) == set(hf_shapes)
    for key, shape in hf_shapes.items():
        conv1d = key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
        assert our_shapes[key] == (shape[::-1] if conv1d else shape), key


def test_weight_tying_is_one_parameter():
    model = GPT2(GPT2Config(**TINY))
    assert model.lm_head.weight is model.transformer.wte.weight
    params = list(model.parameters())
    assert sum(p is model.transformer.wte.weight for p in params) == 1
    untied = GPT2(GPT2Config(**TINY, tie_word_embeddings=False))
    assert untied.num_parameters() == model.num_parameters() + 100 * 32


def test_logits_match_hugging_face(hf_dir, device):
    folder, hf = hf_dir
    model = GPT2.from_pretrained(str(folder), device=device)
    ids = _ids(3, 17)
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids)).logits.numpy()
    with sg.no_grad():
        logits = model(sg.tensor(ids, device=device))
    assert logits.shape == (3, 17, 100)
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-5, rtol=1e-4)


def test_loss_and_gradients_match_hugging_face(hf_dir, device):
    folder, hf = hf_dir
    model = GPT2.from_pretrained(str(folder), device=device)
    ids = _ids(2, 12, seed=1)
    hf.zero_grad()
    hf_loss = hf(torch.from_numpy(ids), labels=torch.from_numpy(ids)).loss
    hf_loss.backward()
    # targets[t] = ids[t + 1]; the last position has no next token and is ignored (-100)
    targets = np.concatenate([ids[:, 1:], np.full((2, 1), -100)], axis=1)
    _, loss = model(sg.tensor(ids, device=device), sg.tensor(targets, device=device))
    loss.backward()
    np.testing.assert_allclose(loss.item(), hf_loss.item(), rtol=1e-5)
    hf_params = dict(hf.named_parameters())
    ours = dict(model.named_parameters())
    for name in ("transformer.wte.weight", "transformer.wpe.weight",
                 "transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_proj.bias",
                 "transformer.h.1.mlp.c_fc.weight", "transformer.h.0.ln_1.weight",
                 "transformer.ln_f.bias"):
        expected = hf_params[name].grad.numpy()
        if name.endswith(("c_attn.weight", "c_fc.weight", "c_proj.weight")):
            expected = expected.T   # Conv1D (in, out) -> Linear (out, in)
        np.testing.assert_allclose(ours[name].grad.numpy(), expected, atol=2e-5, rtol=1e-3,
                                   err_msg=name)


def test_greedy_generation_matches_hugging_face(hf_dir, device):
    folder, hf = hf_dir
    model = GPT2.from_pretrained(str(folder), device=device)
    prompt = _ids(2, 5, seed=2)
    with torch.no_grad():
        expected = hf.generate(torch.from_numpy(prompt), max_new_tokens=20, do_sample=False,
                               attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                               pad_token_id=0).numpy()
    out = model.generate(sg.tensor(prompt, device=device), max_new_tokens=20)
    assert out.shape == (2, 25) and out.dtype == sg.int64
    np.testing.assert_array_equal(out.numpy(), expected)


def test_kv_cache_steps_equal_one_full_forward(device):
    model = GPT2(GPT2Config(**TINY)).to(device).eval()
    ids = sg.tensor(_ids(2, 10, seed=3), device=device)
    with sg.no_grad():
        full = model(ids).numpy()
        cache = KVCache(model.config.n_layer)
        first = model(ids[:, :6], kv_cache=cache)
        steps = [model(ids[:, t:t + 1], kv_cache=cache) for t in range(6, 10)]
    assert cache.length == 10
    pieces = np.concatenate([first.numpy()] + [s.numpy() for s in steps], axis=1)
    np.testing.assert_allclose(pieces, full, atol=1e-5, rtol=1e-4)


def test_generation_past_n_positions_crops_the_context(device):
    config = GPT2Config(vocab_size=50, n_positions=8, n_embd=16, n_layer=1, n_head=2)
    model = GPT2(config).to(device)
    prompt = sg.tensor(_ids(1, 6, seed=4) % 50, device=device)
    with_cache = model.generate(prompt, max_new_tokens=12)
    without = model.generate(prompt, max_new_tokens=12, use_cache=False)
    assert with_cache.shape == (1, 18)
    np.testing.assert_array_equal(with_cache.numpy(), without.numpy())
    with pytest.raises(ValueError, match="n_positions=8"):
        model(sg.tensor(_ids(1, 9) % 50, device=device))


def test_sampling_is_seeded_and_top_k_1_is_greedy(device):
    model = GPT2(GPT2Config(**TINY, initializer_range=0.2)).to(device)
    prompt = sg.tensor(_ids(1, 4, seed=5), device=device)
    sg.manual_seed(7)
    a = model.generate(prompt, 15, do_sample=True, temperature=1.5).numpy()
    sg.manual_seed(7)
    b = model.generate(prompt, 15, do_sample=True, temperature=1.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a < 100)).all()
    greedy = model.generate(prompt, 15).numpy()
    top1 = model.generate(prompt, 15, do_sample=True, top_k=1).numpy()
    np.testing.assert_array_equal(top1, greedy)
    assert model.training, "generate must restore training mode"


def test_training_step_changes_the_tied_weight_once(device):
    model = GPT2(GPT2Config(**TINY)).to(device)
    ids = sg.tensor(_ids(2, 8, seed=6), device=device)
    before = model.transformer.wte.weight.detach().numpy().copy()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    _, loss = model(ids, ids)
    loss.backward()
    grad = model.transformer.wte.weight.grad.numpy().copy()
    optimizer.step()
    after = model.lm_head.weight.detach().numpy()
    np.testing.assert_allclose(after, before - 0.1 * grad, atol=1e-6)


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        GPT2.from_pretrained(str(tmp_path))


def test_bad_inputs_raise_clear_errors():
    model = GPT2(GPT2Config(**TINY))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(sg.tensor([1, 2, 3]))
    ids = sg.tensor(_ids(2, 4))
    with pytest.raises(ValueError, match="targets of shape"):
        model(ids, sg.tensor(_ids(2, 3)))


def test_loads_the_original_checkpoint_layout(hf_dir, tmp_path):
    """The "gpt2" checkpoint on the Hub was saved from GPT2Model: keys without the
    `transformer.` prefix, no lm_head, and the old causal-mask buffers `h.N.attn.bias`."""
    from safetensors.numpy import load_file, save_file

    folder, hf = hf_dir
    state = load_file(str(folder / "model.safetensors"))
    legacy = {k.removeprefix("transformer."): v for k, v in state.items()
              if k != "lm_head.weight"}
    for i in range(TINY["n_layer"]):
        legacy[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
    save_file(legacy, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    model = GPT2.from_pretrained(str(tmp_path))
    ids = _ids(1, 9, seed=8)
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids)).logits.numpy()
    with sg.no_grad():
        np.testing.assert_allclose(model(sg.tensor(ids)).numpy(), expected, atol=1e-5,
                                   rtol=1e-4)
    del legacy["h.1.mlp.c_fc.bias"]
    save_file(legacy, str(tmp_path / "model.safetensors"))
    with pytest.raises(RuntimeError, match="h.1.mlp.c_fc.bias"):
        GPT2.from_pretrained(str(tmp_path))
