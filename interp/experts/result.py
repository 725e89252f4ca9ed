"""`ExpertsResult`: association scores per (layer, expert), the causal ranking and the
condition effects of one `experts_scan` (save/load through `interp.runs.results`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..runs.results import Result


@dataclass
class ExpertsResult(Result):
    """Tensors are [L_moe, E] over `layers` (the MoE layers) and experts.

    `experts` holds the tested candidates ranked by causal effect, each a dict with layer,
    expert, effect (baseline - value with the expert off, on the target prompts), effect_on
    (value with it forced on - baseline, on the other prompts; None when not run), score
    (fTRI difference), risk_diff, p_value, off_value, on_value. `effects` maps each
    condition (baseline, top_off, top_on, random_off_<i>) to {"target", "other"[,
    "perplexity"]} and "experts" to the experts each condition toggled.
    """

    analysis = "experts"
    main_table = "experts"  # result.table(): the tested candidates, ranked
    layers: list[int]
    n_experts: list[int]
    top_k: list[int]
    metric: str
    n_target: int
    n_other: int
    experts: list[dict]
    effects: dict
    freq_target: torch.Tensor
    freq_other: torch.Tensor
    weight_target: torch.Tensor
    weight_other: torch.Tensor
    ftri: torch.Tensor
    risk_diff: torch.Tensor
    p_value: torch.Tensor

    def random_off(self, prompts: str = "target") -> list[float]:
        """The behaviour value of every random-control draw on `prompts` ('target' / 'other')."""
        return [v[prompts] for k, v in self.effects.items() if k.startswith("random_off_")]

    def summary(self) -> dict:
        keys = ("layer", "expert", "effect", "effect_on", "score", "risk_diff", "p_value")
        effects = {k: v for k, v in self.effects.items() if k != "experts"}
        return {"metric": self.metric, "moe_layers": len(self.layers), "experts_per_layer": max(self.n_experts),
                "experts": [{k: r[k] for k in keys} for r in self.experts], "effects": effects,
                "toggled": self.effects.get("experts", {}), "warnings": self.warnings()}

    def warnings(self) -> list[str]:
        """One line when the baseline shows no behaviour to attribute: the target prompts score
        no higher than the other prompts, within 0.1% (then the ranked experts do not carry
        the behaviour)."""
        base = self.effects.get("baseline", {})
        target, other = base.get("target"), base.get("other")
        if target is None or other is None or target > other + 1e-3 * max(abs(other), abs(target), 1e-12):
            return []  # stronger on the targets by more than rounding
        return [f"the behaviour ({self.metric}) is no stronger on the {self.n_target} target prompts ({target:.3g}) "
                f"than on the {self.n_other} other prompts ({other:.3g}): there is no behaviour for the experts "
                "to carry; check the prompt sets (e.g. does the model refuse the target prompts at all?)"]

    def figures(self) -> dict:
        from .figures import experts_figures

        return experts_figures(self)
