"""The table of every site, its shape and the families that have it, built from the engine.

    PYTHONPATH=. python docs/_gen/sites_table.py > docs/_snippets/sites-table.md

For each supported family it builds the tiny test config of that family (tests/tiny.py) on
the meta device (no weights are allocated), asks the engine's own `build_sites` which sites
the model offers, and writes one row per site name (the layer index written `{l}`). Shapes
follow from what the engine records for each site (its kind, whether it is split by head);
the one-line description of each site is the only hand-written part, and a site without one
is an error. tests/docs/test_sites_table.py fails when the checked-in table differs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WHAT = {
    "hook_embed": "token embeddings (the embedding module's output)",
    "hook_pos_embed": "learned position embeddings",
    "blocks.{l}.hook_resid_pre": "decoder layer input (the residual stream)",
    "blocks.{l}.ln1.hook_scale": "divisor of the pre-attention norm",
    "blocks.{l}.ln1.hook_normalized": "pre-attention norm output, weight applied",
    "blocks.{l}.attn.hook_q": "query projection, before q-norm and rotary",
    "blocks.{l}.attn.hook_k": "key projection, before k-norm and rotary; KV heads not expanded",
    "blocks.{l}.attn.hook_v": "value projection; KV heads not expanded",
    "blocks.{l}.attn.hook_attn_scores": "masked pre-softmax scores (eager attention only)",
    "blocks.{l}.attn.hook_pattern": "attention pattern, post-softmax (eager attention only)",
    "blocks.{l}.attn.hook_z": "o_proj input split by head",
    "blocks.{l}.ln1_post.hook_scale": "divisor of the post-attention (sandwich) norm",
    "blocks.{l}.ln1_post.hook_normalized": "post-attention norm output",
    "blocks.{l}.hook_attn_out": "what attention adds to the residual (after ln1_post if any)",
    "blocks.{l}.ln2.hook_scale": "divisor of the pre-MLP norm",
    "blocks.{l}.ln2.hook_normalized": "pre-MLP norm output, weight applied",
    "blocks.{l}.mlp.hook_post": "MLP neurons: the down_proj input (dense MLP layers)",
    "blocks.{l}.moe.hook_router_logits": "router logits",
    "blocks.{l}.moe.hook_selected": "top-k routing decision: `ExpertSelection(ids, weights)`",
    "blocks.{l}.moe.hook_expert_bias": "selection bias, zeros unless edited: -inf switches an expert off, +inf forces it on",
    "blocks.{l}.ln2_post.hook_scale": "divisor of the post-MLP (sandwich) norm",
    "blocks.{l}.ln2_post.hook_normalized": "post-MLP norm output",
    "blocks.{l}.hook_mlp_out": "what the MLP (or MoE block) adds to the residual",
    "blocks.{l}.hook_resid_post": "decoder layer output",
    "ln_final.hook_scale": "divisor of the final norm",
    "ln_final.hook_normalized": "final norm output: what the unembedding reads",
}
"""One line per site template, in forward order; the generator refuses a site missing here."""

_LAYER = re.compile(r"^blocks\.\d+\.")


def template(name: str) -> str:
    """`blocks.7.attn.hook_z` -> `blocks.{l}.attn.hook_z`."""
    return _LAYER.sub("blocks.{l}.", name)


def shape(info) -> str:
    """The user-facing shape of a site, from what the engine records about it."""
    if info.io == "norm_scale":
        return "[b, p, 1]"
    if info.io in ("router", "expert_bias"):
        return "[b, p, n_experts]"
    if info.io == "selected":
        return "ids, weights: [b, p, top_k]"
    if info.io in ("attn_scores", "attn_pattern"):
        return "[b, n_heads, q, k]"
    if info.heads is not None:
        heads = "n_kv_heads" if info.name.endswith(("hook_k", "hook_v")) else "n_heads"
        return f"[b, p, {heads}, d_head]"
    if info.name.endswith("mlp.hook_post"):
        return "[b, p, d_mlp]"
    return "[b, p, d_model]"


def family_sites() -> dict[str, dict[str, list]]:
    """family -> {site template: [SiteInfo of each layer that has it]}, in forward order."""
    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny import FAMILIES, tiny_config

    from interp.arch import spec_for_model_type
    from interp.engine.sites import build_sites

    out: dict[str, dict[str, list]] = {}
    for family in FAMILIES:
        config = tiny_config(family)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        spec = spec_for_model_type(config.model_type)
        by_template: dict[str, list] = {}
        for name, info in build_sites(spec, model).items():
            by_template.setdefault(template(name), []).append(info)
        out[spec.family] = by_template
    return out


def render() -> str:
    per_family = family_sites()
    families = list(per_family)
    layers = {f: max(i.layer for infos in sites.values() for i in infos if i.layer is not None) + 1
              for f, sites in per_family.items()}
    offered = {name for sites in per_family.values() for name in sites}
    missing = sorted(offered - set(WHAT))
    order = [name for name in WHAT if name in offered]  # WHAT is in forward order
    if missing:
        raise SystemExit(f"sites without a description in docs/_gen/sites_table.py WHAT: {missing}")
    rows = ["| site | shape | edit | families | what |", "|---|---|---|---|---|"]
    for name in order:
        infos = {f: sites[name] for f, sites in per_family.items() if name in sites}
        first = next(iter(infos.values()))[0]
        have = []
        for family, found in infos.items():
            partial = first.layer is not None and len(found) < layers[family]
            have.append(f"{family} (some layers)" if partial else family)
        lacking = [f for f in families if f not in infos]
        if any("some" in h for h in have) or len(lacking) > 3:
            who = ", ".join(have)
        else:
            who = "all but " + ", ".join(lacking) if lacking else "all"
        edit = "yes" if first.editable else "capture only"
        rows.append(f"| `{name}` | `{shape(first)}` | {edit} | {who} | {WHAT[name]} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.stdout.write(render())
