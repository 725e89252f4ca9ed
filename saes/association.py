"""Latent-behaviour association and behaviour vectors (RISE, arXiv 2512.23988, section 4).

Each labelled step votes for its top-firing latent (argmax of its latent activations). For
latent j and behaviour b, `counts[j, b]` is the number of b-steps whose top latent is j, and
the specificity of j for b is counts[j, b] / sum_b' counts[j, b']: the share of the steps j
wins that carry b. A latent is specific to b when it wins at least `min_count` steps and its
specificity is at least `min_specificity`. The behaviour vector of b is the normalised mean
of the unit decoder columns of b's specific latents.
"""

from __future__ import annotations

import pandas as pd
import torch

from .labels import OTHER


def association_counts(latents: torch.Tensor, labels: list[str]) -> pd.DataFrame:
    """Counts [latent x behaviour] of top-firing latents (latents that won no step left out)."""
    if len(labels) != len(latents):
        raise ValueError(f"{len(labels)} labels for {len(latents)} steps")
    top = latents.argmax(1)
    fired = latents.max(1).values > 0
    behaviours = sorted(set(labels), key=lambda b: (b == OTHER, b))
    frame = pd.DataFrame(0, index=sorted(set(top[fired].tolist())), columns=behaviours, dtype="int64")
    for j, label, ok in zip(top.tolist(), labels, fired.tolist()):
        if ok:
            frame.loc[j, label] += 1
    frame.index.name = "latent"
    return frame


def behaviour_latents(counts: pd.DataFrame, min_count: int = 2, min_specificity: float = 0.5,
                      top: int = 10) -> dict[str, list[dict]]:
    """{behaviour: [{latent, count, specificity}, ...]} of the latents specific to each
    behaviour other than "other", most steps first (at most `top`)."""
    total = counts.sum(axis=1)
    out: dict[str, list[dict]] = {}
    for behaviour in counts.columns:
        if behaviour == OTHER:
            continue
        spec = counts[behaviour] / total.clip(lower=1)
        keep = counts.index[(counts[behaviour] >= min_count) & (spec >= min_specificity)]
        rows = [{"latent": int(j), "count": int(counts.loc[j, behaviour]), "specificity": float(spec.loc[j])}
                for j in keep]
        out[behaviour] = sorted(rows, key=lambda r: (-r["count"], -r["specificity"]))[:top]
    return out


def column_groups(counts: pd.DataFrame, d_sae: int) -> list[str]:
    """Behaviour of each decoder column: the behaviour it wins most steps of, "none" if it
    wins none."""
    groups = ["none"] * d_sae
    for j in counts.index:
        groups[int(j)] = str(counts.loc[j].idxmax())
    return groups


def behaviour_vector(decoder: torch.Tensor, latents: list[int]) -> torch.Tensor:
    """Normalised mean of the unit decoder rows `latents` of `decoder` [d_sae, d_model]."""
    if not latents:
        raise ValueError("no behaviour-specific latents to average")
    cols = decoder[latents] / decoder[latents].norm(dim=1, keepdim=True).clamp_min(1e-12)
    mean = cols.mean(0)
    return mean / mean.norm().clamp_min(1e-12)


def long_short_latents(latents: torch.Tensor, n_steps: list[int], top: int = 10) -> dict[str, list[int]]:
    """Latents most active on steps of long vs short responses (split at the median step
    count): ranked by the difference of their mean activations."""
    lengths = torch.tensor(n_steps, dtype=torch.float)
    median = lengths.median()
    long, short = lengths > median, lengths <= median
    if not long.any() or not short.any():
        return {"long": [], "short": [], "median_steps": float(median)}
    diff = latents[long].mean(0) - latents[short].mean(0)
    order = torch.argsort(diff, descending=True)
    return {"long": order[:top].tolist(), "short": order.flip(0)[:top].tolist(), "median_steps": float(median)}
