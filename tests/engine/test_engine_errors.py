"""Bad input gets one clear line, before any work; GPU-only paths simulated on CPU."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.arch import UnsupportedArchitectureError, spec_for_model_type
from interp.engine.attention import PatternUnavailableError
from interp.engine.batching import is_oom, resolve_batch_size
from interp.engine.edits import Add, Zero

PROMPTS = ["one", "two words", "three words here", "and a fourth, longer prompt"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def test_unknown_site_lists_the_suffixes(model):
    with pytest.raises(ValueError, match=r"unknown site 'blocks\.0\.hook_nothing'.*hook_resid_post"):
        model.run_with_cache(PROMPTS, sites=["blocks.0.hook_nothing"])


def test_layer_out_of_range(model):
    with pytest.raises(ValueError, match=r"layer 9 out of range .* layers 0\.\.2"):
        model.forward(PROMPTS, edits=[Zero("blocks.9.hook_resid_post")])


def test_unsupported_architecture_lists_families():
    with pytest.raises(UnsupportedArchitectureError, match=r"unsupported architecture 'bert'.*llama.*qwen2"):
        spec_for_model_type("bert")


def test_patterns_from_fused_kernel_are_refused():
    sdpa = tiny_model("llama", attn="sdpa")
    with pytest.raises(PatternUnavailableError, match="attn_implementation='eager'"):
        sdpa.run_with_cache(PROMPTS, sites=["blocks.0.attn.hook_pattern"])
    expected = sdpa.forward(PROMPTS)
    sdpa.set_attn_implementation("eager")
    _, cache = sdpa.run_with_cache(PROMPTS, sites=["blocks.0.attn.hook_pattern"])
    assert cache["blocks.0.attn.hook_pattern"].shape[1] == sdpa.n_heads
    mask = sdpa.tokenize(PROMPTS).attention_mask.bool()
    torch.testing.assert_close(sdpa.forward(PROMPTS)[mask], expected[mask], rtol=1e-5, atol=1e-5)


def test_capture_only_site_cannot_be_edited(model):
    with pytest.raises(ValueError, match="capture-only"):
        model.forward(PROMPTS, edits=[Add("ln_final.hook_scale", vector=torch.ones(1))])


def test_heads_on_a_site_without_heads(model):
    with pytest.raises(ValueError, match="not split by head"):
        model.forward(PROMPTS, edits=[Zero("blocks.0.hook_resid_post", heads=[0])])


def test_capture_positions_out_of_range(model):
    with pytest.raises(ValueError, match=r"positions \[50\] out of range"):
        model.run_with_cache(PROMPTS, sites=["blocks.0.hook_resid_post"], positions=[0, 50])


def test_empty_prompts(model):
    with pytest.raises(ValueError, match="no prompts"):
        model.tokenize([])
    with pytest.raises(ValueError, match="empty prompt"):
        model.tokenize(["fine", ""])


def test_unknown_position_word(model):
    with pytest.raises(ValueError, match="unknown positions 'middle'"):
        model.forward(PROMPTS, edits=[Zero("blocks.0.hook_resid_post", positions="middle")])


def test_hooks_are_removed_after_an_error(model):
    def boom(x, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.forward(PROMPTS, hooks=[("blocks.1.hook_resid_post", boom)])
    clean = model.forward(PROMPTS)
    head = model.hf.get_output_embeddings()  # holds the engine's one permanent hook (contiguous input)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.hf.modules() if m is not head)
    assert not head._forward_hooks and len(head._forward_pre_hooks) == 1
    assert torch.isfinite(clean).all()


def test_out_of_memory_backoff_halves_batch_and_matches(model):
    site = "blocks.2.hook_resid_post"
    expected_logits, expected = model.run_with_cache(PROMPTS, sites=[site], batch_size=1)
    sizes = []

    def fake_oom(x, hook):
        sizes.append(x.shape[0])
        if x.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with model.hooks([("blocks.0.hook_resid_post", fake_oom)]):
        logits, cache = model.run_with_cache(PROMPTS, sites=[site], batch_size=4)
    assert sizes[:3] == [4, 2, 1]
    torch.testing.assert_close(logits, expected_logits)
    mask = cache.attention_mask.bool()
    torch.testing.assert_close(cache[site][mask], expected[site][mask])


def test_out_of_memory_at_batch_one_propagates(model):
    def always_oom(x, hook):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with model.hooks([("blocks.0.hook_resid_post", always_oom)]), pytest.raises(torch.OutOfMemoryError):
        model.run_with_cache(PROMPTS, sites=["blocks.0.hook_resid_post"], batch_size=2)


def test_oom_recognised_by_type_and_message():
    assert is_oom(torch.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("MPS backend out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_auto_batch_size_by_device():
    assert resolve_batch_size("auto", torch.device("cpu")) == 8
    assert resolve_batch_size(None, torch.device("cuda")) == 64
    with pytest.raises(ValueError, match="batch size must be >= 1"):
        resolve_batch_size(0, torch.device("cpu"))
