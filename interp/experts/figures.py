"""Plotly figures of an `ExpertsResult`: the layer x expert association heatmap (tested
candidates marked by their causal effect) and the condition bars with the random-control
spread."""

from __future__ import annotations

import plotly.graph_objects as go


def experts_figures(result) -> dict:
    return {"score_heatmap": score_heatmap(result), "effects": effect_bars(result),
            "causal_ranking": causal_ranking(result)}


def score_heatmap(result, score: str = "ftri") -> go.Figure:
    z = getattr(result, score)
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), customdata=result.p_value.tolist(), x=[f"E{e}" for e in range(z.shape[1])],
        y=[f"L{layer}" for layer in result.layers], colorscale="RdBu", zmid=0.0,
        colorbar={"title": score}, hovertemplate="%{y} %{x}: %{z:.3f} (p=%{customdata:.3g})<extra></extra>"))
    tested = result.experts
    fig.add_trace(go.Scatter(
        x=[f"E{r['expert']}" for r in tested], y=[f"L{r['layer']}" for r in tested], mode="markers",
        marker={"symbol": "circle-open", "size": 12, "color": "black"}, name="tested causally",
        text=[f"causal effect {r['effect']:.3f}" for r in tested], hoverinfo="text"))
    fig.update_layout(title=f"Association ({score}: target - other selection frequency)",
                      xaxis_title="expert", yaxis_title="MoE layer", yaxis={"autorange": "reversed"})
    return fig


def effect_bars(result) -> go.Figure:
    fig = go.Figure()
    names = ["baseline", "top_off", "top_on"]
    for prompts in ("target", "other"):
        values = [result.effects[n][prompts] for n in names]
        randoms = result.random_off(prompts)
        x = names + (["random_off"] if randoms else [])
        error = [0.0] * len(names)
        if randoms:
            mean = sum(randoms) / len(randoms)
            values.append(mean)
            error.append(max(abs(v - mean) for v in randoms))
        fig.add_trace(go.Bar(x=x, y=values, name=f"{prompts} prompts",
                             error_y={"type": "data", "array": error, "visible": True}))
    fig.update_layout(title=f"{result.metric} per condition (random: mean, bar = range of draws)",
                      barmode="group", yaxis_title=result.metric)
    return fig


def causal_ranking(result) -> go.Figure:
    rows = result.experts
    labels = [f"L{r['layer']}E{r['expert']}" for r in rows]
    fig = go.Figure(go.Bar(x=labels, y=[r["effect"] for r in rows], name="off: baseline - value",
                           customdata=[[r["score"], r["p_value"]] for r in rows],
                           hovertemplate="%{x}: effect %{y:.3f}, fTRI %{customdata[0]:.3f}, "
                                         "p=%{customdata[1]:.3g}<extra></extra>"))
    if any(r["effect_on"] is not None for r in rows):
        fig.add_trace(go.Bar(x=labels, y=[r["effect_on"] or 0.0 for r in rows], name="forced on: value - baseline"))
    fig.update_layout(title=f"Causal effect of each candidate alone on {result.metric}", barmode="group",
                      xaxis_title="expert (ranked by effect off)", yaxis_title="change")
    return fig
