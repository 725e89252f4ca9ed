"""Activations and their gradients with respect to a scalar-per-row function of the logits.

    value, acts, grads = run_with_grads(model, batch, ["blocks.3.attn.hook_z"], metric)

One forward and one backward pass. `metric(logits) -> [b]` is any differentiable function
of the logits (HF's `logits_to_keep` tail when `logits_to_keep` > 0); the rows of a batch are
independent, so the gradient of `metric(...).sum()` at row r is the gradient of row r's
value. Gradients flow through every later site (nothing is detached between sites). The
model's weights keep `requires_grad=False`; the first hooked site is made a leaf instead, so
nothing upstream of it enters the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from .edits import Edit
from .prefix import after_prefix

if TYPE_CHECKING:
    from .model import Model, TokenBatch


def run_with_grads(model: "Model", batch: "TokenBatch", sites: Sequence[str],
                   metric: Callable[[torch.Tensor], torch.Tensor], edits: Sequence[Edit] = (), *,
                   logits_to_keep: int = 0, prefix=None) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(metric [b], {site: activation}, {site: d metric / d activation}), detached.

    Activations and gradients have the sites' user-facing shapes over all padded positions
    ([b, P, ...]). `prefix`: a fresh cache from `interp.engine.prefix.PrefixKV.cache` holding
    each row's first tokens; `batch` then holds the tokens after them, as in
    `interp.engine.partial.forward_from_layer`, and activations and gradients cover those
    tokens only (the prefix is a constant of the pass). Sites must be editable tensors on the residual path (not capture-only
    sites such as `hook_scale`). Raises ValueError for an unknown site or a metric whose
    output is not [b].
    """
    sites = list(dict.fromkeys(sites))
    for name in sites:
        if not model.site(name).editable:
            raise ValueError(f"site '{name}' is capture-only; gradients need an editable site")
    store: dict[str, torch.Tensor] = {}

    def keep(name):
        def fn(x, hook):
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            store[name] = x
            return x  # returned, so the pass continues from this very tensor
        return fn

    device = model.device
    kwargs = {"logits_to_keep": int(logits_to_keep)} if logits_to_keep else {}
    mask, positions = after_prefix(model, batch, prefix, kwargs)
    with torch.inference_mode(False), torch.enable_grad(), model.hooks([(n, keep(n)) for n in sites], edits):
        out = model.hf(input_ids=batch.input_ids.to(device), attention_mask=mask.to(device),
                       position_ids=positions.to(device), **kwargs)
        value = metric(out.logits)
        if value.shape != (batch.input_ids.shape[0],):
            raise ValueError(f"metric returned shape {tuple(value.shape)}; it must return one value per row [b]")
        missing = [n for n in sites if n not in store]
        if missing:
            raise ValueError(f"sites {missing} did not run in the forward pass")
        grads = torch.autograd.grad(value.sum(), [store[n] for n in sites], allow_unused=True)
    acts = {n: store[n].detach() for n in sites}
    return value.detach(), acts, {n: (torch.zeros_like(acts[n]) if g is None else g.detach())
                                  for n, g in zip(sites, grads)}
