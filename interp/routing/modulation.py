"""Step 6: modulation dose-response (arXiv 2604.04385, step 6).

+alpha * d is added to `blocks.{probe_layer}.hook_resid_post` (the decoder layer's output)
at all positions, prompt and generated (`Add(..., positions="all")`), with d the unit probe
direction; alpha runs over 0, step, ..., alpha_max (all strengths of one side in one batched
generation, each row with its own alpha). Positive strengths are applied to the
benign prompts (does refusal appear?), negative ones to the harmful prompts (does it go
away?). Outputs are classified refusal / answer / other by `interp.metrics.refusal` (the
paper uses LLM judges; the keyword classifier is the offline stand-in). The unsteered
generations (alpha = 0) cover every pair and give the refusal rates under both classifier
modes; the steered ones use `n_sweep` pairs spread evenly over the list (`swept_prompts`:
the shipped pairs are sorted by category, so the first few would all be weapons), and each
curve's alpha = 0 point is taken over those same pairs, so that the step from 0 to the first
strength is steering alone, not a change of prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from ..engine.edits import Add
from ..metrics.refusal import LABELS, MODES, classify_responses, refusal_rate


@dataclass
class DoseResponse:
    table: pd.DataFrame  # prompts, alpha (signed), refusal, answer, other (fractions), n: the swept pairs
    texts: pd.DataFrame  # prompts, alpha, prompt, response, label (alpha 0: every pair)
    baseline: dict  # {mode: {"harmful": rate, "benign": rate}} unsteered, every pair, both modes
    layer: int


def steer_edit(layer: int, direction: torch.Tensor, alpha: float | torch.Tensor) -> Add:
    """+alpha * direction at `blocks.{layer}.hook_resid_post`, every position; `alpha` may
    hold one strength per prompt (`Add`'s per-row alpha)."""
    return Add(f"blocks.{layer}.hook_resid_post", positions="all", vector=direction, alpha=alpha)


def swept_prompts(n: int, n_sweep: int | None) -> list[int]:
    """Indices of the `n_sweep` prompts (all `n` when None or larger) spread evenly over 0..n-1,
    in order: i * n // n_sweep."""
    k = n if n_sweep is None else min(n, n_sweep)
    return [i * n // k for i in range(k)]


def sweep_rows(n: int, n_sweep: int | None, alphas: Sequence[float], sign: float) -> list[tuple[float, int]]:
    """(signed alpha, prompt index) of one side's generations: alpha 0 on all `n` prompts,
    every other alpha on the `swept_prompts`."""
    swept = swept_prompts(n, n_sweep)
    rows = [(0.0, i) for i in range(n)] if 0 in alphas else []
    return rows + [(sign * a, i) for a in alphas if a != 0 for i in swept]


def dose_response(model, harmful: Sequence[str], benign: Sequence[str], direction: torch.Tensor, layer: int,
                  alphas: Sequence[float], *, n_sweep: int | None = None, chat: bool = True, max_new_tokens: int = 32,
                  batch_size: int | str = 8, mode: str = "rules", progress: bool = False) -> DoseResponse:
    """Refusal / answer / other fractions per signed alpha (benign: +alpha, harmful: -alpha).

    Each side is one greedy generation over all its (alpha, prompt) rows, each row steered
    by its own strength (`Add` with per-row alpha), in length-sorted chunks of
    `batch_size`: one call per side instead of one per strength, and full chunks.
    The table's rows (the curves) are over the swept prompts only, alpha 0 included;
    `baseline` (filled when 0 is among `alphas`) is over every prompt."""
    rows, texts, baseline = [], [], {}
    for name, prompts, sign in (("benign", list(benign), 1.0), ("harmful", list(harmful), -1.0)):
        plan = sweep_rows(len(prompts), n_sweep, alphas, sign)
        swept = set(swept_prompts(len(prompts), n_sweep))
        strengths = torch.tensor([a for a, _ in plan], dtype=torch.float32)
        gen = model.generate([prompts[i] for _, i in plan], edits=[steer_edit(layer, direction, strengths)],
                             chat=chat, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             progress=f"dose-response ({name})" if progress else False)
        labels = classify_responses(gen.texts, mode)
        by_alpha: dict[float, list[int]] = {}  # signed strength -> its rows, in sweep order
        for k, (a, _) in enumerate(plan):
            by_alpha.setdefault(a, []).append(k)
        for alpha, at in by_alpha.items():
            got = [labels[k] for k in at if plan[k][1] in swept]
            rows.append({"prompts": name, "alpha": float(alpha), "n": len(got),
                         **{label: got.count(label) / len(got) for label in LABELS}})
            texts += [{"prompts": name, "alpha": float(alpha), "prompt": prompts[plan[k][1]], "response": gen.texts[k],
                       "label": labels[k]} for k in at]
            if alpha == 0:
                for m in MODES:
                    baseline.setdefault(m, {})[name] = refusal_rate([gen.texts[k] for k in at], m)
    return DoseResponse(pd.DataFrame(rows), pd.DataFrame(texts), baseline, layer)
