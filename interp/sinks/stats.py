"""Attention-sink statistics on attention patterns and residuals of ONE sequence.

Pure tensor functions (no model, no hooks), so they can be checked on hand-built patterns.
Every function takes tensors already cut to the sequence's real tokens ("real-aligned":
index 0 is the first real token, no padding), which is how `interp.sinks.measure` calls them.

Index convention: positions are 0-based over real tokens. Gu et al. (ICLR 2025) number
tokens from 1, so their `Sink_1` (the first token) is `sink_rate(alpha, eps, position=0)`
here, and their "queries t >= k" is "queries t >= position" (the token's own query
included).
"""

from __future__ import annotations

import torch


def real_pattern(pattern: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cut a left-padded pattern [H, P, P] of one row to its real tokens: [H, n, n].

    `mask` [P] is the row's attention mask; real tokens are contiguous at the end.
    """
    n = int(mask.sum())
    return pattern[:, -n:, -n:] if n else pattern[:, :0, :0]


def sink_importance(pattern: torch.Tensor) -> torch.Tensor:
    """Gu et al.'s importance of every key: alpha[h, k] = mean over queries t >= k of A[h, t, k].

    pattern: [H, n, n] real-aligned (queries x keys). Returns [H, n]. The last key has a
    single query (itself), so alpha there is just its self-attention.
    """
    n = pattern.shape[-1]
    queries_at_or_after = torch.ones(n, n, dtype=torch.bool, device=pattern.device).tril()  # [t, k]: t >= k
    summed = (pattern.float() * queries_at_or_after).sum(-2)  # [H, n]
    count = torch.arange(n, 0, -1, device=pattern.device, dtype=torch.float32)  # n - k queries
    return summed / count


def sink_rate(alpha: torch.Tensor, eps: float = 0.3, position: int = 0) -> float:
    """% of (layer, head) with alpha > eps at `position` (0-based; paper's k = position + 1).

    alpha: [..., n] with any leading (layer, head) axes, for one sequence.
    """
    if alpha.shape[-1] <= position:
        raise ValueError(f"sequence has {alpha.shape[-1]} tokens; no position {position}")
    return 100.0 * (alpha[..., position] > eps).float().mean().item()


def first_token_share(pattern: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention paid to the first token, per head: (mean over queries t >= 1, last query).

    pattern: [H, n, n] real-aligned. Query 0 is left out of the mean because it can only
    attend to itself (its share is 1 by construction). With n == 1 both are 1.
    """
    to_first = pattern[:, :, 0].float()  # [H, n]
    mean = to_first[:, 1:].mean(-1) if pattern.shape[-1] > 1 else to_first[:, 0]
    return mean, to_first[:, -1]


def value_out_norms(value: torch.Tensor, w_o: torch.Tensor, n_heads: int) -> torch.Tensor:
    """||v_j W_O^h|| for every token j and head h: [n, H].

    value: [n, n_kv, d_head] real-aligned value states (KV heads not expanded); query head h
    reads KV head h // (H / n_kv), as grouped-query attention repeats them. w_o: [d_model,
    H * d_head] (the o_proj weight, column block h = head h). The o_proj bias is shared by
    all tokens and left out.
    """
    n, n_kv, d_head = value.shape
    groups = n_heads // n_kv
    per_head = value.float().repeat_interleave(groups, dim=1)  # [n, H, d_head]
    w = w_o.float().reshape(w_o.shape[0], n_heads, d_head)  # [d_model, H, d_head]
    written = torch.einsum("nhd,mhd->nhm", per_head, w)  # [n, H, d_model]
    return written.norm(dim=-1)


def sink_vs_rest(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(value at token 0, mean over tokens 1..n-1) along the first axis; rest is NaN if n == 1."""
    rest = values[1:].float().mean(0) if values.shape[0] > 1 else torch.full_like(values[0].float(), float("nan"))
    return values[0].float(), rest


def secondary_sinks(alpha: torch.Tensor, eps: float, min_queries: int) -> list[tuple[int, int, float]]:
    """Tokens beyond the first with alpha > eps in some (layer, head).

    alpha: [L, H, n] of one sequence. Returns [(position, n_heads_above_eps, max_alpha)]
    for positions 1..n - min_queries: late tokens have few queries t >= k (the last has
    one), so their alpha is mostly self-attention and would flag every late token.
    """
    n = alpha.shape[-1]
    found = []
    for position in range(1, max(1, n - min_queries + 1)):
        column = alpha[..., position]  # [L, H]
        above = int((column > eps).sum())
        if above:
            found.append((position, above, float(column.max())))
    return found


def cosine_to_first(resid: torch.Tensor, position: int) -> torch.Tensor:
    """Cosine similarity of token `position`'s residual to token 0's, per layer.

    resid: [L, n, d_model] real-aligned. Returns [L].
    """
    a, b = resid[:, position].float(), resid[:, 0].float()
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)
