"""AUSteer: steer a few atomic units instead of whole blocks (arXiv 2602.04428).

An atomic unit (AU) is one input coordinate of a linear map. Sites: "attention" = the
input of o_proj (H * d_head coordinates, `attn.hook_z`), "ffn" = the MLP output (d
coordinates, `hook_mlp_out`), "layer" = the decoder-layer output (`hook_resid_post`).

Fitting, from contrastive triples (prompt, right answer, wrong answer):
1. activation x at the last token of prompt + answer, every layer, for right and wrong;
2. momentum m = x_right - x_wrong per (triple, layer, coordinate);
3. r_pos = #(m > 0) / N, r_neg = #(m < 0) / N; beta = +r_pos if r_pos >= r_neg else -r_neg;
4. keep the global top-k coordinates by |beta| across all layers.
Steering at every position: x_i' = x_i + alpha * beta_i * x_i, i.e. the engine edit
`Scale(site, factor=1 + alpha * mask)` with mask = beta on the kept coordinates, 0 elsewhere.

Deliberate difference from the paper's code: |beta| ties (common with a few hundred
triples, where many coordinates reach |beta| = 1) are broken by the standardised mean
momentum |mean(m)| / std(m), not by the order coordinates happen to be listed in.
The fit is a `SteeringVector` (kind "scale", method "austeer") whose extras keep the full
beta and tie-break matrices, so `select(vector, k)` re-picks another k without refitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .contrast import sites_activations
from .vectors import SITES, SteeringVector, model_facts, site_width


@dataclass
class AUSteerScores:
    beta: torch.Tensor  # [n_layers, width] signed consistency score in [-1, 1]
    effect: torch.Tensor  # [n_layers, width] |mean(m)| / std(m), the tie-break
    n_triples: int


def momentum_scores(right: torch.Tensor, wrong: torch.Tensor) -> AUSteerScores:
    """beta and tie-break from activations [N, n_layers, width] of right and wrong answers."""
    if right.shape != wrong.shape:
        raise ValueError(f"right and wrong activations differ in shape: {tuple(right.shape)} vs {tuple(wrong.shape)}")
    momentum = (right - wrong).double()  # [N, L, W]
    n = momentum.shape[0]
    r_pos = (momentum > 0).double().mean(0)  # [L, W]
    r_neg = (momentum < 0).double().mean(0)
    beta = torch.where(r_pos >= r_neg, r_pos, -r_neg)
    std = momentum.std(0, unbiased=False) if n > 1 else torch.ones_like(r_pos)
    effect = momentum.mean(0).abs() / (std + 1e-12)
    return AUSteerScores(beta.float(), effect.float(), n)


def top_k(scores: AUSteerScores | SteeringVector, k: int) -> list[tuple[int, int, float]]:
    """The k coordinates with the largest |beta| (ties: larger effect): [(layer, dim, beta)]."""
    beta, effect = _score_tensors(scores)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    flat_beta, flat_effect = beta.reshape(-1), effect.reshape(-1)
    k = min(k, flat_beta.numel())
    order = torch.sort(flat_effect, descending=True, stable=True).indices  # secondary key first
    order = order[torch.sort(flat_beta[order].abs(), descending=True, stable=True).indices]
    width = beta.shape[1]
    return [(int(i) // width, int(i) % width, float(flat_beta[i])) for i in order[:k]]


def select(scores: AUSteerScores | SteeringVector, k: int, site: str | None = None, model=None,
           config: dict | None = None) -> SteeringVector:
    """A scale-kind `SteeringVector` holding beta on the top-k coordinates."""
    beta, effect = _score_tensors(scores)
    if isinstance(scores, SteeringVector):
        site, facts, config = scores.site, scores.model, {**scores.config, **(config or {})}
    else:
        facts = model_facts(model) if model is not None else {}
        config = dict(config or {})
    if site not in SITES:
        raise ValueError(f"site must be one of {tuple(SITES)}, got {site!r}")
    chosen = top_k(AUSteerScores(beta, effect, 0), k)
    masks: dict[int, torch.Tensor] = {}
    for layer, dim, value in chosen:
        masks.setdefault(layer, torch.zeros(beta.shape[1]))[dim] = value
    config.update(k=len(chosen), selected=[[layer, dim, round(value, 6)] for layer, dim, value in chosen])
    return SteeringVector(masks, site=site, kind="scale", method="austeer", normalization="none",
                          model=facts, config=config, extras={"beta": beta, "effect": effect})


def _score_tensors(scores: AUSteerScores | SteeringVector) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(scores, SteeringVector):
        if "beta" not in scores.extras or "effect" not in scores.extras:
            raise ValueError("this vector carries no AUSteer scores (extras 'beta' and 'effect'); refit it")
        return scores.extras["beta"], scores.extras["effect"]
    return scores.beta, scores.effect


def triple_activations(model, triples: Sequence[tuple[str, str, str]], sites: Sequence[str],
                       chat: bool = False, batch_size=None, progress: bool = False
                       ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """site -> (right, wrong) last-token activations [N, n_layers, width] of prompt + answer.

    With `chat`, the prompt goes through the chat template and the answer follows the
    generation prompt, tokenized without extra special tokens (as `generate(chat=True)` sees it).
    """
    if not triples:
        raise ValueError("no contrastive triples")
    prompts = [model.chat_prompt(p) if chat else p for p, _, _ in triples]
    layers = list(range(model.n_layers))
    sides = []
    for column in (1, 2):  # right answers, then wrong answers
        texts = [p + t[column] for p, t in zip(prompts, triples)]
        batch = model.tokenize(texts, formatted=True) if chat else texts
        per_site = sites_activations(model, batch, sites, layers, "last", False, batch_size, progress)
        sides.append({site: torch.stack([per_site[site][layer] for layer in layers], 1)  # [N, L, W]
                      for site in sites})
    return {site: (sides[0][site], sides[1][site]) for site in sites}


def fit_austeer(model, triples: Sequence[tuple[str, str, str]], site: str = "ffn", k: int = 32,
                chat: bool = False, batch_size=None, progress: bool = False,
                config: dict | None = None) -> SteeringVector:
    """Score every (layer, coordinate) of `site` on the triples and keep the top k."""
    site_width(model, site)
    right, wrong = triple_activations(model, triples, [site], chat, batch_size, progress)[site]
    scores = momentum_scores(right, wrong)
    return select(scores, k, site=site, model=model,
                  config={**(config or {}), "n_triples": scores.n_triples, "chat": chat})
