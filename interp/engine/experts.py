"""Expert toggles for mixture-of-experts layers: the `moe.hook_expert_bias` site and its edits.

Routing sites of an MoE layer l (every family in `interp.arch.moe`):

    blocks.{l}.moe.hook_router_logits   [b, p, n_experts]  raw router logits (capture only;
                                                            unchanged by toggles)
    blocks.{l}.moe.hook_selected        ExpertSelection(ids, weights) [b, p, top_k]: the
                                        experts the layer runs and their mixing weights,
                                        after any toggle (capture only)
    blocks.{l}.moe.hook_expert_bias     [b, p, n_experts] float32, zeros unless edited: a bias
                                        on the layer's selection ranking (see
                                        `interp.arch.moe.reselect`); -inf switches an expert
                                        off, +inf forces it on

When an edit changes `hook_expert_bias`, the engine recomputes the layer's top-k from the
router logits with the family's own rule, so the experts, their weights and the
renormalisation are the model's, minus the experts switched off (MoTE, arXiv 2502.11096:
"logit -inf before top-k"; DeepSeek-V3 through its selection bias). The edit runs before
any capture on the router, in forward passes and at every `generate` step (KV cache on or
off), and only at the positions and batch rows it names (pads are never touched).

    model.generate(prompts, edits=expert_toggles(model, off=[(3, 17)], on=[(5, 2)]))

Only routed experts can be toggled: shared experts (Qwen2-MoE, DeepSeek-V3) run on every
token outside the router. Toggles act through the router module, so a fused MoE kernel that
bypasses it (e.g. GPT-OSS with hub kernels, `use_kernels=True`) would ignore them, and so
would the routing captures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..arch.moe import n_experts, top_k
from ..arch.spec import get_module
from .edits import Edit
from .hooks import HookPoint

Expert = tuple[int, int]  # (layer, expert)


def bias_site(layer: int) -> str:
    return f"blocks.{layer}.moe.hook_expert_bias"


@dataclass
class ExpertToggle(Edit):
    """Switch experts of one MoE layer off (-inf bias) and/or force them on (+inf bias).

    `site` is `blocks.{l}.moe.hook_expert_bias`; `rows` (caller's prompt indices, None = all)
    restricts the toggle to some batch rows, so one batch can test one candidate per row.
    """

    off: Sequence[int] = ()
    on: Sequence[int] = ()
    rows: Sequence[int] | None = None

    def selection(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        sel = super().selection(x, hook)
        if self.rows is None:
            return sel
        wanted = torch.tensor(list(self.rows), device=x.device)
        keep = torch.isin(hook.state.row_index(x.device), wanted)
        return sel & keep.view(-1, *([1] * (x.ndim - 1)))

    def target(self, x, hook):
        out = x.clone()
        out[..., list(self.off)] = float("-inf")
        out[..., list(self.on)] = float("inf")
        return out


def moe_layers(model) -> list[int]:
    """Layers of `model` with a router (DeepSeek-V3's first dense layers are left out)."""
    return [model.site(n).layer for n in model.sites() if n.endswith(".moe.hook_expert_bias")]


def router_of(model, layer: int) -> torch.nn.Module:
    return get_module(model.hf, model.site(bias_site(layer)).module_path)


def experts_per_layer(model) -> dict[int, tuple[int, int]]:
    """{layer: (n_experts, top_k)} for every MoE layer."""
    return {layer: (n_experts(router_of(model, layer)), top_k(router_of(model, layer)))
            for layer in moe_layers(model)}


def check_experts(model, experts: Iterable[Expert], what: str = "expert") -> list[Expert]:
    """The (layer, expert) pairs, or ValueError naming the first one out of range."""
    shape = experts_per_layer(model)
    if not shape:
        raise ValueError(f"{model.spec.family} model has no mixture-of-experts layers; "
                         "expert toggles need an MoE model (Mixtral, Qwen2/3-MoE, OLMoE, DeepSeek-V3, GPT-OSS)")
    out = []
    for layer, expert in experts:
        if layer not in shape:
            raise ValueError(f"{what} {layer}:{expert}: layer {layer} has no router; MoE layers are "
                             f"{_ranges(sorted(shape))}")
        if not 0 <= expert < shape[layer][0]:
            raise ValueError(f"{what} {layer}:{expert}: expert out of range; layer {layer} has experts "
                             f"0..{shape[layer][0] - 1}")
        out.append((int(layer), int(expert)))
    return out


def expert_toggles(model, off: Iterable[Expert] = (), on: Iterable[Expert] = (),
                   rows: Sequence[int] | None = None, positions="all") -> list[ExpertToggle]:
    """One `ExpertToggle` edit per layer, checked against the model before anything runs.

    Raises ValueError for an index out of range, an expert both off and on, more experts
    forced on than top_k, or so many off that fewer than top_k remain.
    """
    off, on = check_experts(model, off, "expert"), check_experts(model, on, "expert")
    both = sorted(set(off) & set(on))
    if both:
        raise ValueError(f"expert {both[0][0]}:{both[0][1]} is both switched off and forced on")
    shape = experts_per_layer(model)
    per_layer: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for layer, expert in off:
        per_layer[layer][0].append(expert)
    for layer, expert in on:
        per_layer[layer][1].append(expert)
    edits = []
    for layer, (layer_off, layer_on) in sorted(per_layer.items()):
        total, k = shape[layer]
        if len(set(layer_on)) > k:
            raise ValueError(f"{len(set(layer_on))} experts forced on in layer {layer}, but it selects only top_k={k}")
        if total - len(set(layer_off)) < k:
            raise ValueError(f"{len(set(layer_off))} experts off in layer {layer} leave fewer than top_k={k} of {total}")
        edits.append(ExpertToggle(bias_site(layer), positions, off=sorted(set(layer_off)),
                                  on=sorted(set(layer_on)), rows=rows))
    return edits


def parse_experts(text: str | None) -> list[Expert]:
    """'3:17,5:2' -> [(3, 17), (5, 2)]; ValueError with the expected form otherwise."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        bits = part.strip().split(":")
        if len(bits) != 2 or not all(b.strip().lstrip("-").isdigit() for b in bits):
            raise ValueError(f"bad expert '{part.strip()}': write LAYER:EXPERT pairs, e.g. 3:17,5:2")
        out.append((int(bits[0]), int(bits[1])))
    return out


def _ranges(values: list[int]) -> str:
    return f"{values[0]}..{values[-1]}" if values == list(range(values[0], values[-1] + 1)) else str(values)
