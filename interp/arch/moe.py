"""Top-k expert selection of each MoE family, recomputed with a per-token selection bias.

transformers 5 routers (`*TopKRouter`) return `(router_logits, top_k_weights, top_k_ids)`
over flattened tokens. Three rules cover the supported families (read from the installed
transformers 5 sources):

    softmax   (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE)
              probs = softmax(logits); ids = topk(probs); weights = probs[ids],
              divided by their sum when `norm_topk_prob` (Mixtral: always)
    logit     (GPT-OSS)
              ids = topk(logits); weights = softmax(logits[ids])
    sigmoid   (DeepSeek-V3)
              scores = sigmoid(logits); ids = topk over the chosen groups of
              scores + e_score_correction_bias; weights = scores[ids] (normalised when
              `norm_topk_prob`) * routed_scaling_factor

`reselect` adds a bias [tokens, n_experts] to what each rule ranks (probabilities, logits,
bias-corrected sigmoid scores; for DeepSeek-V3 that is the correction bias itself) and
takes the weights from the model's own scores, never from the bias. A bias of -inf
removes the expert for that token as if it did not exist: it is never selected and the
family's normalisation runs over the remaining experts (for softmax routers without
`norm_topk_prob` the softmax itself runs over them). A bias of +inf always selects the
expert with its own weight. Source: MoTE (arXiv 2502.11096), section on expert toggling.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Rule = Literal["softmax", "logit", "sigmoid"]


def routing_rule(router: nn.Module) -> Rule:
    """Which selection rule a transformers 5 router module follows."""
    if hasattr(router, "e_score_correction_bias"):
        return "sigmoid"
    if type(router).__name__.startswith("GptOss"):
        return "logit"
    return "softmax"


def router_logits(router: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Raw router logits [tokens, n_experts] (float32) recomputed from the router's input.

    Every supported router is a linear map (`weight` [E, d], GPT-OSS also `bias`); its first
    output is not used because its meaning changed across transformers 5 releases."""
    flat = hidden.reshape(-1, router.weight.shape[-1]).float()
    bias = getattr(router, "bias", None)
    return nn.functional.linear(flat, router.weight.float(), None if bias is None else bias.float())


def n_experts(router: nn.Module) -> int:
    return int(router.weight.shape[0])


def top_k(router: nn.Module) -> int:
    """The router's k. Raises ValueError for a router that selects no top-k itself (DeepSeek-V3
    in transformers releases before its TopKRouter layout): toggles need the newer layout."""
    if not hasattr(router, "top_k"):
        import transformers

        raise ValueError(f"{type(router).__name__} in transformers {transformers.__version__} selects no "
                         "top-k itself, so its experts cannot be toggled or captured; upgrade transformers")
    return int(router.top_k)


def reselect(router: nn.Module, logits: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [t, k] float32, ids [t, k] long) of `router` with `bias` [t, E] on its ranking.

    Raises ValueError when some token has fewer than top_k experts left (too many removed).
    """
    k = top_k(router)
    bias = bias.float()
    removed = torch.isneginf(bias)
    if int((~removed).sum(-1).min()) < k:
        raise ValueError(f"an expert toggle leaves fewer than top_k={k} experts of {bias.shape[-1]} "
                         "selectable; switch fewer experts off in this layer")
    rule = routing_rule(router)
    if rule == "softmax":
        probs = torch.softmax(logits.float().masked_fill(removed, float("-inf")), dim=-1)
        ids = torch.topk(probs + bias, k, dim=-1).indices
        weights = probs.gather(1, ids)
        if getattr(router, "norm_topk_prob", True):
            weights = weights / weights.sum(-1, keepdim=True)
        return weights, ids
    if rule == "logit":
        ids = torch.topk(logits.float() + bias, k, dim=-1).indices
        return torch.softmax(logits.float().gather(1, ids), dim=-1), ids
    return _sigmoid_select(router, logits, bias, k)


def _sigmoid_select(router: nn.Module, logits: torch.Tensor, bias: torch.Tensor, k: int):
    scores = logits.float().sigmoid()
    choice = scores + router.e_score_correction_bias.float() + bias
    groups, n = int(router.num_group), scores.shape[-1]
    if groups > 1:
        group_scores = choice.view(-1, groups, n // groups).topk(2, dim=-1)[0].sum(-1)
        chosen = torch.topk(group_scores, k=int(router.topk_group), dim=-1, sorted=False)[1]
        keep = torch.zeros_like(group_scores).scatter_(1, chosen, 1).bool()
        keep = keep.unsqueeze(-1).expand(-1, groups, n // groups).reshape(-1, n)
        choice = choice.masked_fill(~keep, float("-inf"))
    ids = torch.topk(choice, k=k, dim=-1, sorted=False)[1]
    weights = scores.gather(1, ids)
    if router.norm_topk_prob:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    return weights * router.routed_scaling_factor, ids
