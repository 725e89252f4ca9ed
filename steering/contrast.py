"""Steering vectors from contrast data: difference of means and PCA of paired differences.

Contrastive activation addition: run "positive" and "negative" texts, read one site at
chosen layers, and take
- `mean-diff`: mean(positive) - mean(negative) (Rimsky et al. 2024, CAA; Arditi et al.
  2024 use the same estimator for the refusal direction), or
- `pca`: the first principal direction of the paired differences positive_i - negative_i
  (Zou et al. 2023, RepE; llama.cpp's cvector-generator), with its sign fixed so it points
  from negative to positive.

Deliberate choices: the PCA is uncentred (the first right singular vector of the raw
difference matrix) because centring removes exactly the shared shift we want to steer
along; and the unit PCA direction is scaled by the mean projection of the differences on
it, so `alpha = 1` means "one average contrast" for both methods. Activations are read at
the last prompt token (`positions="last"`) or averaged over real tokens (`"mean"`).

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/refusal-direction.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from interp.runs.config import option
from interp.runs.prompts import PromptFileError, read_prompts, read_records

from .vectors import SITES, SteeringVector, model_facts, site_width

METHODS = ("mean-diff", "pca")
POOLING = ("last", "mean")


@dataclass
class ContrastConfig:
    layers: list[int] = option(default_factory=list, help="layers to build the vector at, e.g. 8,10 "
                               "(default: the middle layer)")
    method: str = option("mean-diff", "difference of means, or PCA of paired differences", choices=METHODS)
    pooling: str = option("last", "read the last prompt token, or the mean over tokens", choices=POOLING)
    site: str = option("layer", "layer (decoder output), ffn (MLP output) or attention (o_proj input)",
                       choices=tuple(SITES))
    normalize: bool = option(False, "scale each layer's vector to unit norm")

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got '{self.method}'")
        if self.pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got '{self.pooling}'")
        if self.site not in SITES:
            raise ValueError(f"site must be one of {tuple(SITES)}, got '{self.site}'")
        if any(layer < 0 for layer in self.layers):
            raise ValueError(f"layers must be >= 0, got {self.layers}")


def read_contrast_data(data: str | None = None, positive: str | None = None,
                       negative: str | None = None) -> tuple[list[str], list[str]]:
    """(positives, negatives) from a JSONL file with `positive` / `negative` fields per line,
    or from two plain-text files (one text per line)."""
    if data is not None and (positive or negative):
        raise ValueError("give either --data FILE (JSONL) or --positive FILE --negative FILE, not both")
    if data is not None:
        records = read_records(data, required=("positive", "negative"))
        for n, record in enumerate(records, start=1):
            for key in ("positive", "negative"):
                if not isinstance(record[key], str) or not record[key]:
                    raise PromptFileError(f"{data}: record {n}: '{key}' must be a non-empty string")
        return [r["positive"] for r in records], [r["negative"] for r in records]
    if not (positive and negative):
        raise ValueError("no contrast data: pass --data FILE (JSONL with positive/negative) "
                         "or --positive FILE --negative FILE")
    return read_prompts(positive), read_prompts(negative)


def site_activations(model, texts, site: str, layers: Sequence[int], pooling: str = "last",
                     chat: bool = False, batch_size=None, progress: bool = False) -> dict[int, torch.Tensor]:
    """layer -> [n_texts, width] float32 activations at `site`, last token or token mean."""
    return sites_activations(model, texts, [site], layers, pooling, chat, batch_size, progress)[site]


def sites_activations(model, texts, sites: Sequence[str], layers: Sequence[int], pooling: str = "last",
                      chat: bool = False, batch_size=None, progress: bool = False
                      ) -> dict[str, dict[int, torch.Tensor]]:
    """site -> layer -> [n_texts, width], all captured in one pass over `texts` (a list of
    strings or a TokenBatch)."""
    from interp.engine.model import TokenBatch

    names = {(site, layer): SITES[site].format(layer=layer) for site in sites for layer in layers}
    prompts = texts if isinstance(texts, TokenBatch) else list(texts)
    positions = "last" if pooling == "last" else "all"
    _, cache = model.run_with_cache(prompts, list(names.values()), positions=positions, chat=chat,
                                    to_cpu=True, dtype=torch.float32, logits=None, batch_size=batch_size,
                                    progress=progress)
    out: dict[str, dict[int, torch.Tensor]] = {site: {} for site in sites}
    for (site, layer), name in names.items():
        acts = cache[name]  # [n, width] | [n, H, d_head] | [n, P, ...]
        if pooling == "mean":
            mask = cache.attention_mask.to(torch.float32)  # [n, P]
            acts = acts.flatten(2) if acts.ndim > 3 else acts  # [n, P, width]
            acts = (acts * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        out[site][layer] = acts.reshape(acts.shape[0], -1)  # [n, width]
    return out


def mean_difference(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """mean(positive) - mean(negative): [width] from [n_pos, width] and [n_neg, width]."""
    return positive.double().mean(0).float() - negative.double().mean(0).float()


def pca_of_differences(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """First (uncentred) principal direction of positive_i - negative_i, pointing from
    negative to positive, scaled by the mean projection of the differences on it: [width]."""
    if positive.shape != negative.shape:
        raise ValueError(f"PCA needs paired data: {positive.shape[0]} positives vs {negative.shape[0]} negatives")
    diffs = (positive - negative).double()  # [n, width]
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    direction = vh[0]  # [width], unit norm
    projection = (diffs @ direction).mean()
    if projection < 0:
        direction, projection = -direction, -projection
    return (direction * projection).float()


def make_vector(model, positives: Sequence[str], negatives: Sequence[str], config: ContrastConfig,
                chat: bool = False, batch_size=None, progress: bool = False) -> SteeringVector:
    """A `SteeringVector` pointing from the negative texts to the positive ones."""
    config.validate()
    if not positives or not negatives:
        raise ValueError("contrast data needs at least one positive and one negative text")
    if config.method == "pca" and len(positives) != len(negatives):
        raise ValueError(f"pca needs paired data: got {len(positives)} positives and {len(negatives)} negatives")
    if config.method == "pca" and len(positives) < 2:
        raise ValueError("pca needs at least 2 pairs")
    layers = list(config.layers) or [model.n_layers // 2]
    for layer in layers:
        if not 0 <= layer < model.n_layers:
            raise ValueError(f"layer {layer} out of range: the model has layers 0..{model.n_layers - 1}")
    site_width(model, config.site)
    pos = site_activations(model, positives, config.site, layers, config.pooling, chat, batch_size, progress)
    neg = site_activations(model, negatives, config.site, layers, config.pooling, chat, batch_size, progress)
    estimator = mean_difference if config.method == "mean-diff" else pca_of_differences
    vectors = {layer: estimator(pos[layer], neg[layer]) for layer in layers}
    if config.normalize:
        vectors = {layer: v / v.norm().clamp_min(1e-12) for layer, v in vectors.items()}
    creation = {**asdict(config), "layers": layers, "chat": chat, "n_positive": len(positives),
                "n_negative": len(negatives)}
    return SteeringVector(vectors, site=config.site, kind="add", method=config.method,
                          normalization="unit" if config.normalize else "none",
                          model=model_facts(model), config=creation)
