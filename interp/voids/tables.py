"""Summaries of LAC activation maps (see `interp.voids.maps`): % of layers used, per-layer
activation frequency, tokens with the fewest active layers, and the phase comparison.

Maps are bool [N, tokens, L] with a bool mask [N, tokens] of real tokens; every statistic
is over real tokens only, and a phase with no tokens gives None / NaN rather than 0.
"""

from __future__ import annotations

import math

import pandas as pd
import torch


def used_pct(active: torch.Tensor, mask: torch.Tensor) -> float | None:
    """% of (token, layer) decisions that are active; None when the phase has no tokens."""
    n_tokens = int(mask.sum())
    if n_tokens == 0:
        return None
    return 100.0 * float(active[mask].float().mean())


def layer_frequency(active: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[L] fraction of real tokens for which each layer is active (NaN with no tokens)."""
    if int(mask.sum()) == 0:
        return torch.full((active.shape[-1],), float("nan"))
    return active[mask].float().mean(0)


def layer_table(prompt_active, prompt_mask, response_active, response_mask) -> pd.DataFrame:
    prompt = layer_frequency(prompt_active, prompt_mask)
    response = layer_frequency(response_active, response_mask)
    return pd.DataFrame({
        "layer": range(prompt.shape[0]),
        "prompt_active": prompt.tolist(),
        "response_active": response.tolist(),
        "response_minus_prompt": (response - prompt).tolist(),
    })


def token_table(prompt_tokens, response_tokens, response_next, prompt_active, prompt_mask,
                response_active, response_mask) -> pd.DataFrame:
    """One row per real token of each phase: how many layers were active for it."""
    records = []
    n_layers = prompt_active.shape[-1]
    for phase, tokens, active, mask in (("prompt", prompt_tokens, prompt_active, prompt_mask),
                                        ("response", response_tokens, response_active, response_mask)):
        counts = active.sum(-1)  # [N, T]
        for row, texts in enumerate(tokens):
            for index, text in enumerate(texts):
                if not bool(mask[row, index]):
                    continue
                records.append({
                    "prompt": row, "phase": phase, "position": index, "token": text,
                    "next_token": response_next[row][index] if phase == "response" else "",
                    "n_active": int(counts[row, index]), "active_frac": float(counts[row, index]) / n_layers,
                })
    columns = ["prompt", "phase", "position", "token", "next_token", "n_active", "active_frac"]
    return pd.DataFrame(records, columns=columns)


def fewest_active(per_token: pd.DataFrame, k: int) -> list[dict]:
    """The k tokens (either phase) with the fewest active layers, in table order on ties."""
    if per_token.empty:
        return []
    ordered = per_token.sort_values("n_active", kind="stable").head(k)
    return [{"prompt": int(r.prompt), "phase": r.phase, "position": int(r.position), "token": r.token,
             "n_active": int(r.n_active)} for r in ordered.itertuples()]


def phase_comparison(prompt_freq: list[float], response_freq: list[float], majority: float) -> dict:
    """Layers used (active for >= `majority` of a phase's tokens) in one phase but not the other."""
    if any(math.isnan(v) for v in response_freq) or any(math.isnan(v) for v in prompt_freq):
        return {"majority": majority, "prompt_only": None, "response_only": None, "largest_gaps": []}
    prompt_used = [f >= majority for f in prompt_freq]
    response_used = [f >= majority for f in response_freq]
    gaps = sorted(range(len(prompt_freq)), key=lambda layer: -abs(response_freq[layer] - prompt_freq[layer]))
    return {
        "majority": majority,
        "prompt_only": [layer for layer, (p, r) in enumerate(zip(prompt_used, response_used)) if p and not r],
        "response_only": [layer for layer, (p, r) in enumerate(zip(prompt_used, response_used)) if r and not p],
        "largest_gaps": [{"layer": layer, "prompt": round(prompt_freq[layer], 4),
                          "response": round(response_freq[layer], 4)} for layer in gaps[:5]],
    }
