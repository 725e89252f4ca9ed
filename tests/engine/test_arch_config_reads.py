"""The adapter reads a config attribute only for families whose HF code reads it.

HF's GPT-2 splits `c_attn` into n_head query, key and value heads of n_embd / n_head and
ignores `num_key_value_heads` and `head_dim`; a GPT-2 config that happens to carry them
(the tiny test configs do: num_key_value_heads=2) must not shrink hook_k / hook_v.
"""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gpt2_ignores_stray_kv_heads_and_head_dim():
    model = tiny_model("gpt2", head_dim=8)
    assert model.config.num_key_value_heads == 2 and model.config.head_dim == 8  # carried, not used by HF
    assert (model.n_heads, model.n_kv_heads, model.d_head) == (4, 4, 16)
    site = "blocks.1.attn.hook_k"
    qkv = {}
    handle = model.hf.transformer.h[1].attn.c_attn.register_forward_hook(lambda m, a, out: qkv.update(out=out))
    try:
        _, cache = model.run_with_cache(["hello there"], sites=[site, "blocks.1.attn.hook_v"])
    finally:
        handle.remove()
    q, k, v = qkv["out"].split(model.d_model, dim=-1)  # HF's own split: [b, p, n_embd] each
    assert cache[site].shape == (1, k.shape[1], 4, 16)
    torch.testing.assert_close(cache[site], k.view(1, -1, 4, 16))
    torch.testing.assert_close(cache["blocks.1.attn.hook_v"], v.view(1, -1, 4, 16))


def test_families_that_group_kv_heads_still_read_them():
    model = tiny_model("llama")
    assert (model.n_heads, model.n_kv_heads) == (4, 2)
    _, cache = model.run_with_cache(["hi"], sites=["blocks.0.attn.hook_k"])
    assert cache["blocks.0.attn.hook_k"].shape[2] == 2
