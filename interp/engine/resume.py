"""Captures that start at a decoder layer, reusing a clean pass for everything below it.

    clean_logits, clean = model.run_with_cache(prompts, sites + ["blocks.15.hook_resid_pre"], ...)
    _, knocked = model.run_with_cache(prompts, sites, edits=[Zero("blocks.16.attn.hook_z", heads=[3])],
                                      start=StartAt(15, clean))

An edit at layer l changes nothing below l. So a run whose edits all sit at layer >= `layer`
need not recompute layers 0..layer-1: it starts from the clean pass's
`blocks.{layer}.hook_resid_pre` (`interp.engine.partial.forward_from_layer`), and the sites it
asks for below `layer` are copied from the clean cache. The result equals the whole edited
pass (up to the float rounding of a different batch shape); per edited run the cost is
(L - layer) / L of it. Used by repeated knockouts of nearby heads (the routing knockout null).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .cache import ActivationCache
from .edits import Edit
from .partial import forward_from_layer
from .sites import has_key_axis

if TYPE_CHECKING:
    from .model import Model, TokenBatch


@dataclass
class StartAt:
    """Start at decoder `layer`; `clean` is an unedited `run_with_cache` of the same prompts at
    positions="all" holding `blocks.{layer}.hook_resid_pre` and every requested site below
    `layer` (a run at positions="last" reads their last column; other positions must match)."""

    layer: int
    clean: ActivationCache

    @property
    def resid_site(self) -> str:
        return f"blocks.{self.layer}.hook_resid_pre"


def check_start(model: "Model", start: StartAt, batch: "TokenBatch", sites: Sequence[str], positions,
                edits: Sequence[Edit]) -> list[str]:
    """The requested sites below the start layer (copied from the clean cache). Raises
    ValueError, before any pass, when the clean cache does not fit the run."""
    if not 0 <= start.layer < model.n_layers:
        raise ValueError(f"start layer {start.layer} out of range: model has layers 0..{model.n_layers - 1}")
    clean = start.clean
    if clean.positions != "all":
        raise ValueError(f"the clean cache holds positions={clean.positions!r}; capture it with positions='all' "
                         f"(the residual '{start.resid_site}' is needed at every position)")
    if start.resid_site not in clean:
        raise ValueError(f"the clean cache lacks '{start.resid_site}'; capture it in the clean run")
    if tuple(clean.input_ids.shape) != tuple(batch.input_ids.shape) or not torch.equal(clean.input_ids, batch.input_ids):
        raise ValueError("the clean cache was captured on other prompts; pass the same prompts (and chat flag)")
    below = [e.site for e in edits if (model.site(e.site).layer if model.site(e.site).layer is not None else -1) < start.layer]
    if below:
        raise ValueError(f"edits at {below} sit below the start layer {start.layer}; start at or below their layer")
    low = [s for s in sites if (model.site(s).layer if model.site(s).layer is not None else model.n_layers) < start.layer]
    missing = [s for s in low if s not in clean]
    if missing:
        raise ValueError(f"the clean cache lacks {missing}, which sit below the start layer {start.layer}")
    if low and positions not in ("all", "last"):
        raise ValueError(f"sites below the start layer are copied from the clean cache, which has positions "
                         f"'all' and 'last'; this run asks for {positions!r}")
    return low


def run_from(model: "Model", start: StartAt, sub: "TokenBatch", rows: list[int], grabs, edits: Sequence[Edit],
             keep: int, low: Sequence[str], store: dict, positions, shared=None,
             full_width: int | None = None) -> torch.Tensor:
    """Logits of the rows `rows` of the run (their batch `sub`, left-padded to its own width),
    from the start layer on; fills `store` with the low sites' clean values. `shared`:
    (tokens after the shared prefix of `sub`, prefix length P, its KV cache) to run only
    those tokens (`interp.engine.shared_prefix`)."""
    width = sub.input_ids.shape[1]
    resid = start.clean[start.resid_site][rows][:, -width:]
    if shared is None:
        logits = forward_from_layer(model, sub, start.layer, resid, edits=edits, hooks=grabs, logits_to_keep=keep,
                                    rows=rows, width=full_width)
    else:
        tail, length, cache = shared  # pad columns of resid[:, P:] are masked: any value works there
        logits = forward_from_layer(model, tail, start.layer, resid[:, length:], edits=edits, hooks=grabs,
                                    logits_to_keep=keep, rows=rows, prefix=cache)
    for name in low:
        value = start.clean[name][rows]
        if start.clean.positions == "all" and positions == "last":  # left padding: the last column
            value = value.select(model.site(name).pos_axis, -1)
        elif positions == "all":  # the clean cache is padded to the whole batch; keep this chunk's width
            axes = (2, 3) if has_key_axis(name) else (1,)
            for axis in axes:
                value = value.narrow(axis, value.shape[axis] - width, width)
        store[name] = value
    return logits
