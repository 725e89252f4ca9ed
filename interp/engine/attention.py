"""An eager attention implementation with hook points for scores and patterns.

Fused kernels (sdpa, flash) never materialise the attention pattern, and the families'
own eager functions give no place to edit it. transformers 5 lets a model use any function
registered in its `AttentionInterface`; we register `steerlens_eager`, which computes what
every supported family's eager function computes (GQA repeat, optional logit soft-capping as
in Gemma 2, attention sinks as in GPT-OSS, float32 softmax) and calls the engine between the
steps:

    scores  = q k^T * scaling (soft-capped) + mask   -> blocks.{l}.attn.hook_attn_scores
    pattern = softmax(scores)                        -> blocks.{l}.attn.hook_pattern
    z       = pattern @ v

The engine installs callbacks as `module._steerlens_attn_hooks = {"scores": [fn], "pattern": [fn]}`
for the duration of a trace (lists, so traces can nest); with none installed this is plain eager attention.
One deliberate difference: GPT-2's own eager softmax runs in the input dtype; here it runs in
float32 (identical in float32, slightly more accurate in bf16).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

IMPL_NAME = "steerlens_eager"
PATTERN_IMPLS = ("eager", IMPL_NAME)


def steerlens_eager_attention(
    module: nn.Module,
    query: torch.Tensor,  # [batch, n_heads, q_pos, d_head]
    key: torch.Tensor,  # [batch, n_kv_heads, k_pos, d_head]
    value: torch.Tensor,  # [batch, n_kv_heads, k_pos, d_head_v]
    attention_mask: torch.Tensor | None,  # additive [batch, 1, q_pos, k_pos]
    scaling: float | None = None,
    dropout: float = 0.0,
    softcap: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # grouped-query attention: each KV head serves `groups` query heads
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # [b, H, q, k]
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, : key.shape[-2]]
    hooks = getattr(module, "_steerlens_attn_hooks", None)
    for fn in hooks.get("scores", ()) if hooks else ():
        scores = fn(scores)
    sinks = getattr(module, "sinks", None)
    if sinks is not None:  # GPT-OSS: a learned per-head logit that absorbs probability mass
        sink_col = sinks.reshape(1, -1, 1, 1).expand(scores.shape[0], -1, scores.shape[2], 1)
        combined = torch.cat([scores, sink_col.to(scores.dtype)], dim=-1)
        combined = combined - combined.max(dim=-1, keepdim=True).values
        pattern = torch.softmax(combined, dim=-1, dtype=combined.dtype)[..., :-1].to(value.dtype)
    else:
        pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    for fn in hooks.get("pattern", ()) if hooks else ():
        pattern = fn(pattern)
    pattern = nn.functional.dropout(pattern, p=dropout, training=module.training)
    z = torch.matmul(pattern, value).transpose(1, 2).contiguous()  # [b, q, H, d_head_v]
    return z, pattern


AttentionInterface.register(IMPL_NAME, steerlens_eager_attention)
AttentionMaskInterface.register(IMPL_NAME, eager_mask)


def attn_implementation(hf_model: nn.Module) -> str:
    return getattr(hf_model.config, "_attn_implementation", None) or "eager"


def enable_pattern_hooks(hf_model: nn.Module) -> None:
    """Switch an eager model to `steerlens_eager` (same numbers, plus hook points)."""
    if attn_implementation(hf_model) == IMPL_NAME:
        return
    if attn_implementation(hf_model) != "eager":
        raise PatternUnavailableError(
            f"attention patterns need eager attention, but this model runs "
            f"'{attn_implementation(hf_model)}', which never materialises them: "
            "load it with interp.load(..., attn_implementation='eager') (CLI: --attn eager) "
            "or call model.set_attn_implementation('eager')"
        )
    hf_model.set_attn_implementation(IMPL_NAME)


class PatternUnavailableError(ValueError):
    """Attention patterns were requested from a fused attention kernel."""
