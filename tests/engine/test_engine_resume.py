"""Captures that start at a layer from a clean cache (`StartAt`) equal the whole edited pass."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.engine.edits import Zero
from interp.engine.resume import StartAt

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["The cat sat on the mat", "Hi", "A much longer prompt than the others here", "Short one"]


def _sites(model):
    return [f"blocks.{l}.attn.hook_z" for l in range(model.n_layers)] + [
        f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)] + ["ln_final.hook_scale"]


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "qwen2_moe"])
@pytest.mark.parametrize("positions", ["last", "all"])
def test_a_run_started_at_a_layer_equals_the_whole_edited_run(family, positions):
    model = tiny_model(family)
    batch = model.tokenize(PROMPTS)
    sites = _sites(model)
    start = 1
    _, clean = model.run_with_cache(batch, sites + [f"blocks.{start}.hook_resid_pre"], positions="all", logits=None)
    for layer in range(start, model.n_layers):
        edit = [Zero(f"blocks.{layer}.attn.hook_z", heads=[0])]
        full_logits, full = model.run_with_cache(batch, sites, positions=positions, edits=edit, logits="last")
        for size in (1, 3, 8):  # buckets narrower than the whole batch, and one batch
            logits, part = model.run_with_cache(batch, sites, positions=positions, edits=edit, logits="last",
                                                batch_size=size, start=StartAt(start, clean))
            assert torch.allclose(logits, full_logits, atol=1e-5)
            real = batch.attention_mask.bool()
            for name in sites:
                a, b = part[name], full[name]
                if positions == "all":
                    a, b = a[real], b[real]
                assert torch.allclose(a, b, atol=1e-5), (family, layer, size, name)


def test_bad_starts_are_refused_before_any_pass():
    model = tiny_model("llama")
    batch = model.tokenize(PROMPTS)
    _, clean = model.run_with_cache(batch, ["blocks.2.hook_resid_pre", "blocks.0.attn.hook_z"], positions="all",
                                    logits=None)
    _, last = model.run_with_cache(batch, ["blocks.2.hook_resid_pre"], positions="last", logits=None)
    z2 = [Zero("blocks.2.attn.hook_z", heads=[0])]
    with pytest.raises(ValueError, match="sit below the start layer"):
        model.run_with_cache(batch, [], edits=[Zero("blocks.1.attn.hook_z", heads=[0])], start=StartAt(2, clean))
    with pytest.raises(ValueError, match="lacks 'blocks.1.hook_resid_pre'"):
        model.run_with_cache(batch, [], edits=z2, start=StartAt(1, clean))
    with pytest.raises(ValueError, match="lacks \\['blocks.1.attn.hook_z'\\]"):
        model.run_with_cache(batch, ["blocks.1.attn.hook_z"], edits=z2, start=StartAt(2, clean))
    with pytest.raises(ValueError, match="positions='all'"):
        model.run_with_cache(batch, [], edits=z2, start=StartAt(2, last))
    with pytest.raises(ValueError, match="other prompts"):
        model.run_with_cache(PROMPTS[:2], [], edits=z2, start=StartAt(2, clean))
    with pytest.raises(ValueError, match="has positions"):
        model.run_with_cache(batch, ["blocks.0.attn.hook_z"], positions=[0], edits=z2, start=StartAt(2, clean))
