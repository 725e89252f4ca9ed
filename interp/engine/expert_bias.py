"""The forward hook behind `blocks.{l}.moe.hook_expert_bias` (see `interp.engine.experts`).

It runs the site's callbacks on a zero bias [b, p, n_experts]; when one returns a bias, the
router's top-k is recomputed with `interp.arch.moe.reselect` and replaces the router's
(weights, ids). Registered first on the router (`prepend=True`), so the capture sites
`hook_selected` on the same module see the toggled selection.
"""

from __future__ import annotations

import torch

from ..arch.moe import reselect


def install_expert_bias(module: torch.nn.Module, run, state) -> object:
    """Register the forward hook of a `hook_expert_bias` site on a router; returns its handle."""

    def hook(mod, args, out):
        logits = out[0]
        flat = logits.reshape(-1, logits.shape[-1])
        zero = torch.zeros(state.batch, state.seq_len, flat.shape[-1], device=flat.device)
        bias = run(zero)
        if bias is None:
            return None
        weights, ids = reselect(mod, flat, bias.reshape(flat.shape))
        return (out[0], weights.to(out[1].dtype), ids.to(out[2].dtype), *out[3:])

    return module.register_forward_hook(hook, prepend=True)
