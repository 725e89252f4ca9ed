"""Integrated gradients for the screen (issue 38): m = 1 is AtP, the linear and the m -> infinity
limits are the exact patch, and on a planted saturating gate AtP misranks the gate while IG
ranks it first."""

from __future__ import annotations

import pytest
import torch

import interp.routing.screen.screen as screen_module
from interp.routing.screen import ScreenConfig, screen_heads
from interp.routing.screen.atp import atp_scores
from interp.routing.screen.batched import exact_scores
from interp.routing.screen.ig import ig_scores
from interp.routing.screen.pairs import BENIGN, HARM, tokenize_pairs
from interp.routing.screen.verify import disagreeing, verification_rows
from routing_plant import gate_pairs
from saturating_plant import DECOY, GATE, saturating_model
from test_screen_identities import (BENIGN_TEXTS, CONTS, HARMFUL, _linear_model, _mean_continuation_logit,
                                    _patched_metric, all_heads)
from tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def planted():
    return saturating_model(), *gate_pairs()


@pytest.mark.parametrize("align", ["right", "paper"])
def test_ig_with_one_step_is_atp_exactly(align):
    model = tiny_model("qwen2")
    tokens = tokenize_pairs(model, HARMFUL, BENIGN_TEXTS, CONTS, chat=True)
    heads = all_heads(model)
    atp = atp_scores(model, tokens, [0, 1, 2], heads, align, 4)
    ig = ig_scores(model, tokens, [0, 1, 2], heads, align, 4, steps=1)
    assert all(torch.equal(a, b) for a, b in zip(atp, ig))
    two = ig_scores(model, tokens, [0, 1, 2], heads, align, 4, steps=2)
    assert not torch.equal(two[0], atp[0]) and torch.equal(two[2], atp[2])  # more points move the estimate
    with pytest.raises(ValueError, match="at least 1 step"):
        ig_scores(model, tokens, [0], heads, align, 4, steps=0)


def test_ig_equals_the_exact_patch_when_the_downstream_is_linear():
    model = _linear_model()
    tokens = tokenize_pairs(model, HARMFUL, BENIGN_TEXTS, CONTS, chat=True)
    heads = all_heads(model)
    nec, suf, clean = ig_scores(model, tokens, [0, 1, 2], heads, "right", 8, steps=4, metric=_mean_continuation_logit)
    for i in range(3):
        for h, (layer, head) in enumerate(heads):
            for base, sign, est in ((HARM, -1, nec), (BENIGN, 1, suf)):
                patched = _patched_metric(model, tokens, i, base, layer, head, "right")
                assert abs(sign * (patched - float(clean[i, base])) - float(est[h, i])) < 1e-4
    assert nec.abs().max() > 1e-3


def test_ig_converges_to_the_exact_patch_as_the_steps_grow(planted):
    """One head on the path: the integral of the gradient is the exact change (completeness);
    the left Riemann sum's error falls like 1/m."""
    model, harmful, benign, conts = planted
    tokens = tokenize_pairs(model, harmful[:2], benign[:2], conts[:2], chat=True)
    pairs = list(range(2))
    nec, suf, _ = exact_scores(model, tokens, pairs, [GATE], "right", 16)
    errors = []
    for steps in (1, 4, 32):
        n_ig, s_ig, _ = ig_scores(model, tokens, pairs, [GATE], "right", 16, steps=steps)
        errors.append(max(float((n_ig - nec).abs().max()), float((s_ig - suf).abs().max())))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1 * errors[0] and errors[2] < 0.1 * float(nec.abs().max())


def test_atp_misranks_the_saturating_gate_and_ig_ranks_it_first(planted):
    model, harmful, benign, conts = planted
    cfg = dict(permutations=200, bootstrap=20, top_k=2)
    exact = screen_heads(model, harmful, benign, conts, ScreenConfig(method="exact", **cfg), progress=False)
    atp = screen_heads(model, harmful, benign, conts, ScreenConfig(method="atp", **cfg), progress=False)
    ig = screen_heads(model, harmful, benign, conts, ScreenConfig(method="ig", **cfg), progress=False)
    g = exact.head_index(*GATE)
    others = exact.necessity_pct.clone()
    others[g] = float("-inf")
    assert exact.gate() == GATE and exact.necessity_pct[g] > 5 * others.max()
    scale = 100 / float(exact.baseline_delta.mean())
    atp_nec = atp.atp_necessity.mean(1) * scale
    assert atp.gate() == DECOY  # AtP names the decoy: the saturated unit hides the gate
    assert abs(float(atp_nec[g])) < 0.2 * float(exact.necessity_pct[g])
    assert float(atp.atp_sufficiency[g].mean()) * scale > 0.5 * float(exact.sufficiency_pct[g])  # linear side: seen
    # --method ig names the gate without any exact verification
    assert ig.gate() == GATE and not bool(ig.exact.any()) and ig.estimator == "IG (m=5)"
    assert float(ig.atp_necessity[g].mean()) * scale > 0.5 * float(exact.necessity_pct[g])
    assert bool(disagreeing(atp.atp_necessity.mean(1), atp.atp_sufficiency.mean(1),
                            float(exact.baseline_delta.mean()))[g])


def test_the_verification_list_ranks_by_either_estimate_and_adds_disagreeing_heads():
    nec = torch.tensor([0.001, 0.30, 0.20, 0.002, 0.0001, 0.05])
    suf = torch.tensor([0.50, 0.25, 0.21, 0.003, 0.0101, 0.04])
    rows, top = verification_rows(nec, suf, gap=1.0, verify=2, verify_random=0, seed=0)
    assert top == [0, 1]  # head 0: necessity ~0 but sufficiency 0.5
    # head 4 disagrees 100x and its larger estimate is 1% of the gap: verified outside the top;
    # head 3 disagrees less than 10x, head 2 agrees
    assert rows == [0, 1, 4]
    rows, _ = verification_rows(nec, suf, gap=2.0, verify=2, verify_random=0, seed=0)
    assert rows == [0, 1]  # 0.01 is 0.5% of a 2-nat gap: too small to flag
    rows, _ = verification_rows(nec, suf, gap=1.0, verify=2, verify_random=2, seed=0)
    assert len(rows) == 5 and {0, 1, 4} <= set(rows)


def test_a_gate_outside_the_estimates_top_verify_is_warned_about(planted, monkeypatch):
    model, harmful, benign, conts = planted
    real = screen_module.atp_scores

    def hide_the_gate(model_, tokens, pairs, heads, *args, **kwargs):
        nec, suf, nll = real(model_, tokens, pairs, heads, *args, **kwargs)
        g = heads.index(GATE)
        nec[g] *= 0.01
        suf[g] = nec[g]  # both estimates ~0: ranked low, not flagged
        return nec, suf, nll

    monkeypatch.setattr(screen_module, "atp_scores", hide_the_gate)
    screen = screen_heads(model, harmful, benign, conts, ScreenConfig(method="atp+exact", verify=1, verify_random=7,
                                                                     permutations=200, bootstrap=20, top_k=2),
                          progress=False)
    assert screen.gate() == GATE and GATE not in screen.fast_top  # measured only as a random head
    warning = screen.fast_rank_warning()
    assert "L0H1 was not in the AtP screen's top 1" in warning and "--verify" in warning
    assert screen.summary()["warning"] == warning
