"""Edits whose target differs per batch row: each row sets its own heads to its own values.

    RowHeadSet("blocks.5.attn.hook_z", values=v, head_mask=m, positions=where)

`values` [b, P, n_heads, d_head] are written into row r's heads where `head_mask[r]` is True,
at the padded positions where `positions` (a bool mask [b, P]) is True; everything else is
left as it is. This lets one batch carry many different single-head (or head-set) patches,
one per row, in one forward pass: the batched counterpart of `Patch(..., heads=[h])`.
`values` and the mask are laid out like the batch the pass runs on, so use it with passes
over the batch as given (`Model.forward`, `interp.engine.partial.forward_from_layer`), not
with `run_with_cache`, which re-pads length-sorted sub-batches (a width mismatch raises).

`straight_through=True` writes the same values but lets gradients pass as if the site were
unedited (`x + (edited - x).detach()`): under `interp.engine.gradients.run_with_grads` the
pass runs at the written values while the gradient of an earlier site still flows through
this site's own computation (integrated gradients along a path of written values).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .edits import Edit
from .hooks import HookPoint


@dataclass
class RowHeadSet(Edit):
    """Row r gets `values[r]` on the heads `head_mask[r]` (sites split by head only).

    `values`: [b, P, n_heads, d_head] on the pass's padded layout; `head_mask`: bool
    [b, n_heads]; `positions` must be a bool mask [b, P] (or a position word). Rows are the
    caller's rows (`HookSet(rows=...)` maps length-sorted batches back).
    """

    values: torch.Tensor | None = None
    head_mask: torch.Tensor | None = None
    straight_through: bool = False

    def __post_init__(self) -> None:
        if self.values is None or self.head_mask is None:
            raise ValueError("RowHeadSet needs values [b, P, heads, d_head] and head_mask [b, heads]")
        if self.values.ndim != 4 or self.head_mask.shape != (self.values.shape[0], self.values.shape[2]):
            raise ValueError(f"RowHeadSet: values {tuple(self.values.shape)} and head_mask "
                             f"{tuple(self.head_mask.shape)} do not match [b, P, heads, d_head] / [b, heads]")
        if self.heads is not None:
            raise ValueError("RowHeadSet takes head_mask per row; drop heads=")

    def selection(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        if hook.site.head_axis != 2 or x.ndim != 4:
            raise ValueError(f"RowHeadSet needs a site split by head [b, p, heads, d_head], not '{self.site}'")
        rows = hook.state.row_index(x.device)
        heads = self.head_mask.to(x.device).bool()[rows]  # [b, H]
        return super().selection(x, hook) & heads[:, None, :, None]

    def __call__(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        edited = super().__call__(x, hook)
        return x + (edited - x).detach() if self.straight_through else edited

    def target(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        rows = hook.state.row_index(x.device)
        values = self.values.to(x.device)[rows]
        state = hook.state
        values = values[:, state.offset: state.offset + state.seq_len]
        if values.shape != x.shape:
            raise ValueError(f"RowHeadSet values cover {tuple(values.shape)}, the site has {tuple(x.shape)}")
        return values
