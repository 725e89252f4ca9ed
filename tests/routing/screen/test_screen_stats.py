"""The screen's statistics: sign-flip p-values uniform under the null and small on planted
effects, bootstrap Jaccard stability, Spearman against scipy."""

from __future__ import annotations

import pytest
import torch
from scipy import stats as sps

from interp.routing.screen.stats import bootstrap_topk_jaccard, sign_flip_pvalues, spearman


def test_sign_flip_p_values_are_uniform_on_null_data():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    # 400 null heads x 20 pairs, symmetric but non-Gaussian (Laplace-like) noise, varied scales
    noise = torch.distributions.Laplace(0.0, 1.0).sample((400, 20))
    scores = noise * torch.rand(400, 1, generator=gen) * 3
    p = torch.cat([sign_flip_pvalues(scores[k::4], 2_000, seed=k) for k in range(4)])  # several seeds
    result = sps.kstest(p.numpy(), "uniform")
    assert result.pvalue > 0.01, result
    assert 0.03 < float((p < 0.05).double().mean()) < 0.08


def test_sign_flip_p_values_are_small_for_planted_effects_and_never_zero():
    torch.manual_seed(1)
    scores = torch.randn(5, 30) + torch.tensor([0.0, 0.0, 1.0, -1.0, 3.0])[:, None]
    p = sign_flip_pvalues(scores, 10_000, seed=0)
    assert (p[2:] < 0.001).all() and (p[2:] >= 1 / 10_001).all()
    assert (p[:2] > 0.01).all()
    assert torch.isnan(sign_flip_pvalues(torch.tensor([[1.0, float("nan")], [1.0, 2.0]]), 100))[0]
    with pytest.raises(ValueError, match="permutations"):
        sign_flip_pvalues(scores, 0)


def test_bootstrap_jaccard_is_one_for_a_clear_top_set_and_lower_for_noise():
    torch.manual_seed(2)
    clear = torch.randn(10, 40) * 0.1 + torch.tensor([5.0, 4.0, 3.0] + [0.0] * 7)[:, None]
    assert bootstrap_topk_jaccard(clear, 3, 500) == 1.0
    noisy = torch.randn(10, 40)
    assert bootstrap_topk_jaccard(noisy, 3, 500) < 0.7


def test_spearman_matches_scipy_with_ties():
    a = torch.tensor([1.0, 2.0, 2.0, 5.0, 3.0, 0.5])
    b = torch.tensor([2.0, 1.0, 4.0, 4.0, 6.0, 0.0])
    assert spearman(a, b) == pytest.approx(sps.spearmanr(a.numpy(), b.numpy()).statistic, abs=1e-12)


def test_family_wise_p_is_the_max_statistic_over_the_same_sign_flips():
    """Westfall-Young single-step max-T, computed by brute force: for each sign flip, the
    largest |mean| over the heads; a head's p_fw counts the flips whose largest reaches it."""
    from interp.routing.screen.stats import sign_blocks

    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(6, 9, generator=gen, dtype=torch.float64) + torch.linspace(0, 1.5, 6)[:, None]
    scores[2] = float("nan")  # a head not measured: out of the family
    p, p_fw = sign_flip_pvalues(scores, 3_000, seed=5, family=True)
    assert torch.equal(p.nan_to_num(-1), sign_flip_pvalues(scores, 3_000, seed=5).nan_to_num(-1))  # unchanged
    signs = torch.cat(list(sign_blocks(9, 3_000, 5)))
    valid = [h for h in range(6) if h != 2]
    count = {h: 0 for h in valid}
    for s in signs:
        top = max(abs(float((s * scores[g]).mean())) for g in valid)
        for h in valid:
            count[h] += top >= abs(float(scores[h].mean())) - 1e-12
    for h in valid:
        assert float(p_fw[h]) == pytest.approx((1 + count[h]) / 3_001, abs=1e-12)
        assert p_fw[h] >= p[h]
    assert torch.isnan(p_fw[2]) and torch.isnan(p[2])
    one, one_fw = sign_flip_pvalues(scores[:1], 500, seed=1, family=True)
    assert torch.equal(one, one_fw)  # a family of one head: the per-head p
