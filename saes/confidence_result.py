"""Result type and figures of the RISE confidence-vector search (`saes.confidence_run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from interp.runs.results import Result


@dataclass
class RiseConfidence(Result):
    """A latent offset minimising answer entropy, the confidence directions read off it, and
    the dose-response of steering with the confidence vector on held-out problems."""

    analysis: ClassVar[str] = "rise-confidence"

    layer: int
    entropy_before: float  # mean answer entropy (nats) over the optimisation traces, no offset
    entropy_after: float  # the same with the found offset
    curve: list[float]  # entropy before each Adam step
    stopped_at: int | None  # step where --tol stopped the search (None: every iteration ran)
    latents: dict  # "confidence" | "low_confidence" -> [{latent, offset}]
    delta: torch.Tensor  # [d_sae] the found offset
    vectors: dict  # "confidence" | "low_confidence" -> vector file (relative to the run)
    dose_response: list[dict] = field(default_factory=list)  # per alpha (see saes.confidence_effect)
    direction: str = ""  # "falling" | "rising" | "mixed": generated responses' entropy over increasing alpha
    samples: dict = field(default_factory=dict)  # alpha -> first responses
    n_opt: int = 0  # optimisation traces
    run: str = ""  # the collect run
    answer_direction: str = ""  # the same for the held-out answer entropy (teacher-forced, paired)

    def summary(self) -> dict:
        return {"layer": self.layer, "entropy_before": self.entropy_before, "entropy_after": self.entropy_after,
                "iterations": len(self.curve), "stopped_at": self.stopped_at,
                "latents": {k: [r["latent"] for r in v] for k, v in self.latents.items()},
                "vectors": self.vectors, "answer_entropy_vs_alpha": self.answer_direction,
                "entropy_vs_alpha": self.direction, "dose_response": self.dose_response}

    def figures(self) -> dict:
        out = {"entropy_curve": entropy_curve_figure(self)}
        if self.dose_response:
            out["confidence_dose_response"] = confidence_dose_figure(self)
        return out


def entropy_curve_figure(result: RiseConfidence):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=list(range(len(result.curve))), y=result.curve, mode="lines", name="entropy",
                               hovertemplate="step %{x}: %{y:.4f} nats<extra></extra>"))
    stop = "" if result.stopped_at is None else f", stopped at step {result.stopped_at}"
    fig.update_layout(title=f"Answer entropy during the offset search, layer {result.layer} "
                            f"({result.entropy_before:.3f} -> {result.entropy_after:.3f} nats{stop})",
                      xaxis_title="Adam step", yaxis_title="mean answer entropy (nats)", height=380,
                      margin={"t": 50})
    return fig


def confidence_dose_figure(result: RiseConfidence):
    from plotly.subplots import make_subplots

    rows = sorted(result.dose_response, key=lambda r: r["alpha"])
    alphas = [r["alpha"] for r in rows]
    panels = [("answer_entropy_change", "held-out answer entropy change (nats)"),
              ("entropy", "generated: entropy (nats)"), ("length", "generated: tokens"),
              ("reflection", "generated: reflection steps"), ("accuracy", "generated: accuracy")]
    panels = [(key, title) for key, title in panels if key in rows[0]]  # runs saved before answer_entropy
    cols = 3
    grid = (len(panels) + cols - 1) // cols
    fig = make_subplots(rows=grid, cols=cols, subplot_titles=[t for _, t in panels], vertical_spacing=0.22)
    for i, (key, title) in enumerate(panels):
        row, col = i // cols + 1, i % cols + 1
        ys = [r[key] for r in rows]
        lo = [r.get(f"{key}_low") for r in rows]
        hi = [r.get(f"{key}_high") for r in rows]
        error = None
        if all(v is not None for v in lo + hi + ys):
            error = {"type": "data", "array": [h - y for h, y in zip(hi, ys)],
                     "arrayminus": [y - low for y, low in zip(ys, lo)]}
        fig.add_scatter(x=alphas, y=ys, error_y=error, mode="lines+markers", name=title, row=row, col=col,
                        hovertemplate="alpha %{x}: %{y:.3f}<extra>" + title + "</extra>")
        fig.update_xaxes(title_text="alpha (x |h|)", row=row, col=col)
    fig.update_layout(title=f"Steering with the confidence vector at step ends (layer {result.layer}, 95% intervals)",
                      showlegend=False, height=300 * grid + 80, margin={"t": 70})
    return fig
