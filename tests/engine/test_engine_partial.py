"""The engine's partial forward (start at a layer from a cached residual), per-row head edits,
and activation gradients."""

from __future__ import annotations

import pytest
import torch

from interp.engine.gradients import run_with_grads
from interp.engine.partial import forward_from_layer
from interp.engine.row_edits import RowHeadSet
from tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["The cat sat on the mat", "Hi", "A much longer prompt than the others here"]


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "qwen2_moe"])
def test_starting_at_any_layer_from_the_cached_residual_equals_the_full_pass(family):
    model = tiny_model(family)
    batch = model.tokenize(PROMPTS)
    sites = [f"blocks.{l}.hook_resid_pre" for l in range(model.n_layers)]
    full, cache = model.run_with_cache(batch, sites, logits="all")
    real = batch.attention_mask.bool()
    for layer in range(model.n_layers):
        logits = forward_from_layer(model, batch, layer, cache[sites[layer]])
        assert torch.allclose(logits[real], full[real], atol=1e-5)
        tail = forward_from_layer(model, batch, layer, cache[sites[layer]], logits_to_keep=2)
        assert torch.allclose(tail, full[:, -2:], atol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        forward_from_layer(model, batch, model.n_layers, cache[sites[0]])
    with pytest.raises(ValueError, match="resid_pre has shape"):
        forward_from_layer(model, batch, 1, cache[sites[1]][:, 1:])


def test_a_different_residual_changes_only_what_follows_the_layer():
    model = tiny_model("llama")
    batch = model.tokenize(PROMPTS)
    _, cache = model.run_with_cache(batch, ["blocks.1.hook_resid_pre"], logits=None)
    resid = cache["blocks.1.hook_resid_pre"].clone()
    resid[0] += 1.0
    logits = forward_from_layer(model, batch, 1, resid)
    reference = model.forward(batch, hooks=[("blocks.1.hook_resid_pre", lambda x, hook: resid)])
    assert torch.allclose(logits, reference, atol=1e-5)


def test_row_head_set_patches_each_row_its_own_heads():
    model = tiny_model("qwen2")
    batch = model.tokenize(PROMPTS)
    site = "blocks.1.attn.hook_z"
    _, cache = model.run_with_cache(batch, [site], logits=None)
    values = torch.randn_like(cache[site])
    heads = torch.zeros(3, model.n_heads, dtype=torch.bool)
    heads[0, 1] = heads[2, [0, 3]] = True
    where = batch.attention_mask.bool().clone()
    where[:, -1] = False  # the last token keeps its own values
    seen = {}
    edit = RowHeadSet(site, positions=where, values=values, head_mask=heads)

    def grab(x, hook):
        seen["z"] = x.clone()

    model.forward(batch, edits=[edit], hooks=[(site, grab)])
    z = seen["z"]
    expected = cache[site].clone()
    sel = where[:, :, None, None] & heads[:, None, :, None]
    expected = torch.where(sel, values, expected)
    assert torch.equal(z, expected)
    assert torch.equal(z[1], cache[site][1])  # a row without heads is untouched
    with pytest.raises(ValueError, match="head_mask"):
        RowHeadSet(site, values=values, head_mask=heads[:2])


def test_gradients_of_a_row_metric_match_finite_differences():
    model = tiny_model("llama")
    model.hf.double()
    batch = model.tokenize(["The cat sat", "The dog ran"])  # equal lengths: float64 pads give NaN in HF eager
    sites = ["blocks.0.attn.hook_z", "blocks.2.attn.hook_z"]

    def metric(logits):
        return logits[:, -1].logsumexp(-1) - logits[:, -1, 5]

    value, acts, grads = run_with_grads(model, batch, sites, metric)
    reference = model.forward(batch)
    assert torch.allclose(value, metric(reference))
    for site in sites:
        direction = torch.randn_like(acts[site]) * batch.attention_mask[:, :, None, None]
        eps = 1e-3  # HF eager attention takes its softmax in float32; central differences err O(eps^2)
        plus = metric(model.forward(batch, hooks=[(site, lambda x, hook, d=eps * direction: x + d)]))
        minus = metric(model.forward(batch, hooks=[(site, lambda x, hook, d=eps * direction: x - d)]))
        numeric = (plus - minus) / (2 * eps)
        analytic = (grads[site] * direction).sum((1, 2, 3))
        assert torch.allclose(numeric, analytic, rtol=2e-3, atol=1e-6)
    with pytest.raises(ValueError, match="one value per row"):
        run_with_grads(model, batch, sites, lambda logits: logits.sum())


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_unembedding_gets_a_contiguous_input_when_only_the_tail_is_kept(family):
    """HF unembeds `hidden[:, -k:]`, a non-contiguous slice that CPU `linear` multiplies by the
    weight broadcast per row (5x slower on a real vocabulary); the engine hands it a contiguous
    copy, with the same logits."""
    model = tiny_model(family)
    batch = model.tokenize(PROMPTS)
    seen = []
    handle = model.hf.get_output_embeddings().register_forward_pre_hook(
        lambda module, args: seen.append(args[0].is_contiguous()))
    try:
        _, cache = model.run_with_cache(batch, ["blocks.1.hook_resid_pre"], logits="all")
        full = forward_from_layer(model, batch, 1, cache["blocks.1.hook_resid_pre"])
        tail = forward_from_layer(model, batch, 1, cache["blocks.1.hook_resid_pre"], logits_to_keep=2)
        model.generate(PROMPTS[:2], max_new_tokens=2)
    finally:
        handle.remove()
    assert seen and all(seen)
    assert torch.allclose(tail, full[:, -2:], atol=1e-6)
