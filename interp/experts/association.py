"""Which experts go with a behaviour: routing statistics of two prompt sets.

Per prompt n, MoE layer l and expert e over the prompt's real tokens (optionally followed by
the model's greedy response, `with_responses`):

    count[n, l, e]    tokens whose top-k includes e
    weight[n, l, e]   summed routing weight of e (0 where not selected)
    tokens[n]         real tokens

Scores per (layer, expert), target set T against the other set O:

    freq         mean over prompts of count / tokens (MoTE's fTRI, per class)
    ftri         freq(T) - freq(O)                               (MoTE, arXiv 2502.11096)
    risk_diff    P(selected | token of T) - P(selected | token of O), pooled over tokens
                 (SteerMoE, arXiv 2509.09660)
    p_value      two-sided permutation p of `ftri`: prompt labels shuffled `permutations`
                 times, p = (1 + #{|ftri_perm| >= |ftri|}) / (1 + permutations)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine.experts import experts_per_layer
from ..engine.model import TokenBatch


@dataclass
class RoutingCounts:
    """Routing statistics of one prompt set; tensors [N, L_moe, E] and [N]."""

    count: torch.Tensor
    weight: torch.Tensor
    tokens: torch.Tensor


def with_responses(model, prompts: list[str], *, chat: bool = False, max_new_tokens: int = 32) -> TokenBatch:
    """Each prompt followed by its greedy response, as one left-padded batch; tokens after a
    response's end-of-sequence token are masked out."""
    out = model.generate(prompts, chat=chat, max_new_tokens=max_new_tokens)
    batch = model.tokenize(prompts, chat=chat)
    new = out.new_tokens
    eos = model.tokenizer.eos_token_id
    ended = (new == eos).long().cumsum(-1) - (new == eos).long()  # EOS itself still counts
    mask = torch.cat([batch.attention_mask, (ended == 0).long()], dim=1)
    return TokenBatch(out.sequences, mask, list(prompts), batch.bos_added)


def routing_counts(model, prompts: list[str] | TokenBatch, *, chat: bool = False, batch_size="auto",
                   progress: bool = False) -> RoutingCounts:
    """Selection counts and summed weights per prompt over its real tokens (prompt tokens, or
    every unmasked token of a `TokenBatch` such as `with_responses` makes)."""
    shape = experts_per_layer(model)
    layers = sorted(shape)
    n_experts = max(e for e, _ in shape.values())
    sites = [f"blocks.{layer}.moe.hook_selected" for layer in layers]
    _, cache = model.run_with_cache(prompts, sites, logits=None, chat=chat, to_cpu=True,
                                    batch_size=batch_size, progress=progress and "routing")
    real = cache.attention_mask.bool()  # [N, P]
    count = torch.zeros(real.shape[0], len(layers), n_experts)
    weight = torch.zeros_like(count)
    for i, site in enumerate(sites):
        sel = cache[site]
        onehot = torch.nn.functional.one_hot(sel.ids.long(), n_experts).float()  # [N, P, k, E]
        onehot = onehot * real[:, :, None, None]
        count[:, i] = onehot.sum((1, 2))
        weight[:, i] = (onehot * sel.weights.float()[..., None]).sum((1, 2))
    return RoutingCounts(count, weight, real.sum(-1).float())


def _ftri(freq: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """freq [N, X], labels [..., N] bool -> mean(T) - mean(O) [..., X]."""
    t = labels.to(freq.dtype)
    o = 1.0 - t
    return (t @ freq) / t.sum(-1, keepdim=True) - (o @ freq) / o.sum(-1, keepdim=True)


def associate(target: RoutingCounts, other: RoutingCounts, permutations: int = 1000,
              seed: int = 0) -> dict[str, torch.Tensor]:
    """Association scores [L_moe, E] of the target set against the other set (see module doc).

    Returns freq_target, freq_other, weight_target, weight_other (mean routing weight per
    token), ftri, risk_diff and p_value. Raises ValueError for an empty set.
    """
    if not len(target.tokens) or not len(other.tokens):
        raise ValueError("association needs at least one target and one other prompt")
    freq_t = target.count / target.tokens[:, None, None]
    freq_o = other.count / other.tokens[:, None, None]
    shape = freq_t.shape[1:]
    out = {
        "freq_target": freq_t.mean(0),
        "freq_other": freq_o.mean(0),
        "weight_target": (target.weight / target.tokens[:, None, None]).mean(0),
        "weight_other": (other.weight / other.tokens[:, None, None]).mean(0),
        "risk_diff": target.count.sum(0) / target.tokens.sum() - other.count.sum(0) / other.tokens.sum(),
    }
    out["ftri"] = out["freq_target"] - out["freq_other"]
    freq = torch.cat([freq_t, freq_o]).flatten(1).double()  # [N, L*E]
    n_t, n = len(freq_t), len(freq_t) + len(freq_o)
    observed = out["ftri"].flatten().double().abs()
    hits = torch.zeros_like(observed)
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, permutations, 256):
        m = min(256, permutations - start)
        order = torch.argsort(torch.rand(m, n, generator=gen), dim=1)
        labels = order < n_t  # [m, N]: a random n_t of the prompts play the target set
        hits += (_ftri(freq, labels).abs() >= observed - 1e-12).sum(0)
    out["p_value"] = ((1 + hits) / (1 + permutations)).float().view(shape)
    return out


def candidates(scores: dict[str, torch.Tensor], layers: list[int], n: int, by: str = "ftri") -> list[tuple[int, int]]:
    """The `n` (layer, expert) pairs with the highest `by` score (positive association first)."""
    flat = scores[by].flatten()
    order = torch.argsort(flat, descending=True)[:n]
    n_experts = scores[by].shape[1]
    return [(layers[int(i) // n_experts], int(i) % n_experts) for i in order]
