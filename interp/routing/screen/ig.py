"""Integrated gradients (IG) of every head's interchange effect: AtP along the patch's path.

Hanna, Pezzelle and Belinkov 2024, "Have Faith in Faithfulness" (EAP-IG, arXiv 2403.17806),
at head granularity; Sundararajan et al. 2017 for integrated gradients. AtP (`atp.py`)
multiplies (donor z - base z) by the gradient at the base alone. Where the metric saturates
there, e.g. a gate whose output drives a downstream unit into a flat tanh on the harmful
prompt, that gradient is ~0 and AtP sees nothing to remove, however large the real effect
(Kramár et al. 2024, arXiv 2403.00745, section 3). IG averages the gradient over m points
of the straight path from base to donor instead:

    IG(h) = sum over patched positions p of (z_h^donor[p'] - z_h^b[p]) . (1/m) sum_k dM/dz_h (alpha_k)
    alpha_k = k / m, k = 0 .. m-1 (left Riemann sum: m = 1 is AtP exactly)

At alpha, every screened head's z, at every screened layer and patched position, is set to
base + alpha * (donor - base) in one pass (engine `RowHeadSet(straight_through=True)`): the
pass runs at the interpolated values while gradients flow as if each site were computed
normally, so a head's gradient includes its effect through later heads. One forward and
backward pass per prompt and point (m per prompt), batched like AtP. The sum over a path that
moves all heads at once is EAP-IG's; for a single screened head (or heads whose effects do
not interact) it converges to the exact patch as m grows (IG's completeness: the integral of
the gradient along the path is the metric's change). Necessity and sufficiency as in AtP.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...engine.row_edits import RowHeadSet
from .atp import Metric, attribution, donor_delta, prompt_grads
from .metric import continuation_nll
from .pairs import BENIGN, HARM, PairTokens


def ig_scores(model, tokens: PairTokens, pairs: Sequence[int], heads: Sequence[tuple[int, int]], align: str,
              batch_size: int, steps: int = 5,
              metric: Metric = continuation_nll) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(IG necessity [H, c], IG sufficiency [H, c], clean NLL [c, 2]) in nats, float64.

    `steps` = m >= 1 points per path (m = 1: AtP). Raises ValueError for steps < 1."""
    if steps < 1:
        raise ValueError(f"IG needs at least 1 step, got {steps}")
    pairs = list(pairs)
    layers = sorted({layer for layer, _ in heads})
    rows = [(i, m) for i in pairs for m in (HARM, BENIGN)]
    paper = align == "paper"
    clean = prompt_grads(model, tokens, rows, layers, batch_size, metric, continuation=paper)  # alpha = 0
    total = {row: {layer: g.double() for layer, g in res[2].items()} for row, res in clean.items()}
    deltas = {(i, m): {layer: donor_delta(tokens, i, m, clean[(i, m)][1][layer],
                                          clean[(i, BENIGN if m == HARM else HARM)][1][layer], align)
                       for layer in layers} for i, m in rows}
    mask = torch.zeros(len(layers), model.n_heads, dtype=torch.bool)
    for layer, head in heads:
        mask[layers.index(layer), head] = True
    for k in range(1, steps):
        edits = _path_edits(model, tokens, clean, deltas, layers, mask, k / steps)
        found = prompt_grads(model, tokens, rows, layers, batch_size, metric, continuation=paper, edits=edits)
        for row, (_, _, g) in found.items():
            for layer in layers:
                total[row][layer] += g[layer].double()
    mean = {row: {layer: g / steps for layer, g in per.items()} for row, per in total.items()}
    return attribution(tokens, pairs, heads, align, clean, mean)


def _path_edits(model, tokens: PairTokens, clean: dict, deltas: dict, layers: list[int], mask: torch.Tensor,
                alpha: float):
    """The edits function of `prompt_grads` for point `alpha`: per layer, every row's screened
    heads at base z + alpha * (donor z - base z) on its patched positions."""

    def edits(picked, batch, starts, held):
        width = batch.input_ids.shape[1]
        out = []
        for li, layer in enumerate(layers):
            values = torch.zeros(len(picked), held + width, model.n_heads, model.d_head, dtype=model.dtype)
            where = torch.zeros(len(picked), held + width, dtype=torch.bool)
            for r, (row, start) in enumerate(zip(picked, starts)):
                delta = deltas[row][layer]  # [L, H, d], 0 off the patched positions
                moved = (delta != 0).flatten(1).any(1)  # [L]
                point = clean[row][1][layer] + alpha * delta
                left = held + int((batch.attention_mask[r] == 0).sum())  # column of real position `start`
                values[r, left: left + point.shape[0] - start] = point[start:].to(model.dtype)
                where[r, left: left + point.shape[0] - start] = moved[start:]
            out.append(RowHeadSet(f"blocks.{layer}.attn.hook_z", positions=where, values=values,
                                  head_mask=mask[li].expand(len(picked), -1).clone(), straight_through=True))
        return out

    return edits
