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

Differences from the authors' code (zijian678/AUSteer, steer.py), each with the option
that reproduces it (all three: `AUSteerOptions.paper()`; docs/fidelity/austeer.md):
- ties in |beta| (the normal case: beta moves in steps of 1/N) are broken by the
  standardised mean momentum |mean(m)| / std(m) (`tie_break="effect"`, default); the
  authors keep their list order, lower layer first, then lower coordinate, and skip
  units whose beta is 0 (`tie_break="paper"`);
- activations are compared in float32 (`capture_dtype="float32"`, default); the authors
  cast every site's activation to float16 before the differences (`"float16"`);
- the positive text is always prompt + right answer (`positive_text="prompt+answer"`,
  default); when the right answer contains the refusal string "I'm sorry, but I can't
  assist", the authors use the answer alone (`positive_text="paper"`).
The fit is a `SteeringVector` (kind "scale", method "austeer") whose extras keep the full
beta and tie-break matrices, so `select(vector, k)` re-picks another k without refitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from interp.runs.config import option

from .contrast import sites_activations
from .vectors import SITES, SteeringVector, model_facts, site_width


TIE_BREAKS = ("effect", "paper")
CAPTURE_DTYPES = ("float32", "float16")
POSITIVE_TEXTS = ("prompt+answer", "paper")
REFUSAL_STRING = "I'm sorry, but I can't assist"  # steer.py: such a right answer is the positive text alone


