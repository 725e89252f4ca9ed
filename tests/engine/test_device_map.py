"""A model split by accelerate's device_map (layers on the CPU and offloaded to disk, their
weights on `meta` between passes) gives the same captures, edits and generations as the
whole model on one device.

This machine has one device, so the split is CPU + disk offload; what it exercises is the
same as across GPUs: parameters that are not where `next(parameters())` says, accelerate's
hooks moving weights and inputs, edit vectors moved to each layer's device, captures
gathered on one device.
"""

from __future__ import annotations

import pytest
import torch

import interp
from interp.engine.edits import Add, Patch, ProjectOut
from interp.models.errors import ModelLoadError
from interp.models.loading import parse_max_memory

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta"]
SITES = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z", "blocks.2.mlp.hook_post", "blocks.2.hook_resid_post",
         "ln_final.hook_normalized"]
SPLIT = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
         "model.layers.2": "disk", "model.norm": "cpu", "lm_head": "disk"}


@pytest.fixture(scope="module")
def models(tiny_llama_folder, tmp_path_factory):
    whole = interp.load(str(tiny_llama_folder), device="cpu")
    split = interp.load(str(tiny_llama_folder), device="cpu", device_map=SPLIT,
                        offload_folder=tmp_path_factory.mktemp("offload"))
    return whole, split


def test_the_split_model_really_is_offloaded(models):
    _, split = models
    devices = {p.device.type for p in split.hf.parameters()}
    assert devices == {"cpu", "meta"} and split.device == torch.device("cpu")
    assert split.info["device_map"]["model.layers.1"] == "disk"


@pytest.mark.parametrize("prompts", [PROMPTS, PROMPTS[:1]])
def test_captures_and_edits_match_the_whole_model(models, prompts):
    whole, split = models
    v = torch.randn(whole.d_model, generator=torch.Generator().manual_seed(0))
    _, donor = whole.run_with_cache(["zz top", "yy", "xx wyv"][:len(prompts)], sites=["blocks.1.hook_resid_post"])
    edits = [Add("blocks.1.hook_resid_post", vector=v, alpha=3.0), ProjectOut("blocks.2.hook_resid_pre", direction=v),
             Patch("blocks.1.hook_resid_post", donor=donor["blocks.1.hook_resid_post"],
                   donor_mask=donor.attention_mask, positions="last", align="right")]
    for kwargs in ({}, {"edits": edits}):
        logits_w, cache_w = whole.run_with_cache(prompts, sites=SITES, **kwargs)
        logits_s, cache_s = split.run_with_cache(prompts, sites=SITES, **kwargs)
        torch.testing.assert_close(logits_s, logits_w, atol=1e-5, rtol=1e-5)
        for site in SITES:
            assert cache_s[site].device == split.device
            torch.testing.assert_close(cache_s[site], cache_w[site], atol=1e-5, rtol=1e-5)
    steer = [Add("blocks.1.hook_resid_post", vector=v, alpha=3.0, positions="last+generated")]
    gen_w = whole.generate(prompts, edits=steer, max_new_tokens=4, stop_at_eos=False)
    gen_s = split.generate(prompts, edits=steer, max_new_tokens=4, stop_at_eos=False)
    assert torch.equal(gen_s.sequences, gen_w.sequences)


def test_bad_device_maps_and_memory_limits_are_one_line(tiny_llama_folder):
    with pytest.raises(ModelLoadError, match="device map 'everywhere'"):
        interp.load(str(tiny_llama_folder), device_map="everywhere")
    with pytest.raises(ModelLoadError, match="CUDA GPU"):
        interp.load(str(tiny_llama_folder), device_map={**SPLIT, "model.layers.1": f"cuda:{torch.cuda.device_count() + 2}"})
    assert parse_max_memory("0=20GiB, cpu=64GiB") == {0: "20GiB", "cpu": "64GiB"}
    with pytest.raises(ModelLoadError, match="DEVICE=AMOUNT"):
        parse_max_memory("20GiB")
