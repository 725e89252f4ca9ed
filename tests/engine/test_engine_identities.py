"""The engine's identities on tiny models of every supported family.

Hooks equal HF hidden states; heads sum to the attention output; steerlens' eager
attention equals HF's; a no-op edit is bit-identical; a prompt alone equals the same
prompt inside a left-padded batch.
"""

from __future__ import annotations

import pytest
import torch
from tiny import DENSE, FAMILIES, tiny_model

from interp.arch.spec import get_module, o_proj_bias, o_proj_weight
from interp.engine.edits import Add, Scale

PROMPTS = ["The cat sat on the mat.", "Hi!", "A longer prompt, with commas; and more words here."]


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param)


def _hf_hidden(model, prompts):
    batch = model.tokenize(prompts)
    with torch.inference_mode():
        out = model.hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids(), output_hidden_states=True)
    return batch, out


def test_resid_post_equals_hf_hidden_states(model):
    sites = [f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)] + ["ln_final.hook_normalized",
                                                                                "blocks.0.hook_resid_pre"]
    _, cache = model.run_with_cache(PROMPTS, sites=sites)
    batch, out = _hf_hidden(model, PROMPTS)
    hidden = out.hidden_states  # embeddings, layers 0..L-2, then final-normed last layer
    mask = batch.attention_mask.bool()
    torch.testing.assert_close(cache["blocks.0.hook_resid_pre"][mask], hidden[0][mask], rtol=0, atol=1e-6)
    for layer in range(model.n_layers - 1):
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_resid_post"][mask], hidden[layer + 1][mask],
                                   rtol=0, atol=1e-6)
    torch.testing.assert_close(cache["ln_final.hook_normalized"][mask], hidden[-1][mask], rtol=0, atol=1e-6)


def test_heads_sum_to_attention_output(model):
    if "blocks.0.attn.hook_z" not in model.sites():
        pytest.skip("no hook_z")
    spec = model.spec
    layers = range(model.n_layers)
    sites = [f"blocks.{l}.attn.hook_z" for l in layers] + [f"blocks.{l}.hook_attn_out" for l in layers]
    _, cache = model.run_with_cache(PROMPTS, sites=sites)
    for layer in layers:
        z = cache[f"blocks.{layer}.attn.hook_z"]  # [b, p, H, d_head]
        w_o = o_proj_weight(spec, model.hf, layer).view(model.d_model, model.n_heads, model.d_head)
        per_head = torch.einsum("bphd,mhd->bphm", z, w_o)  # [b, p, H, d_model]
        total = per_head.sum(2)
        bias = o_proj_bias(spec, model.hf, layer)
        if bias is not None:
            total = total + bias
        if spec.ln1_post:  # sandwich norm: the residual receives the normed sum
            with torch.inference_mode():
                total = get_module(model.hf, f"{spec.layers}.{layer}.{spec.ln1_post}")(total)
        torch.testing.assert_close(total, cache[f"blocks.{layer}.hook_attn_out"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", DENSE + ("mixtral",))
def test_steerlens_eager_equals_hf_eager(family):
    reference = tiny_model(family)
    batch = reference.tokenize(PROMPTS)
    with torch.inference_mode():
        expected = reference.hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                position_ids=batch.position_ids()).logits
    assert reference.hf.config._attn_implementation == "eager"
    _, cache = reference.run_with_cache(PROMPTS, sites=["blocks.0.attn.hook_pattern"], logits="all")
    assert reference.hf.config._attn_implementation == "steerlens_eager"
    got = reference.forward(PROMPTS)
    mask = batch.attention_mask.bool()
    torch.testing.assert_close(got[mask], expected[mask], rtol=0, atol=1e-6)
    pattern = cache["blocks.0.attn.hook_pattern"]  # [b, H, q, k]
    rows = pattern.sum(-1)[:, :, mask[0]]
    torch.testing.assert_close(rows, torch.ones_like(rows), rtol=0, atol=1e-5)


def test_noop_edit_is_bit_identical_and_add_matches_by_hand(model):
    plain = model.forward(PROMPTS)
    layer = model.n_layers // 2
    site = f"blocks.{layer}.hook_resid_post"
    noop = model.forward(PROMPTS, edits=[Scale(site, factor=1.0)])
    assert torch.equal(plain, noop)
    vector = torch.randn(model.d_model, generator=torch.Generator().manual_seed(3))
    edited = model.forward(PROMPTS, edits=[Add(site, vector=vector, alpha=2.0)])

    def by_hand(x, hook):
        return x + 2.0 * vector

    manual = model.forward(PROMPTS, hooks=[(site, by_hand)])
    mask = model.tokenize(PROMPTS).attention_mask.bool()
    assert torch.equal(edited[mask], manual[mask])
    assert not torch.allclose(edited, plain)


def test_prompt_alone_equals_prompt_in_padded_batch(model):
    sites = [f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)]
    if "blocks.0.attn.hook_z" in model.sites():
        sites.append("blocks.1.attn.hook_z")
    short = PROMPTS[1]
    alone_logits, alone = model.run_with_cache([short], sites=sites)
    batch_logits, batched = model.run_with_cache(PROMPTS, sites=sites)
    torch.testing.assert_close(batch_logits[1], alone_logits[0], rtol=0, atol=1e-5)
    for name in sites:
        torch.testing.assert_close(batched.real(name, 1), alone.real(name, 0), rtol=0, atol=1e-5)


