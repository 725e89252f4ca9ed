"""Explorer page for LAC void detection (`interp.voids`, "Void in Language Models", arXiv 2505.14467).

Controls: the prompt and the phase (prompt processing or response generation). Shows the
prompt and the generated text, the layer x token activation map for that choice (used or
void, with a legend; the hover names the token, the state and the norm change), and the
same grid coloured by the layer-output norm change that the rule reads, on a symmetric log
scale (the first token's changes are thousands of times the others' and would wash the
rest of a linear map out). Layer 0 is at the top, as on every layer map of the explorer.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st
import torch

from .generic import chart, pick_prompt, table_view
from .registry import Shown, page
from .runs import SavedRun
from .tokens import position_labels, visible
from .tokenstrip import token_strip

PHASES = {"prompt": "prompt processing (prefill)", "response": "response generation (decode steps)"}
USED, VOID = "#1f6f8b", "#f4f1ea"


def lac_map(active: torch.Tensor, delta: torch.Tensor, tokens: list[str], title: str) -> go.Figure:
    """active [L, T] bool and delta [L, T] (norm change): two colours with a legend entry each."""
    labels = position_labels(tokens)
    hover = [[f"layer {layer}, token {labels[t]}<br>{'used' if active[layer, t] else 'void'}"
              f"<br>norm change {float(delta[layer, t]):.4g}" for t in range(len(tokens))]
             for layer in range(active.shape[0])]
    fig = go.Figure(go.Heatmap(z=active.int().tolist(), x=labels, y=list(range(active.shape[0])), zmin=0, zmax=1,
                               colorscale=[[0, VOID], [0.5, VOID], [0.5, USED], [1, USED]], showscale=False,
                               text=hover, hovertemplate="%{text}<extra></extra>", xgap=1, ygap=1))
    for name, colour in (("used (active)", USED), ("void", VOID)):  # legend entries for the two states
        fig.add_scatter(x=[None], y=[None], mode="markers", name=name,
                        marker={"symbol": "square", "size": 12, "color": colour, "line": {"color": "#888", "width": 1}})
    fig.update_layout(title=title, xaxis={"title": "token", "type": "category"},
                      yaxis={"title": "layer", "autorange": "reversed"}, height=320 + 12 * active.shape[0],
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
                      margin={"t": 80}, plot_bgcolor="#ffffff")
    return fig


def symlog(x: float) -> float:
    return math.copysign(math.log10(1.0 + abs(x)), x)


def norm_change_map(delta: torch.Tensor, tokens: list[str]) -> go.Figure:
    """delta [L, T] on a symmetric log colour scale; the colour bar and hover give real values."""
    labels = position_labels(tokens)
    top = max(1.0, float(delta.abs().max()))
    ticks = [v for v in (1, 10, 100, 1000, 10000, 100000) if v <= top * 1.01]
    tickvals = [-symlog(v) for v in reversed(ticks)] + [0.0] + [symlog(v) for v in ticks]
    ticktext = [f"-{v:g}" for v in reversed(ticks)] + ["0"] + [f"{v:g}" for v in ticks]
    fig = go.Figure(go.Heatmap(
        z=[[symlog(float(v)) for v in row] for row in delta], x=labels, y=list(range(delta.shape[0])),
        customdata=delta.tolist(), colorscale="RdBu", zmid=0, zmin=-symlog(top), zmax=symlog(top),
        colorbar={"title": "norm change", "tickvals": tickvals, "ticktext": ticktext},
        hovertemplate="layer %{y}, token %{x}<br>norm change %{customdata:.4g}<extra></extra>"))
    fig.update_layout(title="Norm change of each layer's output (delta_l = n_l - n_{l-1}; low = void), "
                            "symmetric log colour scale",
                      xaxis={"title": "token", "type": "category"}, yaxis={"title": "layer", "autorange": "reversed"},
                      height=320 + 12 * delta.shape[0], margin={"t": 70})
    return fig


@page("voids", result="interp.voids.maps")
def voids_page(run: SavedRun, r) -> Shown:
    c1, c2 = st.columns([3, 2])
    prompt = pick_prompt(c1, r.prompts, key=f"{run.name}:prompt", mean=False)
    phases = [p for p in PHASES if p == "prompt" or r.response_tokens[prompt]]
    phase = c2.radio("Phase", phases, format_func=PHASES.get, key=f"{run.name}:phase", horizontal=True)
    st.markdown("**Prompt**")
    st.code(r.prompts[prompt], language=None, wrap_lines=True)
    st.markdown("**Generated**")
    st.code(r.generated[prompt] or "(nothing)", language=None, wrap_lines=True)
    used = r.layers_used_pct()
    st.caption("layers used over the run: " + ", ".join(
        f"{phase} {value:.1f}%" for phase, value in used.items() if value is not None))
    tokens = getattr(r, f"{phase}_tokens")[prompt]
    norms = getattr(r, f"{phase}_norms")[prompt, : len(tokens)].float()  # [T_i, L + 1]
    delta = (norms[:, 1:] - norms[:, :-1]).T  # [L, T_i]: n_l - n_{l-1}
    active = getattr(r, f"{phase}_active")[prompt, : len(tokens)].T  # [L, T_i]
    share = 100.0 * float(active.float().mean()) if active.numel() else float("nan")
    chart(lac_map(active, delta, tokens, f"LAC activation map, {PHASES[phase]}, prompt {prompt}: {share:.1f}% of "
                                         f"{active.numel()} (layer, token) pairs used (alpha={r.alpha})"),
          key=f"{run.name}:map")
    st.markdown("**Layers used per token** (LAC active layers out of "
                f"{active.shape[0]}; hover a token for the list)")
    counts = active.sum(0)  # [T_i]; the colour scale ends at the busiest token (few use most layers)
    token_strip(tokens, counts.tolist(), "layers used", fmt="d", low=0, high=max(1, int(counts.max()) if counts.numel() else 1),
                notes=[f"layers {[l for l in range(active.shape[0]) if active[l, t]]}" for t in range(len(tokens))])
    chart(norm_change_map(delta, tokens), key=f"{run.name}:delta")
    st.subheader("Tokens of this prompt")
    table = r.per_token[(r.per_token["prompt"] == prompt) & (r.per_token["phase"] == phase)]
    shown = table.assign(**{c: table[c].map(visible) for c in ("token", "next_token") if c in table})
    table_view(shown, key=f"{run.name}:tokens", name=f"{run.name}-tokens-{prompt}-{phase}")
    return Shown(figures={"map_prompt", "map_response"})
