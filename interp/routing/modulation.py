"""Step 6: modulation dose-response (arXiv 2604.04385, step 6).

+alpha * d is added to `blocks.{probe_layer}.hook_resid_post` (the decoder layer's output)
at all positions, prompt and generated (`Add(..., positions="all")`), with d the unit probe
direction; alpha runs over 0, step, ..., alpha_max. Positive strengths are applied to the
benign prompts (does refusal appear?), negative ones to the harmful prompts (does it go
away?). Outputs are classified refusal / answer / other by `interp.metrics.refusal` (the
paper uses LLM judges; the keyword classifier is the offline stand-in). The unsteered
generations (alpha = 0) cover every pair and give the refusal rates under both classifier
modes; the steered ones use the first `n_sweep` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from ..engine.edits import Add
from ..metrics.refusal import LABELS, MODES, classify_responses, refusal_rate
from .generation import generate_texts


@dataclass
class DoseResponse:
    table: pd.DataFrame  # prompts, alpha (signed), refusal, answer, other (fractions), n
    texts: pd.DataFrame  # prompts, alpha, prompt, response, label
    baseline: dict  # {mode: {"harmful": rate, "benign": rate}} unsteered, every pair, both modes
    layer: int


def steer_edit(layer: int, direction: torch.Tensor, alpha: float) -> Add:
    return Add(f"blocks.{layer}.hook_resid_post", positions="all", vector=direction, alpha=alpha)


def dose_response(model, harmful: Sequence[str], benign: Sequence[str], direction: torch.Tensor, layer: int,
                  alphas: Sequence[float], *, n_sweep: int | None = None, chat: bool = True, max_new_tokens: int = 32, batch_size: int = 8,
                  mode: str = "rules", progress: bool = False) -> DoseResponse:
    """Refusal / answer / other fractions per signed alpha (benign: +alpha, harmful: -alpha)."""
    from tqdm.auto import tqdm

    sweep = slice(0, n_sweep)
    runs = [("benign", a, benign if a == 0 else benign[sweep]) for a in alphas]
    runs += [("harmful", -a if a else 0.0, harmful if a == 0 else harmful[sweep]) for a in alphas]
    rows, texts, baseline = [], [], {}
    for name, alpha, prompts in tqdm(runs, desc="dose-response", disable=not progress, leave=False):
        edits = [] if alpha == 0 else [steer_edit(layer, direction, alpha)]
        out = generate_texts(model, prompts, edits=edits, chat=chat, max_new_tokens=max_new_tokens,
                             batch_size=batch_size)
        labels = classify_responses(out, mode)
        rows.append({"prompts": name, "alpha": float(alpha), "n": len(out),
                     **{label: labels.count(label) / len(labels) for label in LABELS}})
        texts += [{"prompts": name, "alpha": float(alpha), "prompt": p, "response": t, "label": lab}
                  for p, t, lab in zip(prompts, out, labels)]
        if alpha == 0:
            for m in MODES:
                baseline.setdefault(m, {})[name] = refusal_rate(out, m)
    return DoseResponse(pd.DataFrame(rows), pd.DataFrame(texts), baseline, layer)