def test_batch_size_and_bucketing_do_not_change_results(model):
    site = f"blocks.{model.n_layers - 1}.hook_resid_post"
    one_logits, one = model.run_with_cache(PROMPTS, sites=[site], batch_size=1)
    all_logits, everything = model.run_with_cache(PROMPTS, sites=[site], batch_size=8)
    torch.testing.assert_close(one_logits, all_logits, rtol=0, atol=1e-5)
    mask = everything.attention_mask.bool()
    torch.testing.assert_close(one[site][mask], everything[site][mask], rtol=0, atol=1e-5)


def test_bos_policies_and_formatted_texts():
    model = tiny_model("llama")
    bos = model.tokenizer.bos_token_id
    plain = model.tokenize(["Hi"])
    assert plain.bos_added and plain.input_ids[0, 0] == bos
    model.bos = "never"
    assert model.tokenize(["Hi"]).input_ids[0].tolist() == model.tokenizer("Hi", add_special_tokens=False)["input_ids"]
    model.bos = "default"
    chat = model.tokenize(["Hi"], chat=True)
    # a chat prompt followed by an answer, tokenized as-is: the prompt's ids, then the answer's
    answered = model.tokenize([model.chat_prompt("Hi") + "Yes"], formatted=True)
    answer_ids = model.tokenizer("Yes", add_special_tokens=False)["input_ids"]
    assert answered.input_ids[0].tolist() == chat.input_ids[0].tolist() + answer_ids
    with pytest.raises(ValueError, match="pass one"):
        model.tokenize(["Hi"], chat=True, formatted=True)


def test_kept_logit_columns_equal_the_full_logits(model):
    """run_with_cache unembeds only the columns it returns ("last", a tail of k, none); they
    equal the full pass's logits, also for a k wider than a length bucket."""
    batch = model.tokenize(PROMPTS)
    full = model.forward(batch)
    last, _ = model.run_with_cache(batch, [], logits="last", batch_size=1)
    tail, _ = model.run_with_cache(batch, [], logits=3, batch_size=2)
    wide, _ = model.run_with_cache(batch, [], logits=batch.input_ids.shape[1] + 2, batch_size=1)
    assert torch.allclose(last, full[:, -1], atol=1e-5)
    assert torch.allclose(tail, full[:, -3:], atol=1e-5)
    real = batch.attention_mask.bool()
    assert torch.allclose(wide[:, 2:][real], full[real], atol=1e-5)
    with pytest.raises(ValueError, match="number of last columns"):
        model.run_with_cache(batch, [], logits=0)


def test_captures_without_logits_do_not_run_the_layers_above_them(model):
    """logits=None: layers above the highest captured site are skipped; the captures equal a
    whole pass's, and a final-norm capture still runs every layer."""
    from interp.arch.spec import get_module

    batch = model.tokenize(PROMPTS)
    sites = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_z"]
    _, whole = model.run_with_cache(batch, sites, logits="last")
    calls = []
    top = get_module(model.hf, model.spec.layers)[model.n_layers - 1]
    inside = next(top.children())  # the layer module's own hooks fire even when it is skipped
    handle = inside.register_forward_hook(lambda *a: calls.append(1))
    try:
        _, part = model.run_with_cache(batch, sites, logits=None)
        assert not calls
        model.run_with_cache(batch, ["ln_final.hook_scale"], logits=None)
        assert calls
    finally:
        handle.remove()
    for name in sites:
        assert torch.allclose(part[name], whole[name], atol=1e-6)
