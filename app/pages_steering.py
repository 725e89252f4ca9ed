"""Explorer page for steering-vector files (`steering.vectors.SteeringVector`).

Vector files (from `steerlens vector make` or `austeer fit`) lying in the runs folder are
listed next to the runs. The page shows the file's metadata (site, kind, method, the model
it was made on, the config), the norm of every layer's direction, how similar the
layers' directions are, and the coordinates of one picked layer; AUSteer masks also get
their selected units (`app.pages_austeer.units_view`).

Unlike run pages this one receives the listing entry and the loaded vector.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from .generic import chart, heatmap, how_to_read, table_view
from .pages_austeer import units_view
from .registry import page
from .runs import VECTOR_ANALYSIS, RunEntry


@page(VECTOR_ANALYSIS)
def vector_page(entry: RunEntry, vector) -> None:
    key = entry.name
    st.title(f"steering vector: {entry.name}")
    st.caption(f"{vector.kind} vector at site **{vector.site}** · method {vector.method} · normalization "
               f"{vector.normalization} · made on **{vector.model.get('spec') or '?'}** · file time {entry.created}")
    how_to_read(VECTOR_ANALYSIS)
    layers = vector.layers
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("layers", len(layers))
    c2.metric("width", vector.width)
    c3.metric("nonzero coordinates", sum(int((v != 0).sum()) for v in vector.vectors.values()))
    c4.metric("largest norm", f"{max(vector.norms().values()):.4g}")
    if st.toggle("Metadata", key=f"{key}:metadata"):
        st.json({"summary": {k: v for k, v in vector.summary().items() if k not in ("model", "config")},
                 "model": vector.model, "config": vector.config}, expanded=1)
    norms = vector.norms()
    fig = go.Figure(go.Bar(x=[str(layer) for layer in norms], y=list(norms.values()),
                           hovertemplate="layer %{x}: norm %{y:.4g}<extra></extra>"))
    fig.update_layout(title="Norm of the direction per layer", xaxis={"title": "layer", "type": "category"},
                      yaxis_title="L2 norm",
                      height=320, margin={"t": 40})
    chart(fig, key=f"{key}:norms")
    stacked = torch.stack([vector.vectors[layer] for layer in layers]).float()  # [n, width]
    if len(layers) > 1:
        unit = stacked / stacked.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        labels = [f"L{layer}" for layer in layers]
        chart(heatmap((unit @ unit.T).tolist(), x=labels, y=labels, value="cosine", x_title="layer",
                      y_title="layer", title="Cosine similarity between the layers' directions"),
              key=f"{key}:cosine")
    layer = st.selectbox("Layer", layers, index=len(layers) // 2, key=f"{key}:layer")
    values = vector.vectors[layer].float()  # [width]
    fig = go.Figure(go.Bar(y=values.tolist(), hovertemplate="coordinate %{x}: %{y:.4g}<extra></extra>"))
    fig.update_layout(title=f"Layer {layer}: coordinates", xaxis_title="coordinate", yaxis_title="value",
                      height=320, margin={"t": 40})
    chart(fig, key=f"{key}:coords")
    order = values.abs().argsort(descending=True)[:50]
    table_view(pd.DataFrame({"coordinate": order.tolist(), "value": values[order].tolist()}),
               key=f"{key}:top", name=f"{key}-layer{layer}-top")
    if vector.method == "austeer":
        st.subheader("AUSteer: selected atomic units")
        units_view(vector.config.get("selected", []), vector.extras.get("beta"), key=f"{key}:units",
                   site=vector.site)
