"""Figures for LAC void detection (`interp.voids`) and its evaluation (`interp.voids.evaluation`).

- activation map per phase: layers (rows) x tokens (columns) of one prompt, active = 1;
  response columns are labelled with the token each decode step processed, the hover text
  also names the token it produced;
- per-layer activation frequency, prompt and response phase side by side;
- accuracy and % of layers used against alpha (evaluation).
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def activation_map(result, prompt: int = 0, phase: str = "prompt") -> go.Figure:
    """Token x layer map of one prompt in one phase ("prompt" or "response")."""
    if phase not in ("prompt", "response"):
        raise ValueError(f"phase must be 'prompt' or 'response', got {phase!r}")
    if not 0 <= prompt < len(result.prompts):
        raise ValueError(f"prompt {prompt} out of range: the run has {len(result.prompts)} prompts")
    active = getattr(result, f"{phase}_active")[prompt]  # [T, L]
    tokens = getattr(result, f"{phase}_tokens")[prompt]
    active = active[: len(tokens)].T.int()  # [L, T_i]
    labels = [f"{i}:{t!r}" for i, t in enumerate(tokens)]
    if phase == "response":
        produced = result.response_next[prompt]
        hover = [[f"layer {layer}<br>processed {t!r}<br>produced {produced[i]!r}" for i, t in enumerate(tokens)]
                 for layer in range(result.n_layers)]
    else:
        hover = [[f"layer {layer}<br>token {t!r}" for t in tokens] for layer in range(result.n_layers)]
    used = 100.0 * float(active.float().mean()) if active.numel() else float("nan")
    fig = go.Figure(go.Heatmap(z=active.tolist(), x=labels, y=list(range(result.n_layers)), zmin=0, zmax=1,
                               colorscale=[[0, "#f4f1ea"], [1, "#1f6f8b"]], showscale=False,
                               text=hover, hoverinfo="text"))
    title = "prompt processing (prefill)" if phase == "prompt" else "response generation (decode steps)"
    fig.update_layout(title=f"LAC activation map, {title}, prompt {prompt}: {used:.1f}% of layers used "
                            f"(alpha={result.alpha})",
                      xaxis_title="token", yaxis_title="layer", height=300 + 12 * result.n_layers)
    return fig


def frequency_bars(result) -> go.Figure:
    table = result.per_layer
    fig = go.Figure()
    for column, name in (("prompt_active", "prompt processing"), ("response_active", "response generation")):
        fig.add_bar(x=table["layer"], y=table[column], name=name)
    fig.update_layout(title=f"Fraction of tokens for which each layer is active (alpha={result.alpha})",
                      xaxis_title="layer", yaxis_title="active fraction", yaxis_range=[0, 1], barmode="group")
    return fig


def void_figures(result) -> dict:
    figures = {"map_prompt": activation_map(result, 0, "prompt"), "layer_frequency": frequency_bars(result)}
    if result.response_tokens and result.response_tokens[0]:
        figures["map_response"] = activation_map(result, 0, "response")
    return figures


def eval_figures(result) -> dict:
    """Accuracy and % layers used against alpha."""
    alphas = result.alphas
    acc = make_subplots(specs=[[{"secondary_y": True}]])
    acc.add_scatter(x=alphas, y=[result.accuracy_no_skip] * len(alphas), name="no skipping", mode="lines",
                    line={"dash": "dash"})
    acc.add_scatter(x=alphas, y=result.accuracy_skip, name=f"{result.skip} skipping", mode="lines+markers")
    acc.add_scatter(x=alphas, y=result.layers_used_prompt, name="% layers used (prompt)", mode="lines+markers",
                    line={"dash": "dot"}, secondary_y=True)
    if any(v is not None for v in result.layers_used_response):
        acc.add_scatter(x=alphas, y=result.layers_used_response, name="% layers used (response)",
                        mode="lines+markers", line={"dash": "dot"}, secondary_y=True)
    acc.update_layout(title=f"{result.task}: accuracy and layers used vs alpha ({result.n_questions} questions)",
                      xaxis_title="alpha")
    acc.update_yaxes(title_text="accuracy", range=[0, 1], secondary_y=False)
    acc.update_yaxes(title_text="% layers used", range=[0, 100], secondary_y=True)
    return {"accuracy_vs_alpha": acc}
