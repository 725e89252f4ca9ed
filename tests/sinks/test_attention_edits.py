"""Sink-attention edits (interp.sinks.attention_edits) in a forward pass and during generation."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.sinks.attention_edits import (
    MoveToFirstToken,
    ScaleFirstToken,
    ZeroHead,
    heads_by_layer,
    move_to_first_token,
    zero_heads,
    zerotuning,
)

PROMPTS = ["a longer prompt here", "short"]  # different lengths: left padding in the batch
SITE = "blocks.1.attn.hook_pattern"


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _patterns(model, edits):
    _, cache = model.run_with_cache(PROMPTS, sites=[SITE, "blocks.1.attn.hook_v", "blocks.1.attn.hook_z"],
                                    edits=edits, logits=None)
    return cache


def _first_index(cache, row):
    return int((cache.attention_mask[row] == 0).sum())  # left pads before the first real token


def test_zerotuning_matches_the_renormalisation_formula(model):
    base = _patterns(model, [])
    gamma = 2.5
    edited = _patterns(model, [ScaleFirstToken(SITE, heads=[1], gamma=gamma)])
    for row in range(2):
        first = _first_index(base, row)
        a = base[SITE][row, 1, first:, first:]  # [n, n] real queries x real keys
        a0 = a[:, :1]
        expected = torch.cat([gamma * a0, a[:, 1:]], -1) / ((gamma - 1) * a0 + 1)
        torch.testing.assert_close(edited[SITE][row, 1, first:, first:], expected)
        torch.testing.assert_close(edited[SITE][row, 1, first:, first:].sum(-1), torch.ones(a.shape[0]))
    torch.testing.assert_close(edited[SITE][:, [0, 2, 3]], base[SITE][:, [0, 2, 3]])


def test_zerotuning_gamma_zero_removes_attention_to_token_zero(model):
    edited = _patterns(model, zerotuning({1: [0, 3]}, gamma=0.0))
    for row in range(2):
        first = _first_index(edited, row)
        pattern = edited[SITE][row, :, first + 1:, first]  # queries after token 0 -> key 0
        assert pattern[[0, 3]].abs().max() == 0
        assert pattern[[1, 2]].min() > 0


def test_zero_head_zeroes_the_head_output(model):
    edited = _patterns(model, zero_heads(["L1H2"]))
    real = edited.attention_mask.bool()
    z = edited["blocks.1.attn.hook_z"][real]  # [real tokens, H, d_head]; pads are never edited
    assert z[:, 2].abs().max() == 0
    assert z[:, 1].abs().max() > 0


def test_move_to_first_token_makes_the_head_output_token_zero_value(model):
    edited = _patterns(model, move_to_first_token([(1, 3)]))
    z, v = edited["blocks.1.attn.hook_z"], edited["blocks.1.attn.hook_v"]
    groups = model.n_heads // model.n_kv_heads
    for row in range(2):
        first = _first_index(edited, row)
        expected = v[row, first, 3 // groups].expand_as(z[row, first:, 3])
        torch.testing.assert_close(z[row, first:, 3], expected)


def test_query_positions_limit_the_edit(model):
    base = _patterns(model, [])
    edited = _patterns(model, [ZeroHead(SITE, heads=[0], positions="last")])
    torch.testing.assert_close(edited[SITE][:, 0, :-1], base[SITE][:, 0, :-1])
    assert edited[SITE][:, 0, -1].abs().max() == 0


def _step_recorder(seen):
    def record(x, hook):
        seen.append((x.clone(), hook.state.pad_left.clone(), hook.state.offset))
    return record


def test_zerotuning_applies_at_every_decode_step_with_kv_cache(model):
    seen = []
    gen = model.generate(PROMPTS, edits=zerotuning({1: [2]}, gamma=0.0), hooks=[(SITE, _step_recorder(seen))],
                         max_new_tokens=4, stop_at_eos=False)
    assert gen.new_tokens.shape[1] == 4
    decode = [s for s in seen if s[0].shape[2] == 1]
    assert len(decode) == 3  # prefill + 3 decode steps of one query each
    for pattern, pad, offset in decode:
        assert pattern.shape[-1] == offset + 1
        for row in range(2):
            assert pattern[row, 2, 0, int(pad[row])] == 0
            assert pattern[row, 1, 0, int(pad[row])] > 0
            torch.testing.assert_close(pattern[row, 2, 0].sum(), torch.tensor(1.0))


def test_move_to_first_token_applies_at_every_decode_step(model):
    seen = []
    model.generate(PROMPTS, edits=[MoveToFirstToken(SITE, heads=[0])], hooks=[(SITE, _step_recorder(seen))],
                   max_new_tokens=3, stop_at_eos=False)
    for pattern, pad, _ in seen:
        for row in range(2):
            head = pattern[row, 0, -1]  # last query of this pass
            assert head[int(pad[row])] == 1 and head.sum() == 1


def test_generation_with_edits_is_the_same_with_and_without_kv_cache(model):
    edits = zerotuning({0: None, 1: [1]}, gamma=3.0) + zero_heads({2: [0]})
    cached = model.generate(PROMPTS, edits=edits, max_new_tokens=6, stop_at_eos=False)
    uncached = model.generate(PROMPTS, edits=edits, max_new_tokens=6, stop_at_eos=False, use_cache=False)
    assert torch.equal(cached.sequences, uncached.sequences)


def test_edit_changes_the_logits(model):
    plain = model.forward(PROMPTS)
    edited = model.forward(PROMPTS, edits=move_to_first_token({l: None for l in range(model.n_layers)}))
    assert (plain - edited).abs().max() > 1e-3


def test_sliding_window_rows_that_cannot_see_token_zero_are_unchanged():
    gemma = tiny_model("gemma3")  # layers 0 and 2 slide over 8 tokens
    prompts = ["a prompt longer than the window"]
    site = "blocks.0.attn.hook_pattern"
    _, base = gemma.run_with_cache(prompts, sites=[site], logits=None)
    _, moved = gemma.run_with_cache(prompts, sites=[site], edits=move_to_first_token({0: [1]}), logits=None)
    torch.testing.assert_close(moved[site][0, 1, 8:], base[site][0, 1, 8:])  # token 0 outside the window
    assert (moved[site][0, 1, :8, 0] == 1).all()
    edits = move_to_first_token({0: None, 1: None}) + zerotuning({2: None}, gamma=0.0)
    cached = gemma.generate(prompts, edits=edits, max_new_tokens=5, stop_at_eos=False)
    uncached = gemma.generate(prompts, edits=edits, max_new_tokens=5, stop_at_eos=False, use_cache=False)
    assert torch.equal(cached.sequences, uncached.sequences)


def test_bad_head_specs_and_gamma_are_refused():
    with pytest.raises(ValueError, match="L<layer>H<head>"):
        heads_by_layer(["3.1"])
    with pytest.raises(ValueError, match="gamma"):
        ScaleFirstToken(SITE, gamma=-1.0)
    assert heads_by_layer(["L3H1", "l3h2", (0, 1)]) == {3: [1, 2], 0: [1]}
