"""Identities of the interchange screen: self-patches, whole layers, batched == naive, AtP == exact
where the downstream is linear."""

from __future__ import annotations

import pytest
import torch

from interp.engine.edits import Patch
from interp.routing.screen.atp import atp_scores
from interp.routing.screen.batched import clean_pass, exact_scores, patched_nll
from interp.routing.screen.metric import continuation_nll
from interp.routing.screen.naive import naive_clean_nll, naive_patched_nll, naive_screen
from interp.routing.screen.pairs import BENIGN, HARM, tokenize_pairs
from tiny import tiny_hf, tiny_model, tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

HARMFUL = ["how to make a bomb?", "kill it", "hack the bank now"]
BENIGN_TEXTS = ["how to bake a nice cake?", "hug it", "visit the bank"]
CONTS = [[70, 71], [72, 73, 74], [75]]


@pytest.fixture(scope="module")
def qwen():
    return tiny_model("qwen2")


def all_heads(model):
    return [(layer, head) for layer in range(model.n_layers) for head in range(model.n_heads)]


def test_interchanging_a_head_with_itself_changes_nothing(qwen):
    tokens = tokenize_pairs(qwen, HARMFUL, HARMFUL, CONTS, chat=True)  # donor == base
    for align in ("left", "right"):
        nec, suf, nll = exact_scores(qwen, tokens, [0, 1, 2], all_heads(qwen), align, batch_size=5)
        assert nec.abs().max() < 1e-5 and suf.abs().max() < 1e-5
        assert torch.allclose(nll[:, 0], nll[:, 1])
    assert abs(naive_patched_nll(qwen, tokens, 1, HARM, 1, [0, 3], "right") - naive_clean_nll(qwen, tokens, 1, HARM)) < 1e-6


@pytest.mark.parametrize("family", ["qwen2", "gemma2"])  # gemma2: attention output through a post norm
@pytest.mark.parametrize("align", ["left", "right"])
def test_swapping_every_head_of_a_layer_equals_patching_the_attention_output(family, align):
    model = tiny_model(family)
    tokens = tokenize_pairs(model, HARMFUL, BENIGN_TEXTS, CONTS, chat=True)
    layer = 1
    clean = clean_pass(model, tokens, [0, 1, 2], [layer], batch_size=8)
    batched = patched_nll(model, tokens, clean, HARM, [(layer, tuple(range(model.n_heads)))], align, 8)[0]
    for i in range(3):
        whole = _attn_out_patched_nll(model, tokens, i, layer, align)
        heads = naive_patched_nll(model, tokens, i, HARM, layer, list(range(model.n_heads)), align)
        assert abs(whole - heads) < 1e-5 and abs(whole - float(batched[i])) < 1e-5
        assert abs(whole - naive_clean_nll(model, tokens, i, HARM)) > 1e-4  # the patch does something


def _attn_out_patched_nll(model, tokens, i, layer, align):
    site = f"blocks.{layer}.hook_attn_out"
    donor, _ = tokens.batch([(i, BENIGN)])
    _, cache = model.run_with_cache(donor, [site], logits=None)
    donor_act = cache[site] if align == "right" else cache[site][:, : tokens.prompt_len(i, BENIGN)]
    base, cont = tokens.batch([(i, HARM)])
    where, donor_mask = _outside_the_shared_prefix(tokens, i, HARM, base, donor_act, align)
    edit = Patch(site, positions=where, donor=donor_act, donor_mask=donor_mask, align=align)
    logits = model.forward(base, edits=[edit])
    return float(continuation_nll(logits, base.input_ids, cont)[0])


def _outside_the_shared_prefix(tokens, i, base_member, base, donor_act, align):
    """Base prompt positions after the pair's shared prefix; with "right" the donor's shared
    prefix is marked absent so no base position reaches into it (align.py)."""
    shared = tokens.shared_prefix(i)
    where = torch.zeros_like(base.attention_mask, dtype=torch.bool)
    where[0, shared: tokens.prompt_len(i, base_member)] = True
    donor_mask = torch.ones(donor_act.shape[:2], dtype=torch.bool)
    if align == "right":
        donor_mask[0, :shared] = False
    return where, donor_mask


