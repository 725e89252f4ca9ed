"""Checks, before any pass, that every per-row value of the edits covers the caller's batch.

Per-row values are indexed by the caller's row (the prompt's place in the list), whatever
chunks the engine cuts the batch into: `Add(alpha=[rows])`, a bool positions mask
[rows or 1, W (+ T)] (laid out over the whole batch's padded width W, see
`interp.engine.hooks`), `Patch` donors and `RowHeadSet` values. Each chunk then picks its
rows (`ForwardState.rows`) and re-maps mask columns to its own padding
(`ForwardState.width`). A value that does not cover the batch would fail in some chunk, or
silently land on the wrong tokens; it is refused here instead, naming the edit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .edits import Add, Edit, Patch
from .row_edits import RowHeadSet
from .token_edits import OnTokens


def check_row_values(edits: Sequence[Edit], n_rows: int, width: int) -> None:
    """ValueError naming the first edit whose per-row values do not fit a batch of `n_rows`
    prompts left-padded to `width` columns."""
    for edit in edits:
        _check(edit, n_rows, width)


def _check(edit: Edit, n_rows: int, width: int) -> None:
    where = f"{type(edit).__name__} on '{edit.site}'"
    if isinstance(edit, OnTokens) and edit.edit is not None:
        _check(edit.edit, n_rows, width)
    mask = edit.positions
    if isinstance(mask, torch.Tensor):
        if mask.ndim != 2 or mask.shape[0] not in (1, n_rows):
            raise ValueError(f"{where}: a positions mask is bool [prompts, padded width] = [{n_rows}, {width}] "
                             f"(or [1, {width}] for every row), got {tuple(mask.shape)}")
        if mask.shape[1] < width:
            raise ValueError(f"{where}: the positions mask has {mask.shape[1]} columns, the batch is {width} wide; "
                             "lay it out like model.tokenize(prompts).attention_mask (left-padded, whole batch)")
    alpha = getattr(edit, "alpha", None)
    if isinstance(edit, Add) and isinstance(alpha, torch.Tensor) and alpha.ndim == 1 and alpha.shape[0] < n_rows:
        raise ValueError(f"{where}: {alpha.shape[0]} per-row alphas for {n_rows} prompts; pass one alpha per prompt")
    if isinstance(edit, Patch) and edit.donor is not None and edit.donor.shape[0] < n_rows:
        raise ValueError(f"{where}: the donor has {edit.donor.shape[0]} rows for {n_rows} prompts; "
                         "pass one donor row per prompt")
    if isinstance(edit, RowHeadSet) and edit.values.shape[0] < n_rows:
        raise ValueError(f"{where}: values have {edit.values.shape[0]} rows for {n_rows} prompts")
