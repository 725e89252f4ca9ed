"""Passes that start after a cached prefix (`interp.engine.prefix`) equal whole passes.

Rows of one batch have different prompts, different own prefixes (the batch uses the
shortest) and different suffix lengths, so the pads sit between prefix and suffix; the
suffix pass starts at every layer from the clean residual, with and without a per-row head
edit, and must give the whole pass's logits at the same real positions."""

from __future__ import annotations

import pytest
import torch

from interp.engine.partial import forward_from_layer
from interp.engine.prefix import prefix_kv
from interp.engine.row_edits import RowHeadSet
from interp.engine.tokens import pad_rows
from tiny import tiny_hf, tiny_model, tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["The cat sat on the mat and then it slept", "Hi there you two", "A much longer prompt than the others here"]
OWN_PREFIX = [5, 3, 4]  # each row's own shared prefix; the batch starts after the shortest


def _rows(model):
    ids = []
    for text in PROMPTS:
        tb = model.tokenize([text])
        ids.append(tb.input_ids[0][tb.attention_mask[0].bool()])
    return ids


def _setup(model):
    ids = _rows(model)
    start = min(OWN_PREFIX)
    whole = pad_rows(ids, PROMPTS, False, int(model.tokenizer.pad_token_id))
    suffix = pad_rows([r[start:] for r in ids], PROMPTS, False, int(model.tokenizer.pad_token_id))
    kv = prefix_kv(model, [r[:p] for r, p in zip(ids, OWN_PREFIX)])
    return ids, start, whole, suffix, kv


def _suffix_values(whole_values, whole, suffix, start):
    """[b, start + S, ...] layout of a whole-batch tensor's real positions >= start."""
    out = whole_values.new_zeros((whole_values.shape[0], start + suffix.input_ids.shape[1], *whole_values.shape[2:]))
    for r in range(whole_values.shape[0]):
        real = whole_values[r][whole.attention_mask[r].bool()][start:]
        out[r, out.shape[1] - real.shape[0]:] = real
    return out


def _model(family):
    if family == "gemma2":  # sliding-window layers, with a window that covers the pass
        from interp.engine.model import Model

        return Model(tiny_hf("gemma2", sliding_window=64), tiny_tokenizer(), info={"spec": "gemma2-wide"})
    return tiny_model(family)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "gpt2"])
def test_a_pass_after_a_cached_prefix_equals_the_whole_pass(family):
    model = _model(family)
    ids, start, whole, suffix, kv = _setup(model)
    sites = [f"blocks.{l}.hook_resid_pre" for l in range(model.n_layers)]
    full, cache = model.run_with_cache(whole, sites, logits="all")
    expected = _suffix_values(full, whole, suffix, start)[:, start:]
    real = suffix.attention_mask.bool()
    for layer in range(model.n_layers):
        resid = _suffix_values(cache[sites[layer]], whole, suffix, start)[:, start:]
        logits = forward_from_layer(model, suffix, layer, resid, prefix=kv.cache([0, 1, 2], start))
        assert torch.allclose(logits[real], expected[real], atol=1e-5), (family, layer)
        tail = forward_from_layer(model, suffix, layer, resid, logits_to_keep=2, prefix=kv.cache([0, 1, 2], start))
        assert torch.allclose(tail, expected[:, -2:], atol=1e-5)


def test_per_row_head_edits_after_a_prefix_equal_them_in_the_whole_pass():
    model = tiny_model("qwen2")
    ids, start, whole, suffix, kv = _setup(model)
    site, layer = "blocks.1.attn.hook_z", 1
    full, cache = model.run_with_cache(whole, [site, "blocks.1.hook_resid_pre"], logits=None)
    values = torch.randn_like(cache[site])
    heads = torch.zeros(3, model.n_heads, dtype=torch.bool)
    heads[0, 1] = heads[2, [0, 3]] = True
    where = whole.attention_mask.bool().clone()
    for r, n in enumerate(OWN_PREFIX):  # nothing inside the prefixes is edited
        where[r, : where.shape[1] - len(ids[r]) + n] = False
    reference = model.forward(whole, edits=[RowHeadSet(site, positions=where, values=values, head_mask=heads)])
    moved_where = _suffix_values(where[..., None].float(), whole, suffix, start)[..., 0].bool()
    edit = RowHeadSet(site, positions=moved_where, values=_suffix_values(values, whole, suffix, start),
                      head_mask=heads)
    resid = _suffix_values(cache["blocks.1.hook_resid_pre"], whole, suffix, start)[:, start:]
    logits = forward_from_layer(model, suffix, layer, resid, edits=[edit], prefix=kv.cache([0, 1, 2], start))
    expected = _suffix_values(reference, whole, suffix, start)[:, start:]
    real = suffix.attention_mask.bool()
    assert torch.allclose(logits[real], expected[real], atol=1e-5)
    assert (reference - model.forward(whole)).abs().max() > 1e-3  # the edit does something


