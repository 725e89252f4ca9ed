"""Plotly figures of a `DLAResult`: layer x head heatmap, per-layer stacked bars, top neurons.

All figures show means over prompts and positions; the per-prompt numbers are in the
result's `per_prompt` table.
"""

from __future__ import annotations

import plotly.graph_objects as go


def dla_figures(result) -> dict:
    figures = {"head_heatmap": head_heatmap(result), "layer_bars": layer_bars(result)}
    if result.neuron_attr is not None:
        figures["top_neurons"] = top_neurons_bar(result)
    return figures


def _title(result, what: str) -> str:
    return f"{what}: DLA on {result.direction} (mean over {len(result.prompts)} prompt(s))"


def head_heatmap(result) -> go.Figure:
    values = result.head_means().tolist()  # [L, H]
    limit = max((abs(v) for row in values for v in row), default=1.0) or 1.0
    fig = go.Figure(go.Heatmap(
        z=values, x=[f"H{h}" for h in range(result.n_heads)], y=[f"L{l}" for l in range(result.n_layers)],
        colorscale="RdBu", zmid=0.0, zmin=-limit, zmax=limit, colorbar={"title": "logit"},
        hovertemplate="%{y} %{x}: %{z:.4f}<extra></extra>",
    ))
    fig.update_layout(title=_title(result, "Heads"), xaxis_title="head", yaxis_title="layer",
                      yaxis={"autorange": "reversed"})
    return fig


def layer_bars(result) -> go.Figure:
    table = result.layer_table()
    x = ["embed"] + [f"L{l}" for l in table["layer"]] + ["bias"]
    embed = result.embed_attr.mean().item() + (0.0 if result.pos_embed_attr is None else result.pos_embed_attr.mean().item())
    zeros = [0.0] * len(table)
    fig = go.Figure([
        go.Bar(name="embeddings", x=x, y=[embed] + zeros + [0.0]),
        go.Bar(name="attention heads", x=x, y=[0.0] + table["heads"].tolist() + [0.0]),
        go.Bar(name="attention bias", x=x, y=[0.0] + table["attn_bias"].tolist() + [0.0]),
        go.Bar(name="MLP", x=x, y=[0.0] + table["mlp"].tolist() + [0.0]),
        go.Bar(name="norm/unembed bias", x=x, y=[0.0] + zeros + [result.bias_attr.mean().item()]),
    ])
    fig.update_layout(barmode="relative", title=_title(result, "Per layer"), xaxis_title="component",
                      yaxis_title="contribution to the logit (difference)")
    return fig


def top_neurons_bar(result, k: int | None = None) -> go.Figure:
    rows = result.top_neurons(k)
    fig = go.Figure(go.Bar(x=[r["value"] for r in rows][::-1], y=[r["component"] for r in rows][::-1],
                           orientation="h", marker_color=["#b2182b" if r["value"] > 0 else "#2166ac" for r in rows][::-1]))
    fig.update_layout(title=_title(result, "Top MLP neurons"), xaxis_title="contribution", yaxis_title="neuron")
    return fig
