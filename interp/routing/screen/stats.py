"""Statistics over pairs: sign-flip permutation p-values, bootstrap top-k stability, ranks.

arXiv 2604.04385, step 3: a permutation null over pairs (10,000 random sign flips of the
per-pair scores) gives each head's p-value, and its max over heads the family-wise p; a bootstrap over pairs (2,000 resamples) gives
the stability of the top-k head set as its mean Jaccard similarity to the full-sample set.
Everything is vectorised over heads and permutations (one matrix product per block).
"""

from __future__ import annotations

import torch

BLOCK = 2_000  # permutations / resamples per matrix product (bounds memory at [BLOCK, H])


def sign_flip_pvalues(scores: torch.Tensor, permutations: int = 10_000, seed: int = 0, family: bool = False):
    """Two-sided p [H] that the mean over pairs of `scores` [H, n] is zero.

    Null: each pair's score is symmetric around zero, so flipping signs at random leaves the
    distribution unchanged. p = (1 + #{perm: |mean(s * x)| >= |mean(x)|}) / (1 + permutations)
    (Phipson & Smyth 2010: never 0, valid at any number of permutations). NaN rows give NaN.

    `family=True` returns (p, family-wise p) [H] each: Westfall & Young's (1993) single-step
    max-statistic adjustment from the same sign flips, p_fw(h) = (1 + #{perm: max over heads
    g of |mean(s * x_g)| >= |mean(x_h)|}) / (1 + permutations), the max over the non-NaN rows.
    It controls the chance that any head of the screen reaches its p under the null, which a
    per-head p over hundreds of heads does not.
    """
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    x = scores.double()
    valid = ~torch.isnan(x).any(1)
    observed = x.mean(1).abs()  # [H]
    count = torch.zeros(x.shape[0], dtype=torch.float64)
    count_fw = torch.zeros_like(count)
    tol = 1e-12 * observed.clamp_min(1.0)  # ties of exactly equal means count as extreme
    for signs in sign_blocks(x.shape[1], permutations, seed):
        null = (signs @ x.nan_to_num().T).abs() / x.shape[1]  # [m, H]
        count += (null >= observed[None, :] - tol[None, :]).sum(0)
        if family and bool(valid.any()):
            top = null[:, valid].max(1).values  # [m]
            count_fw += (top[:, None] >= observed[None, :] - tol[None, :]).sum(0)
    p = (1 + count) / (1 + permutations)
    p[~valid] = float("nan")
    if not family:
        return p
    p_fw = (1 + count_fw) / (1 + permutations)
    p_fw[~valid] = float("nan")
    return p, p_fw


def sign_blocks(n: int, permutations: int, seed: int):
    """The random sign flips [m, n] (+-1, float64), in blocks of at most BLOCK rows: the same
    draws for a given (n, permutations, seed)."""
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < permutations:
        m = min(BLOCK, permutations - done)
        yield torch.randint(0, 2, (m, n), generator=gen, dtype=torch.float64) * 2 - 1
        done += m


def top_k(values: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest values (NaN ranks last)."""
    return torch.topk(values.nan_to_num(float("-inf")), min(k, values.shape[-1]), dim=-1).indices


def bootstrap_topk_jaccard(scores: torch.Tensor, k: int, resamples: int = 2_000, seed: int = 0) -> float:
    """Mean Jaccard similarity of the bootstrap top-k set (by mean score) with the full-data set.

    scores: [H, n] per-pair scores of the heads that compete (no NaN rows). 1.0 = the same
    heads top every resample."""
    if resamples < 1:
        raise ValueError(f"bootstrap resamples must be >= 1, got {resamples}")
    x = scores.double()
    h, n = x.shape
    k = min(k, h)
    reference = torch.zeros(h, dtype=torch.bool)
    reference[top_k(x.mean(1), k)] = True
    gen = torch.Generator().manual_seed(seed)
    total, done = 0.0, 0
    while done < resamples:
        m = min(BLOCK, resamples - done)
        picks = torch.randint(0, n, (m, n), generator=gen)
        weights = torch.zeros(m, n, dtype=torch.float64).scatter_add_(1, picks, torch.ones(m, n, dtype=torch.float64))
        means = weights @ x.T / n  # [m, H]
        chosen = torch.zeros(m, h, dtype=torch.bool).scatter_(1, top_k(means, k), True)
        inter = (chosen & reference).sum(1).double()
        total += float((inter / (2 * k - inter)).sum())
        done += m
    return total / resamples


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors (average ranks for ties); NaN if < 3 values."""
    if a.numel() < 3:
        return float("nan")
    ra, rb = _ranks(a.double()), _ranks(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denom if denom > 0 else float("nan")


def _ranks(x: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(x.numel(), dtype=x.dtype)
    for value in torch.unique(x):  # average ranks over ties
        tied = x == value
        if int(tied.sum()) > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks
