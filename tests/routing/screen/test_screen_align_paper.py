"""align="paper": the authors' literal patch (gregfrank/how-alignment-routes,
src/routing_head_ablation.py), checked against a hand computation written from their
description: the donor's z from its prompt alone overwrites the base's positions
0..min(len(base prompt + continuation), len(donor prompt)), counted from the start."""

from __future__ import annotations

import pytest
import torch

from interp.engine.edits import Fn
from interp.engine.tokens import pad_rows
from interp.routing.screen.align import aligned_positions
from interp.routing.screen.batched import exact_scores
from interp.routing.screen.naive import naive_patched_nll
from interp.routing.screen.pairs import BENIGN, HARM, tokenize_pairs
from tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

# the benign (donor of the necessity patch) prompts are longer: the patch reaches the continuation
HARMFUL = ["kill it", "hack the bank"]
BENIGN_TEXTS = ["how to hug it gently and well?", "how do I visit the bank on a sunny day?"]
CONTS = [[70, 71, 72], [73, 74]]


def _by_hand(model, tokens, i, base, layer, head):
    """NLL of the base's continuation with head `head`'s z at positions 0..m-1 overwritten by
    the donor's z from a pass over the donor prompt alone (no shared code with align.py)."""
    donor = BENIGN if base == HARM else HARM
    site = f"blocks.{layer}.attn.hook_z"
    donor_ids = tokens.prompts[i][donor]
    _, cache = model.run_with_cache(pad_rows([donor_ids], ["donor"], tokens.bos_added, tokens.pad_id), [site],
                                    logits=None)
    donor_z = cache[site][0]  # [Ld, H, d]
    seq = torch.cat([tokens.prompts[i][base], tokens.continuations[i]])
    m = min(len(seq), len(donor_ids))

    def overwrite(x, hook):
        y = x.clone()
        y[0, :m] = donor_z[:m].to(y.dtype)
        return y

    logits = model.forward(pad_rows([seq], ["base"], tokens.bos_added, tokens.pad_id),
                           edits=[Fn(site, heads=[head], fn=overwrite)])
    n_prompt, k = len(tokens.prompts[i][base]), len(tokens.continuations[i])
    logp = torch.log_softmax(logits[0, n_prompt - 1: n_prompt + k - 1].double(), -1)
    return float(-logp.gather(-1, tokens.continuations[i][:, None]).mean()), m, n_prompt


def _clean(model, tokens, i, base):
    seq = torch.cat([tokens.prompts[i][base], tokens.continuations[i]])
    logits = model.forward(pad_rows([seq], ["base"], tokens.bos_added, tokens.pad_id))
    n_prompt, k = len(tokens.prompts[i][base]), len(tokens.continuations[i])
    logp = torch.log_softmax(logits[0, n_prompt - 1: n_prompt + k - 1].double(), -1)
    return float(-logp.gather(-1, tokens.continuations[i][:, None]).mean())


@pytest.mark.parametrize("chat", [True, False])
def test_the_paper_alignment_matches_a_hand_computation_and_reaches_the_continuation(chat):
    model = tiny_model("qwen2")
    tokens = tokenize_pairs(model, HARMFUL, BENIGN_TEXTS, CONTS, chat=chat)
    heads = [(0, 1), (1, 2), (2, 0)]
    nec, suf, _ = exact_scores(model, tokens, [0, 1], heads, "paper", batch_size=4)
    left, _, _ = exact_scores(model, tokens, [0, 1], heads, "left", batch_size=4)
    for i in range(2):
        for row, (layer, head) in enumerate(heads):
            patched, m, n_prompt = _by_hand(model, tokens, i, HARM, layer, head)
            assert m > n_prompt  # the donor prompt is longer: continuation positions are overwritten
            expected = _clean(model, tokens, i, HARM) - patched
            assert abs(float(nec[row, i]) - expected) < 2e-5
            assert abs(naive_patched_nll(model, tokens, i, HARM, layer, [head], "paper") - patched) < 2e-5
            patched_b, m_b, n_b = _by_hand(model, tokens, i, BENIGN, layer, head)
            assert m_b < n_b  # the shorter donor: prompt positions only, as with "left"
            assert abs(float(suf[row, i]) - (patched_b - _clean(model, tokens, i, BENIGN))) < 2e-5
    assert (nec - left).abs().max() > 1e-4  # overwriting the continuation changes the necessity


def test_paper_positions_run_past_the_base_prompt_only_up_to_the_donor_prompt():
    base, donor = aligned_positions(5, 9, "paper", shared=2, cont_len=3)  # min(5 + 3, 9) = 8
    assert base.tolist() == donor.tolist() == [2, 3, 4, 5, 6, 7]
    base, _ = aligned_positions(5, 7, "paper", shared=2, cont_len=3)  # min(8, 7) = 7
    assert base.tolist() == [2, 3, 4, 5, 6]
    base, _ = aligned_positions(5, 9, "left", shared=2, cont_len=3)  # left never passes the base prompt
    assert base.tolist() == [2, 3, 4]
