"""The authors' per-sequence statistic of massive activations (Sun et al., COLM 2024; their
code: locuslab/massive-activations, main_llm.py `--exp2`, and its layer-wise figure).

For each sequence s and decoder layer l, over its [T_s, d] output h (float64): the `top`
largest |h| over all tokens and dimensions (sorted, largest first) and `torch.median(|h|)`
(the lower middle value of the T_s * d entries). The figure plots the mean of each over
the sequences. Ours (`MassiveResult.max_abs` / `median_abs`) pools every real token of
every prompt instead, so one token that repeats in every prompt (e.g. BOS) can fill the
whole pooled top-3; docs/fidelity/massive.md compares the two.
"""

from __future__ import annotations

import torch


def per_sequence_stats(resid: list[torch.Tensor], top: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(top [L, top], median [L]) float64: the mean over sequences of each sequence's `top`
    largest |h| and of its median |h|. resid: one [L, T_s, d] tensor per sequence.

    A sequence with fewer than `top` entries contributes NaN to the ranks it lacks.
    ValueError without sequences or with top < 1."""
    if not resid:
        raise ValueError("per-sequence statistics need at least one sequence")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    tops, medians = [], []
    for r in resid:
        flat = r.abs().double().flatten(1)  # [L, T_s * d]
        values = flat.topk(min(top, flat.shape[1]), dim=1).values  # [L, <= top], largest first
        if values.shape[1] < top:
            values = torch.cat([values, values.new_full((values.shape[0], top - values.shape[1]), float("nan"))], 1)
        tops.append(values)
        medians.append(flat.median(dim=1).values)  # the lower middle value, as torch.median
    return torch.stack(tops).mean(0), torch.stack(medians).mean(0)
