"""The forward hook behind `blocks.{l}.moe.hook_expert_bias` (see `interp.engine.experts`).

It runs the site's callbacks on a zero bias [b, p, n_experts]; when one returns a bias, the
router's top-k is recomputed with `interp.arch.moe.reselect` and replaces the router's
(weights, ids). The logits are recomputed from the router's input and weights rather than
read from its first output, which some transformers 5 releases return as softmax
probabilities (Mixtral-style routers before about 5.20). Registered first on the router (`prepend=True`), so the capture sites
`hook_selected` on the same module see the toggled selection.
"""

from __future__ import annotations

import torch

from ..arch.moe import reselect, router_logits


def install_expert_bias(module: torch.nn.Module, run, state) -> object:
    """Register the forward hook of a `hook_expert_bias` site on a router; returns its handle."""

    def hook(mod, args, out):
        if not isinstance(out, tuple) or len(out) < 3:
            raise ValueError(f"{type(mod).__name__} returns no (logits, weights, ids) top-k: expert toggles "
                             "need the transformers 5 router layout of this family; upgrade transformers")
        zero = torch.zeros(state.batch, state.seq_len, int(mod.weight.shape[0]), device=out[0].device)
        bias = run(zero)
        if bias is None:
            return None
        flat = router_logits(mod, args[0])
        weights, ids = reselect(mod, flat, bias.reshape(flat.shape))
        return (out[0], weights.to(out[1].dtype), ids.to(out[2].dtype), *out[3:])

    return module.register_forward_hook(hook, prepend=True)
