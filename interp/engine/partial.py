"""Forward passes that start at a decoder layer from a cached residual stream.

    resid = cache["blocks.5.hook_resid_pre"]                # [b, P, d_model], from a clean pass
    logits = forward_from_layer(model, batch, 5, resid, edits=[...], logits_to_keep=6)

Everything below `layer` is identical to the pass the residual was cached from, so it need
not be computed again: layers 0..layer-1 are skipped (`interp.engine.skipping.SkipLayers`,
no compute), `blocks.{layer}.hook_resid_pre` is set to the cached residual, and layers
layer..L-1, the final norm and the unembedding run as usual, with `edits` and `hooks`
applied. The embedding module still runs (a table lookup) because the HF model builds its
masks and rotary embeddings from the ids; its output is discarded.

The result equals a full forward pass whose first `layer` layers produced `resid_pre`
(up to float rounding of a different batch shape). Only single passes; the one cache it
takes is `prefix` (`interp.engine.prefix`): then `batch` holds only the tokens after a
prefix of P tokens whose keys and values every layer reads from the cache, so the pass costs
(T - P) / T of the whole one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .edits import Edit
from .hooks import HookFn
from .prefix import after_prefix
from .skipping import SkipLayers
from .token_edits import refuse_sequences

if TYPE_CHECKING:
    from .model import Model, TokenBatch


def forward_from_layer(model: "Model", batch: "TokenBatch", layer: int, resid_pre: torch.Tensor | None,
                       edits: Sequence[Edit] = (), hooks: Sequence[tuple[str, HookFn]] = (), *,
                       logits_to_keep: int = 0, prefix=None, rows: list[int] | None = None,
                       skip_above: Sequence[int] = (), width: int | None = None) -> torch.Tensor:
    """Logits [b, S or logits_to_keep, vocab] of `batch` [b, S] run from decoder layer `layer`.

    `resid_pre` [b, S, d_model] is `blocks.{layer}.hook_resid_pre` on `batch`'s left-padded
    layout (pad positions are ignored by the attention mask; any value works there).
    `logits_to_keep` > 0 unembeds only the last that many positions (HF's argument).
    `prefix`: a fresh cache from `PrefixKV.cache(rows, P)` holding row r's first P tokens;
    `batch` then holds each row's tokens after them (left-padded among themselves, so the
    pads sit between prefix and suffix), positions count from P, and position masks and
    values of edits are laid out over [b, P + S] (the engine's layout for passes after a
    cache; give bool masks, not position words or ints, which assume left padding only).
    `rows`: each row's index in the caller's larger batch (donor-indexed edits line up), and
    `width` that batch's padded width (bool position masks laid out over it; see `hooks`).
    `resid_pre=None` (layer 0 only): run from the embedding, e.g. a whole pass after `prefix`.
    `skip_above`: layers above everything the caller reads, not run (their outputs unused).
    Raises ValueError for a layer out of range or a residual of the wrong shape.
    """
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"layer {layer} out of range: model has layers 0..{model.n_layers - 1}")
    expected = (*batch.input_ids.shape, model.d_model)
    if resid_pre is None and layer != 0:
        raise ValueError(f"a pass from layer {layer} needs resid_pre; only layer 0 runs from the embedding")
    if resid_pre is not None and tuple(resid_pre.shape) != expected:
        raise ValueError(f"resid_pre has shape {tuple(resid_pre.shape)}, the batch needs {expected} [b, P, d_model]")
    device = model.device

    def set_resid(x, hook):
        return resid_pre.to(device=x.device, dtype=x.dtype)

    if prefix is not None:
        for edit in edits:
            refuse_sequences(edit, "forward_from_layer(prefix=...)", "run the whole sequence without a prefix")
    kwargs = {"logits_to_keep": int(logits_to_keep)} if logits_to_keep else {}
    mask, positions = after_prefix(model, batch, prefix, kwargs)
    start = [] if resid_pre is None else [(f"blocks.{layer}.hook_resid_pre", set_resid)]
    with SkipLayers(model, whole=[*range(layer), *skip_above], allow_cache=prefix is not None), \
            model.hooks([*start, *hooks], edits, rows=rows, width=width):
        out = model.hf(input_ids=batch.input_ids.to(device), attention_mask=mask.to(device),
                       position_ids=positions.to(device), **kwargs)
    return out.logits
