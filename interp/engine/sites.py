"""Canonical site names (TransformerLens style) and where each one hooks an HF model.

User-facing shapes (b = batch, p = positions of this forward pass):

    hook_embed, hook_pos_embed                 [b, p, d_model]   embedding module output
    blocks.{l}.hook_resid_pre                  [b, p, d_model]   decoder layer input
    blocks.{l}.ln1.hook_scale                  [b, p, 1]         norm divisor (capture only)
    blocks.{l}.ln1.hook_normalized             [b, p, d_model]   norm module output (weight applied)
    blocks.{l}.attn.hook_q                     [b, p, n_heads, d_head]     projection output,
    blocks.{l}.attn.hook_k / hook_v            [b, p, n_kv_heads, d_head]  before q/k-norm and
                                                                 rotary; KV heads NOT expanded
    blocks.{l}.attn.hook_attn_scores           [b, n_heads, q, k] masked pre-softmax (eager)
    blocks.{l}.attn.hook_pattern               [b, n_heads, q, k] post-softmax (eager)
    blocks.{l}.attn.hook_z                     [b, p, n_heads, d_head]  o_proj input by head
    blocks.{l}.hook_attn_out                   [b, p, d_model]   what attention adds to the
                                                                 residual (after ln1_post if any)
    blocks.{l}.mlp.hook_post                   [b, p, d_mlp]     down_proj input (dense MLPs)
    blocks.{l}.moe.hook_router_logits          [b, p, n_experts] (capture only)
    blocks.{l}.moe.hook_selected               ExpertSelection(ids, weights), each [b, p, top_k]
    blocks.{l}.moe.hook_expert_bias            [b, p, n_experts] selection bias, zeros unless edited
                                                                 (expert toggles: interp.engine.experts)
    blocks.{l}.hook_mlp_out                    [b, p, d_model]   what the MLP adds to the residual
    blocks.{l}.hook_resid_post                 [b, p, d_model]   decoder layer output
    ln_final.hook_scale / ln_final.hook_normalized

Norm sites exist for every norm the family has (`ln1`, `ln1_post`, `ln2`, `ln2_post`).
Unlike TransformerLens, `hook_normalized` is the norm module's output with its weight
applied, i.e. exactly what the next module reads (and HF's last hidden state).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from ..arch.spec import ArchSpec, get_module, has_module

Io = Literal["output", "input", "attn_scores", "attn_pattern", "norm_scale", "router", "selected", "expert_bias",
             "sae"]  # "sae": a site of an attached SAE (interp.engine.sae_sites)


def has_key_axis(name: str) -> bool:
    """Whether site `name` is an attention pattern or score site ([b, heads, q, k]), whose last
    axis runs over key positions: its width is each batch's padded prompt, so values of
    batches of different widths are left-padded (or refused) on that axis too."""
    return name.endswith(("hook_pattern", "hook_attn_scores"))


class ExpertSelection(NamedTuple):
    """Top-k routing decision of one MoE layer: expert ids and their mixing weights."""

    ids: torch.Tensor  # [b, p, top_k] long
    weights: torch.Tensor  # [b, p, top_k]


@dataclass(frozen=True)
class SiteInfo:
    """One hookable site: its name, the module it hooks and how to view the tensor there."""

    name: str
    layer: int | None
    module_path: str
    io: Io
    pos_axis: int = 1  # axis of positions in the user-facing tensor
    head_axis: int | None = None
    heads: int | None = None  # number of heads when the site is split by head
    d_head: int | None = None
    part: tuple[int, int] | None = None  # slice of a fused projection's last dim (q|k|v)
    editable: bool = True

    def to_user(self, x: torch.Tensor) -> torch.Tensor:
        """Module tensor -> user-facing view (slice a fused projection, split heads)."""
        if self.part is not None:
            x = x[..., self.part[0] : self.part[1]]
        if self.heads is not None and self.io in ("output", "input"):
            x = x.view(*x.shape[:-1], self.heads, self.d_head)
        return x

    def from_user(self, new: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        """Inverse of `to_user`: put an edited view back into the module's tensor."""
        if self.heads is not None and self.io in ("output", "input"):
            new = new.reshape(*new.shape[:-2], self.heads * self.d_head)
        if self.part is not None:
            start, stop = self.part
            new = torch.cat([original[..., :start], new, original[..., stop:]], dim=-1)
        return new


_NAME = re.compile(r"^blocks\.(\d+)\.")


