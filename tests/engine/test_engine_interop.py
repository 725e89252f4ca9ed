"""Captured values equal nnsight's for the same modules and TransformerLens' for GPT-2."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model, transformer_lens_gpt2

from interp.engine.nnsight_interop import nnsight_envoy

PROMPTS = ["hello world, again", "hi"]


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "mixtral"])
def test_captures_equal_nnsight(family):
    model = tiny_model(family)
    lm = model.nnsight()
    batch = model.tokenize(PROMPTS)
    sites = []
    for layer in range(model.n_layers):
        sites += [f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_resid_post"]
    saved = {}
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
              "position_ids": batch.position_ids()}
    with lm.trace(inputs):
        for name in sites:  # forward order, as nnsight requires
            envoy, io = nnsight_envoy(lm, model, name)
            saved[name] = (envoy.input if io == "input" else envoy.output).save()
    _, cache = model.run_with_cache(PROMPTS, sites=sites)
    for name in sites:
        theirs = saved[name]
        theirs = theirs[0] if isinstance(theirs, tuple) else theirs
        torch.testing.assert_close(cache[name], model.site(name).to_user(theirs), rtol=0, atol=0)


def test_gpt2_residuals_equal_transformer_lens():
    model = tiny_model("gpt2")
    tl = transformer_lens_gpt2(model)
    text = "The cat sat on the mat."
    tokens = model.tokenize([text]).input_ids
    _, tl_cache = tl.run_with_cache(tokens)
    sites = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    sites += [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]
    sites += [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.n_layers)]
    logits, cache = model.run_with_cache([text], sites=sites, logits="all")
    for name in sites:
        torch.testing.assert_close(cache[name], tl_cache[name], rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, tl(tokens), rtol=0, atol=1e-4)