def test_a_cache_longer_than_a_prefix_is_refused():
    model = tiny_model("llama")
    kv = prefix_kv(model, [torch.tensor([1, 2, 3]), torch.tensor([4, 5])])
    assert kv.length(0) == 3 and kv.cache([0, 1], 2).get_seq_length() == 2
    with pytest.raises(ValueError, match="exceed prefix"):
        kv.cache([0, 1], 3)
    with pytest.raises(ValueError, match="exceed prefix"):
        kv.cache([0, 1], [2, 3])
    with pytest.raises(ValueError, match="2 prefix lengths for 1 rows"):
        kv.cache([0], [2, 2])
    with pytest.raises(ValueError, match="at least one token"):
        prefix_kv(model, [torch.tensor([], dtype=torch.long)])


def test_a_sliding_window_shorter_than_the_pass_is_refused():
    model = tiny_model("gemma2")  # window 8: pads between prefix and suffix would count as distance
    ids, start, whole, suffix, kv = _setup(model)
    _, cache = model.run_with_cache(whole, ["blocks.0.hook_resid_pre"], logits=None)
    resid = _suffix_values(cache["blocks.0.hook_resid_pre"], whole, suffix, start)[:, start:]
    with pytest.raises(ValueError, match="sliding window is 8 tokens"):
        forward_from_layer(model, suffix, 0, resid, prefix=kv.cache([0, 1, 2], start))


def test_gradients_after_a_cached_prefix_equal_those_of_the_whole_pass():
    from interp.engine.gradients import run_with_grads

    model = tiny_model("llama")
    ids, start, whole, suffix, kv = _setup(model)
    sites = ["blocks.0.attn.hook_z", "blocks.2.attn.hook_z"]

    def metric(logits):
        return logits[:, -1].logsumexp(-1) - logits[:, -1, 7]

    value, acts, grads = run_with_grads(model, whole, sites, metric, logits_to_keep=1)
    value_s, acts_s, grads_s = run_with_grads(model, suffix, sites, metric, logits_to_keep=1,
                                              prefix=kv.cache([0, 1, 2], start))
    assert torch.allclose(value, value_s, atol=1e-5)
    real = suffix.attention_mask.bool()
    for site in sites:
        moved = _suffix_values(grads[site], whole, suffix, start)[:, start:]
        assert torch.allclose(grads_s[site][real], moved[real], atol=1e-6)
        assert torch.allclose(acts_s[site][real], _suffix_values(acts[site], whole, suffix, start)[:, start:][real],
                              atol=1e-5)
    assert grads["blocks.0.attn.hook_z"].abs().max() > 1e-4


def _own_suffix(whole_values, whole, starts, width, held):
    """[b, held + width, ...]: row r's real positions >= starts[r] at the right end."""
    out = whole_values.new_zeros((whole_values.shape[0], held + width, *whole_values.shape[2:]))
    for r in range(whole_values.shape[0]):
        real = whole_values[r][whole.attention_mask[r].bool()][starts[r]:]
        out[r, out.shape[1] - real.shape[0]:] = real
    return out


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "gpt2"])
def test_rows_after_prefixes_of_their_own_lengths_equal_the_whole_pass(family):
    """Each row skips its own prefix (cache left-padded to the longest, masked; positions
    continue from each row's own prefix), with per-row head edits after the prefixes."""
    model = _model(family)
    ids, _, whole, _, kv = _setup(model)
    held = max(OWN_PREFIX)
    suffix = pad_rows([r[p:] for r, p in zip(ids, OWN_PREFIX)], PROMPTS, False, int(model.tokenizer.pad_token_id))
    width = suffix.input_ids.shape[1]
    site, sites = "blocks.1.attn.hook_z", [f"blocks.{l}.hook_resid_pre" for l in range(model.n_layers)]
    full, cache = model.run_with_cache(whole, sites + [site], logits="all")
    values = torch.randn_like(cache[site])
    heads = torch.zeros(3, model.n_heads, dtype=torch.bool)
    heads[0, 1] = heads[2, [0, 3]] = True
    where = whole.attention_mask.bool().clone()
    for r, n in enumerate(OWN_PREFIX):
        where[r, : where.shape[1] - len(ids[r]) + n] = False
    reference = model.forward(whole, edits=[RowHeadSet(site, positions=where, values=values, head_mask=heads)])
    real = suffix.attention_mask.bool()
    for layer in range(model.n_layers):
        resid = _own_suffix(cache[sites[layer]], whole, OWN_PREFIX, width, held)[:, held:]
        logits = forward_from_layer(model, suffix, layer, resid, prefix=kv.cache([0, 1, 2], OWN_PREFIX))
        expected = _own_suffix(full, whole, OWN_PREFIX, width, held)[:, held:]
        assert torch.allclose(logits[real], expected[real], atol=1e-5), (family, layer)
    edit = RowHeadSet(site, positions=_own_suffix(where[..., None].float(), whole, OWN_PREFIX, width, held)[..., 0].bool(),
                      values=_own_suffix(values, whole, OWN_PREFIX, width, held), head_mask=heads)
    resid = _own_suffix(cache[sites[1]], whole, OWN_PREFIX, width, held)[:, held:]
    logits = forward_from_layer(model, suffix, 1, resid, edits=[edit], prefix=kv.cache([0, 1, 2], OWN_PREFIX))
    expected = _own_suffix(reference, whole, OWN_PREFIX, width, held)[:, held:]
    assert torch.allclose(logits[real], expected[real], atol=1e-5)
    assert (reference - full).abs().max() > 1e-3  # the edit does something