@dataclass
class AUSteerOptions:
    """How units are scored and ranked; `paper()` gives the authors' code (docs/fidelity/austeer.md)."""

    tie_break: str = option("effect", "order of units with equal |beta|: effect (larger |mean(m)| / std(m) first) "
                                      "or paper (the authors' list order: lower layer, then lower coordinate; "
                                      "units with beta 0 are never kept)", choices=TIE_BREAKS)
    capture_dtype: str = option("float32", "precision of the activations before the differences: float32, or "
                                           "float16 as the authors' code casts them", choices=CAPTURE_DTYPES)
    positive_text: str = option("prompt+answer", "positive text: prompt + right answer, or paper (the right "
                                                 f"answer alone when it contains \"{REFUSAL_STRING}\", as the "
                                                 "authors' code does)", choices=POSITIVE_TEXTS)

    @classmethod
    def paper(cls) -> "AUSteerOptions":
        return cls(tie_break="paper", capture_dtype="float16", positive_text="paper")

    def validate(self) -> None:
        for name, allowed in (("tie_break", TIE_BREAKS), ("capture_dtype", CAPTURE_DTYPES),
                              ("positive_text", POSITIVE_TEXTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


@dataclass
class AUSteerScores:
    beta: torch.Tensor  # [n_layers, width] signed consistency score in [-1, 1]
    effect: torch.Tensor  # [n_layers, width] |mean(m)| / std(m), the tie-break
    n_triples: int


def momentum_scores(right: torch.Tensor, wrong: torch.Tensor, capture_dtype: str = "float32") -> AUSteerScores:
    """beta and tie-break from activations [N, n_layers, width] of right and wrong answers.

    `capture_dtype="float16"` rounds both to float16 first (the authors' code); the
    differences are then exact in float64, so their signs are those of float16 arithmetic."""
    if right.shape != wrong.shape:
        raise ValueError(f"right and wrong activations differ in shape: {tuple(right.shape)} vs {tuple(wrong.shape)}")
    if capture_dtype not in CAPTURE_DTYPES:
        raise ValueError(f"capture_dtype must be one of {CAPTURE_DTYPES}, got {capture_dtype!r}")
    dtype = getattr(torch, capture_dtype)
    momentum = right.to(dtype).double() - wrong.to(dtype).double()  # [N, L, W]
    n = momentum.shape[0]
    r_pos = (momentum > 0).double().mean(0)  # [L, W]
    r_neg = (momentum < 0).double().mean(0)
    beta = torch.where(r_pos >= r_neg, r_pos, -r_neg)
    std = momentum.std(0, unbiased=False) if n > 1 else torch.ones_like(r_pos)
    effect = momentum.mean(0).abs() / (std + 1e-12)
    return AUSteerScores(beta.float(), effect.float(), n)


def top_k(scores: AUSteerScores | SteeringVector, k: int, tie_break: str | None = None
          ) -> list[tuple[int, int, float]]:
    """The k coordinates with the largest |beta|: [(layer, dim, beta)], best first.

    Ties: `tie_break="effect"` puts the larger |mean(m)| / std(m) first; `"paper"` keeps
    the flat (layer, coordinate) order and, as the authors' mask fills until it holds k
    non-zeros, never keeps a unit with beta 0 (so fewer than k when fewer are non-zero).
    Default: the vector's own setting, else "effect"."""
    beta, effect = _score_tensors(scores)
    if tie_break is None:
        tie_break = scores.config.get("tie_break", "effect") if isinstance(scores, SteeringVector) else "effect"
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    flat_beta, flat_effect = beta.reshape(-1), effect.reshape(-1)
    if tie_break == "paper":
        order = torch.sort(flat_beta.abs(), descending=True, stable=True).indices  # flat order = layer, then dim
        order = order[flat_beta[order] != 0]
    else:
        order = torch.sort(flat_effect, descending=True, stable=True).indices  # secondary key first
        order = order[torch.sort(flat_beta[order].abs(), descending=True, stable=True).indices]
    k = min(k, order.numel())
    width = beta.shape[1]
    return [(int(i) // width, int(i) % width, float(flat_beta[i])) for i in order[:k]]


def select(scores: AUSteerScores | SteeringVector, k: int, site: str | None = None, model=None,
           config: dict | None = None, tie_break: str | None = None) -> SteeringVector:
    """A scale-kind `SteeringVector` holding beta on the top-k coordinates (ties: `top_k`;
    the tie-break used is recorded in the vector's config)."""
    beta, effect = _score_tensors(scores)
    if isinstance(scores, SteeringVector):
        site, facts, config = scores.site, scores.model, {**scores.config, **(config or {})}
    else:
        facts = model_facts(model) if model is not None else {}
        config = dict(config or {})
    if site not in SITES:
        raise ValueError(f"site must be one of {tuple(SITES)}, got {site!r}")
    tie_break = tie_break or config.get("tie_break", "effect")
    chosen = top_k(AUSteerScores(beta, effect, 0), k, tie_break)
    masks: dict[int, torch.Tensor] = {}
    for layer, dim, value in chosen:
        masks.setdefault(layer, torch.zeros(beta.shape[1]))[dim] = value
    config.update(k=len(chosen), tie_break=tie_break, selected=[[layer, dim, round(value, 6)] for layer, dim, value in chosen])
    return SteeringVector(masks, site=site, kind="scale", method="austeer", normalization="none",
                          model=facts, config=config, extras={"beta": beta, "effect": effect})


def _score_tensors(scores: AUSteerScores | SteeringVector) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(scores, SteeringVector):
        if "beta" not in scores.extras or "effect" not in scores.extras:
            raise ValueError("this vector carries no AUSteer scores (extras 'beta' and 'effect'); refit it")
        return scores.extras["beta"], scores.extras["effect"]
    return scores.beta, scores.effect


def triple_activations(model, triples: Sequence[tuple[str, str, str]], sites: Sequence[str],
                       chat: bool = False, batch_size=None, progress: bool = False,
                       positive_text: str = "prompt+answer") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """site -> (right, wrong) last-token activations [N, n_layers, width] of prompt + answer.

    With `chat`, the prompt goes through the chat template and the answer follows the
    generation prompt, tokenized without extra special tokens (as `generate(chat=True)` sees it).
    `positive_text="paper"`: a right answer containing `REFUSAL_STRING` is read alone (no
    prompt, no template, the tokenizer's own special tokens), as in the authors' steer.py.
    """
    if not triples:
        raise ValueError("no contrastive triples")
    if positive_text not in POSITIVE_TEXTS:
        raise ValueError(f"positive_text must be one of {POSITIVE_TEXTS}, got {positive_text!r}")
    prompts = [model.chat_prompt(p) if chat else p for p, _, _ in triples]
    alone = [positive_text == "paper" and REFUSAL_STRING in t[1] for t in triples]
    sides = []
    for column in (1, 2):  # right answers, then wrong answers
        texts = [p + t[column] for p, t in zip(prompts, triples)]
        groups = [[i for i in range(len(texts)) if not (column == 1 and alone[i])]]
        if column == 1 and any(alone):
            groups.append([i for i in range(len(texts)) if alone[i]])
        parts = []
        for n, rows in enumerate(groups):
            if not rows:
                continue
            if n == 1:  # the right answer alone, tokenized as plain text
                batch = [triples[i][1] for i in rows]
            else:
                batch = model.tokenize([texts[i] for i in rows], formatted=True) if chat else [texts[i] for i in rows]
            parts.append((rows, _stacked(model, batch, sites, batch_size, progress)))
        sides.append({site: _scatter(parts, site, len(texts)) for site in sites})
    return {site: (sides[0][site], sides[1][site]) for site in sites}


def _stacked(model, texts, sites, batch_size, progress) -> dict[str, torch.Tensor]:
    """site -> [n, n_layers, width] last-token activations of `texts`."""
    layers = list(range(model.n_layers))
    per_site = sites_activations(model, texts, sites, layers, "last", False, batch_size, progress)
    return {site: torch.stack([per_site[site][layer] for layer in layers], 1) for site in sites}


def _scatter(parts, site: str, n: int) -> torch.Tensor:
    """Rows of several captures put back in triple order: [n, n_layers, width]."""
    first = parts[0][1][site]
    out = first.new_zeros(n, *first.shape[1:])
    for rows, acts in parts:
        out[rows] = acts[site]
    return out


def fit_austeer(model, triples: Sequence[tuple[str, str, str]], site: str = "ffn", k: int = 32,
                chat: bool = False, batch_size=None, progress: bool = False,
                config: dict | None = None, options: AUSteerOptions | None = None) -> SteeringVector:
    """Score every (layer, coordinate) of `site` on the triples and keep the top k.

    `options` (default: ours) sets the tie-break, capture precision and positive text;
    `AUSteerOptions.paper()` reproduces the authors' selection. They are kept in the config."""
    options = options or AUSteerOptions()
    options.validate()
    site_width(model, site)
    right, wrong = triple_activations(model, triples, [site], chat, batch_size, progress,
                                      options.positive_text)[site]
    scores = momentum_scores(right, wrong, options.capture_dtype)
    return select(scores, k, site=site, model=model, tie_break=options.tie_break,
                  config={**(config or {}), "n_triples": scores.n_triples, "chat": chat, **asdict(options)})
