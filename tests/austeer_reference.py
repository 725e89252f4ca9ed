"""The authors' AUSteer unit selection (zijian678/AUSteer, steer.py), written from their
description for the tests: beta = count of the majority sign of right - wrong over the N
triples / N (negative when more differences are below 0; positive on a tie of counts);
units listed layer by layer, coordinate by coordinate; a stable sort by |beta|
descending; the mask filled in that order until it holds k non-zeros.
"""

from __future__ import annotations

import torch


def reference_units(right: torch.Tensor, wrong: torch.Tensor, k: int, half: bool = True) -> list[tuple[int, int]]:
    """The authors' selection from [N, L, W] activations, in plain Python lists."""
    if half:
        right, wrong = right.half(), wrong.half()
    diff = (right - wrong).float()  # float16 subtraction is exact in sign; compare in float32
    n, n_layers, width = diff.shape
    units, scores = [], []
    for layer in range(n_layers):
        for dim in range(width):
            column = diff[:, layer, dim].tolist()
            up, down = sum(v > 0 for v in column), sum(v < 0 for v in column)
            scores.append(max(up, down) / n * (-1 if up < down else 1))
            units.append((layer, dim))
    order = sorted(range(len(scores)), key=lambda i: abs(scores[i]), reverse=True)  # Python's sort is stable
    chosen, filled = [], 0
    for i in order:
        if filled >= k:
            break
        if scores[i] != 0:
            chosen.append(units[i])
            filled += 1
    return chosen
