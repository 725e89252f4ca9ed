"""Planted mechanisms for the LAC void tests: exact identity layers in a tiny model.

`plant_identities(model, identity)` zeroes the attention output and MLP down projections
(weights and biases) of the `identity` layers, so each returns its input exactly (norm
delta 0.0). Every other layer l is boosted by `boost**l` (its output projections, or its
post-sublayer norm weights in families with sandwich norms), so its norm delta dominates
the range of the earlier ones and it is active for every token at alpha <= 1.
"""

from __future__ import annotations

import torch

from interp.arch.spec import get_module


def plant_identities(model, identity, boost: float = 8.0):
    spec = model.spec
    with torch.no_grad():
        for layer in range(model.n_layers):
            base = f"{spec.layers}.{layer}"
            projections = [get_module(model.hf, f"{base}.{spec.attn}.{spec.o_proj}"),
                           get_module(model.hf, f"{base}.{spec.mlp}.{spec.down_proj}")]
            if layer in identity:
                for module in projections:
                    module.weight.zero_()
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
                continue
            factor = boost ** layer
            if spec.ln1_post:  # the post norm sets the size of what is added to the residual
                for name in (spec.ln1_post, spec.ln2_post):
                    weight = get_module(model.hf, f"{base}.{name}").weight
                    offset = spec.norm_weight_offset
                    weight.copy_(factor * (weight + offset) - offset)
            else:
                for module in projections:
                    module.weight.mul_(factor)
                    if getattr(module, "bias", None) is not None:
                        module.bias.mul_(factor)
    return model
