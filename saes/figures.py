"""Plotly figures of RISE results.

- `decoder_map_figure`: the 2-D map of decoder columns coloured by associated behaviour.
- `association_figure`: heatmap of top-firing latents x behaviours (step counts).
- `training_curves_figure`: SAE loss, FVU and L0 against training step, per layer.
- `dose_response_figure`: behaviour-step counts, mean steps and accuracy against alpha.
"""

from __future__ import annotations

COLORS = {"reflection": "#d62728", "backtracking": "#1f77b4", "other": "#7f7f7f", "none": "#dddddd"}


def decoder_map_figure(result, layer: int):
    import plotly.graph_objects as go

    coords = result.maps[f"layer_{layer}"]
    groups = result.groups[str(layer)]
    fig = go.Figure()
    for group in sorted(set(groups), key=lambda g: (g == "none", g)):
        idx = [i for i, g in enumerate(groups) if g == group]
        fig.add_scattergl(x=coords[idx, 0].tolist(), y=coords[idx, 1].tolist(), mode="markers", name=group,
                          text=[f"latent {i}" for i in idx], hovertemplate="%{text}<extra>" + group + "</extra>",
                          marker={"size": 4 if group == "none" else 8, "color": COLORS.get(group)})
    sil = result.silhouette.get(str(layer))
    fig.update_layout(title=f"Decoder columns, layer {layer} ({result.map_method}); silhouette "
                            f"{'n/a' if sil is None else f'{sil:.3f}'}", height=480, margin={"t": 50})
    return fig


def association_figure(result, layer: int, top: int = 40):
    import plotly.graph_objects as go

    table = result.counts[result.counts["layer"] == layer]
    wide = table.pivot_table(index="latent", columns="behaviour", values="count", fill_value=0)
    wide = wide.loc[wide.sum(axis=1).sort_values(ascending=False).index[:top]]
    share = wide.div(wide.sum(axis=1), axis=0)
    fig = go.Figure(go.Heatmap(z=share.T.values, x=[str(j) for j in wide.index], y=list(wide.columns),
                               customdata=wide.T.values, colorscale="Reds", zmin=0, zmax=1,
                               hovertemplate="latent %{x}, %{y}: %{customdata} steps (%{z:.0%})<extra></extra>"))
    fig.update_layout(title=f"Top-firing latent per labelled step, layer {layer} (share of each latent's steps)",
                      xaxis={"title": "latent", "type": "category"}, height=360, margin={"t": 50})
    return fig


def training_curves_figure(result):
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "FVU (batch)", "L0"))
    for layer, curve in result.curves.items():
        steps = [c["step"] for c in curve]
        for col, key in enumerate(("loss", "fvu", "l0"), 1):
            fig.add_scatter(x=steps, y=[c[key] for c in curve], name=f"layer {layer}", row=1, col=col,
                            showlegend=col == 1, mode="lines")
    fig.update_layout(title="SAE training (sae-lens SAETrainer)", height=340, margin={"t": 60})
    return fig


def dose_response_figure(result):
    from plotly.subplots import make_subplots

    rows = result.dose_response
    alphas = [r["alpha"] for r in rows]
    fig = make_subplots(rows=1, cols=3, subplot_titles=(f"{result.behaviour} steps per trace", "steps per trace",
                                                        "accuracy"))
    fig.add_scatter(x=alphas, y=[r["behaviour_steps"] for r in rows], mode="lines+markers", row=1, col=1,
                    name=result.behaviour)
    fig.add_scatter(x=alphas, y=[r["mean_steps"] for r in rows], mode="lines+markers", row=1, col=2, name="steps")
    fig.add_scatter(x=alphas, y=[r["accuracy"] for r in rows], mode="lines+markers", row=1, col=3, name="accuracy")
    fig.update_xaxes(title_text="alpha")
    fig.update_layout(title=f"Steering with the {result.behaviour} vector at step ends, layer {result.layer} "
                            f"({result.mode})", height=340, showlegend=False, margin={"t": 60})
    return fig