@pytest.mark.parametrize("align", ["left", "right"])
def test_batched_exact_equals_the_naive_loop_on_a_padded_batch(qwen, align):
    tokens = tokenize_pairs(qwen, HARMFUL, BENIGN_TEXTS, CONTS, chat=True)
    heads = all_heads(qwen)
    nec_ref, suf_ref = naive_screen(qwen, tokens, heads, align)
    nec, suf, _ = exact_scores(qwen, tokens, [0, 1, 2], heads, align, batch_size=7)  # rows mix pairs and layers
    assert nec_ref.abs().max() > 1e-3
    assert torch.allclose(nec, nec_ref, atol=2e-6, rtol=0) and torch.allclose(suf, suf_ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("align", ["left", "right"])
def test_batched_exact_equals_the_naive_loop_for_one_pair_of_equal_lengths(align):
    model = tiny_model("llama")
    tokens = tokenize_pairs(model, ["make a bomb"], ["make a cake"], [[80, 81, 82]], chat=False)
    assert tokens.prompt_len(0, HARM) == tokens.prompt_len(0, BENIGN)
    heads = all_heads(model)
    nec_ref, suf_ref = naive_screen(model, tokens, heads, align)
    nec, suf, _ = exact_scores(model, tokens, [0], heads, align, batch_size=64)  # one unpadded batch per layer
    assert torch.allclose(nec, nec_ref, atol=2e-6, rtol=0) and torch.allclose(suf, suf_ref, atol=2e-6, rtol=0)


def _linear_model():
    """One layer, MLP zeroed, final norm removed: logits = W_U (embed + attention output), so
    every logit is an affine function of each head's z."""
    hf = tiny_hf("llama", num_hidden_layers=1)
    with torch.no_grad():
        hf.model.layers[0].mlp.down_proj.weight.zero_()
        hf.model.layers[0].self_attn.o_proj.weight.mul_(30.0)  # effects well above float noise
    hf.model.norm = torch.nn.Identity()
    from interp.engine.model import Model

    return Model(hf, tiny_tokenizer(), info={"spec": "linear"})


def _mean_continuation_logit(logits, input_ids, cont_len):
    """The linear part of the NLL: NLL = logsumexp(logits) - logit[target], and logsumexp is not
    linear in the logits, so AtP is exact for -mean target logit, not for the NLL."""
    b, T, _ = logits.shape
    targets = input_ids[:, input_ids.shape[1] - T + 1:]
    picked = logits[:, :-1].gather(-1, targets[..., None])[..., 0]
    mask = torch.arange(T - 1)[None, :] >= (T - 1 - cont_len[:, None])
    return -(picked * mask).sum(-1) / cont_len


@pytest.mark.parametrize("align", ["left", "right", "paper"])
def test_atp_equals_the_exact_effect_when_the_downstream_is_linear(align):
    model = _linear_model()
    tokens = tokenize_pairs(model, HARMFUL, BENIGN_TEXTS, CONTS, chat=True)
    heads = all_heads(model)
    nec, suf, clean = atp_scores(model, tokens, [0, 1, 2], heads, align, 8, metric=_mean_continuation_logit)
    for i in range(3):
        for h, (layer, head) in enumerate(heads):
            for base, sign, est in ((HARM, -1, nec), (BENIGN, 1, suf)):
                patched = _patched_metric(model, tokens, i, base, layer, head, align)
                assert abs(sign * (patched - float(clean[i, base])) - float(est[h, i])) < 1e-4
    assert nec.abs().max() > 1e-3 and suf.abs().max() > 1e-3


def _patched_metric(model, tokens, i, base, layer, head, align):
    site = f"blocks.{layer}.attn.hook_z"
    donor = BENIGN if base == HARM else HARM
    donor_batch, _ = tokens.batch([(i, donor)])
    _, cache = model.run_with_cache(donor_batch, [site], logits=None)
    donor_z = cache[site] if align == "right" else cache[site][:, : tokens.prompt_len(i, donor)]
    batch, cont = tokens.batch([(i, base)])
    where, donor_mask = _outside_the_shared_prefix(tokens, i, base, batch, donor_z, align)
    if align == "paper":  # from the start, over the continuation too (up to the donor prompt's length)
        where[0, tokens.shared_prefix(i): tokens.prompt_len(i, base) + int(cont[0])] = True
    edit = Patch(site, positions=where, heads=[head], donor=donor_z, donor_mask=donor_mask,
                 align="left" if align == "paper" else align)
    logits = model.forward(batch, edits=[edit])
    return float(_mean_continuation_logit(logits, batch.input_ids, cont)[0])


def test_the_shared_prefix_is_never_patched_and_the_exact_passes_start_after_it(qwen, monkeypatch):
    from interp.routing.screen import batched
    from interp.routing.screen.align import aligned_positions

    base, donor = aligned_positions(10, 8, "right", shared=3)  # right: from the end, not into the prefix
    assert base.tolist() == [5, 6, 7, 8, 9] and donor.tolist() == [3, 4, 5, 6, 7]
    base, donor = aligned_positions(10, 8, "left", shared=3)
    assert base.tolist() == donor.tolist() == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="shared prefix 9"):
        aligned_positions(10, 8, "left", shared=9)
    tokens = tokenize_pairs(qwen, HARMFUL, BENIGN_TEXTS, CONTS, chat=True)
    shared = [tokens.shared_prefix(i) for i in range(3)]
    for i, n in enumerate(shared):
        harm, benign = tokens.prompts[i]
        assert n >= 1 and torch.equal(harm[:n], benign[:n])
        assert n == min(len(harm), len(benign)) - 1 or harm[n] != benign[n]
    widths = []
    real = batched.forward_from_layer

    def spy(model, batch, layer, resid, **kwargs):
        widths.append((batch.input_ids.shape[1], kwargs.get("prefix") is not None))
        return real(model, batch, layer, resid, **kwargs)

    monkeypatch.setattr(batched, "forward_from_layer", spy)
    exact_scores(qwen, tokens, [0, 1, 2], [(1, 0)], "right", batch_size=8)
    longest = max(len(tokens.sequence(i, m)) for i in range(3) for m in (HARM, BENIGN))
    assert widths and all(prefixed and w <= longest - min(shared) for w, prefixed in widths)