def layer_of(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def build_sites(spec: ArchSpec, model: nn.Module) -> dict[str, SiteInfo]:
    """Every site the loaded model offers, in forward order."""
    cfg = model.config
    sites: dict[str, SiteInfo] = {}

    def add(name: str, layer: int | None, path: str, io: Io, **kw) -> None:
        sites[name] = SiteInfo(name, layer, path, io, **kw)

    def add_norm(prefix: str, layer: int | None, path: str) -> None:
        add(f"{prefix}.hook_scale", layer, path, "norm_scale", editable=False)
        add(f"{prefix}.hook_normalized", layer, path, "output")

    add("hook_embed", None, spec.embed, "output")
    if spec.pos_embed:
        add("hook_pos_embed", None, spec.pos_embed, "output")
    n_heads, n_kv, d_qk = spec.n_heads(cfg), spec.n_kv_heads(cfg), spec.d_head_qk(cfg)
    for layer in range(spec.n_layers(cfg)):
        blk, path = f"blocks.{layer}", f"{spec.layers}.{layer}"
        attn = f"{path}.{spec.attn}"
        add(f"{blk}.hook_resid_pre", layer, path, "input")
        if spec.ln1:
            add_norm(f"{blk}.ln1", layer, f"{path}.{spec.ln1}")
        if spec.qkv_proj:
            widths = (n_heads * d_qk, n_kv * d_qk, n_kv * d_qk)
            starts = (0, widths[0], widths[0] + widths[1])
            for letter, start, width, heads in zip("qkv", starts, widths, (n_heads, n_kv, n_kv)):
                add(f"{blk}.attn.hook_{letter}", layer, f"{attn}.{spec.qkv_proj}", "output",
                    heads=heads, d_head=d_qk, part=(start, start + width), head_axis=2)
        elif spec.q_proj:
            for letter, proj, heads in (("q", spec.q_proj, n_heads), ("k", spec.k_proj, n_kv),
                                        ("v", spec.v_proj, n_kv)):
                add(f"{blk}.attn.hook_{letter}", layer, f"{attn}.{proj}", "output",
                    heads=heads, d_head=d_qk, head_axis=2)
        add(f"{blk}.attn.hook_attn_scores", layer, attn, "attn_scores", pos_axis=2, head_axis=1)
        add(f"{blk}.attn.hook_pattern", layer, attn, "attn_pattern", pos_axis=2, head_axis=1)
        add(f"{blk}.attn.hook_z", layer, f"{attn}.{spec.o_proj}", "input",
            heads=n_heads, d_head=spec.d_head(cfg), head_axis=2)
        if spec.ln1_post:
            add_norm(f"{blk}.ln1_post", layer, f"{path}.{spec.ln1_post}")
            add(f"{blk}.hook_attn_out", layer, f"{path}.{spec.ln1_post}", "output")
        else:
            add(f"{blk}.hook_attn_out", layer, attn, "output")
        if spec.ln2:
            add_norm(f"{blk}.ln2", layer, f"{path}.{spec.ln2}")
        mlp = f"{path}.{spec.mlp}"
        if spec.down_proj and has_module(model, f"{mlp}.{spec.down_proj}"):
            add(f"{blk}.mlp.hook_post", layer, f"{mlp}.{spec.down_proj}", "input")
        if spec.router and has_module(model, f"{mlp}.{spec.router}"):
            router = f"{mlp}.{spec.router}"
            add(f"{blk}.moe.hook_router_logits", layer, router, "router", editable=False)
            add(f"{blk}.moe.hook_selected", layer, router, "selected", editable=False)
            add(f"{blk}.moe.hook_expert_bias", layer, router, "expert_bias")
        if spec.ln2_post:
            add_norm(f"{blk}.ln2_post", layer, f"{path}.{spec.ln2_post}")
            add(f"{blk}.hook_mlp_out", layer, f"{path}.{spec.ln2_post}", "output")
        else:
            add(f"{blk}.hook_mlp_out", layer, mlp, "output")
        add(f"{blk}.hook_resid_post", layer, path, "output")
    add_norm("ln_final", None, spec.final_norm)
    for info in sites.values():  # fail at load time, not mid-forward, if a path is wrong
        get_module(model, info.module_path)
    return sites


def norm_divisor(x: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """The scale a norm divides by, computed in float32 like HF does: [..., 1]."""
    x = x.float()
    if kind == "layer":
        return (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt()
    return (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
