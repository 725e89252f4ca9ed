"""Result types of RISE: the analysis of trained SAEs and a steering dose-response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd
import torch

from interp.runs.results import Result


@dataclass
class RiseAnalysis(Result):
    """SAE diagnostics, latent-behaviour association, geometry and behaviour vectors, per
    trained layer (keys are the layer as a string)."""

    analysis: ClassVar[str] = "rise"

    layers: list[int]
    sae: dict  # layer -> {fvu, l0, dead_pct, max_decoder_cos, mean_max_decoder_cos, ce_*}
    behaviours: dict  # layer -> behaviour -> [{latent, count, specificity}]
    silhouette: dict  # layer -> float | None
    map_method: str
    maps: dict[str, torch.Tensor]  # "layer_<l>" -> [d_sae, 2] decoder-column map
    groups: dict  # layer -> behaviour of each decoder column ("none": won no step)
    counts: pd.DataFrame  # layer, latent, behaviour, count (top-firing latent per labelled step)
    long_short: dict  # layer -> {long: [latents], short: [latents], median_steps}
    top_steps: dict[str, torch.Tensor]  # "layer_<l>.index" / ".value" -> [d_sae, k] step rows, activations
    vectors: dict  # "<behaviour>@<layer>" -> steering-vector file (relative to the collect run)
    curves: dict  # layer -> sae training curve [{step, loss, fvu, l0, ...}]
    throughput: dict  # layer -> {wait_fraction, activations_per_s, ...}
    label_counts: dict  # behaviour -> steps
    steps: pd.DataFrame  # trace, step, label, text, start, end (span in the response), n_steps
    responses: list[str]  # the traces' responses (the explorer shows steps in them)
    run: str = ""  # the collect run analysed

    def summary(self) -> dict:
        first = str(self.layers[0])
        headline = {k: self.sae[first].get(k) for k in ("fvu", "l0", "dead_pct", "ce_recovered")}
        return {"sae": headline, "warnings": self.warnings(), "sae_by_layer": self.sae,
                "behaviours": self.behaviours[first],
                "behaviours_by_layer": self.behaviours, "silhouette": self.silhouette, "map_method": self.map_method,
                "label_counts": self.label_counts, "vectors": self.vectors, "throughput": self.throughput}

    def warnings(self) -> list[str]:
        """One line per layer whose SAE is dense or mostly dead (`diagnostics.health_warning`)."""
        from .diagnostics import health_warning

        return [line for layer in self.layers if (line := health_warning(self.sae[str(layer)], layer))]

    def figures(self) -> dict:
        from .figures import association_figure, decoder_map_figure, training_curves_figure

        out = {}
        for layer in self.layers:
            out[f"decoder_map_layer{layer}"] = decoder_map_figure(self, layer)
            out[f"association_layer{layer}"] = association_figure(self, layer)
        out["training_curves"] = training_curves_figure(self)
        return out


@dataclass
class RiseSteer(Result):
    """Dose-response of steering along a behaviour vector at the last token of each step."""

    analysis: ClassVar[str] = "rise-steer"
    main_table = "dose_response"  # result.table(): one row per alpha

    behaviour: str
    layer: int
    mode: str  # "project" (h - alpha w (w.h)) or "add" (h + alpha w)
    alphas: list[float]
    dose_response: list[dict]  # per alpha: {alpha, behaviour_steps, steps_by_label, mean_steps, accuracy}
    samples: dict = field(default_factory=dict)  # alpha -> first responses
    vector: str = ""

    def summary(self) -> dict:
        return {"behaviour": self.behaviour, "layer": self.layer, "mode": self.mode, "dose_response": self.dose_response}

    def figures(self) -> dict:
        from .figures import dose_response_figure

        return {"dose_response": dose_response_figure(self)}
