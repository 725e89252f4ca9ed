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

from .generic import chart, heatmap, how_to_read, linked_selectbox, table_view
from .links import open_in_playground
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
    open_in_playground(entry.name, vector.model.get("spec"), key=f"{key}:playground")
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
    c5, c6 = st.columns(2)
    layer = linked_selectbox(c5, "Layer", layers, f"{key}:layer", index=len(layers) // 2)
    dim = pick_coordinate(c6, vector.width, f"{key}:dim")
    values = vector.vectors[layer].float()  # [width]
    chart(coordinates_figure(values, layer, dim), key=f"{key}:coords")
    if dim is not None:
        rank = int((values.abs() > values[dim].abs()).sum()) + 1
        st.caption(f"coordinate {dim}: {float(values[dim]):.4g} at layer {layer} (rank {rank} of {vector.width} by "
                   "|value|); at every layer: " + ", ".join(f"L{l} {float(vector.vectors[l][dim]):.3g}" for l in layers))
    order = values.abs().argsort(descending=True)[:50]
    table_view(pd.DataFrame({"coordinate": order.tolist(), "value": values[order].tolist()}),
               key=f"{key}:top", name=f"{key}-layer{layer}-top")
    if vector.method == "austeer":
        st.subheader("AUSteer: selected atomic units")
        units_view(vector.config.get("selected", []), vector.extras.get("beta"), key=f"{key}:units",
                   site=vector.site)


def pick_coordinate(container, width: int, key: str) -> int | None:
    """A coordinate to highlight (none by default), kept in the URL (``?<key>=<coordinate>``)."""
    if key not in st.session_state:
        raw = st.query_params.get(key)
        st.session_state[key] = int(raw) if isinstance(raw, str) and raw.isdigit() and int(raw) < width else None
    dim = container.number_input("Highlight coordinate", min_value=0, max_value=width - 1, value=None, step=1, key=key,
                                 placeholder="a coordinate (e.g. a massive dimension)")
    if dim is None:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(int(dim))
    return None if dim is None else int(dim)


def coordinates_figure(values: torch.Tensor, layer: int, dim: int | None) -> go.Figure:
    """values [width] as bars; coordinate `dim` (if any) in red with its value written above it."""
    colours = ["#636efa"] * len(values)
    if dim is not None:
        colours[dim] = "#d62728"
    fig = go.Figure(go.Bar(y=values.tolist(), marker_color=colours,
                           hovertemplate="coordinate %{x}: %{y:.4g}<extra></extra>"))
    if dim is not None:
        fig.add_annotation(x=dim, y=float(values[dim]), text=f"coordinate {dim}: {float(values[dim]):.3g}",
                           showarrow=True, arrowhead=2, font={"color": "#d62728", "size": 12})
    fig.update_layout(title=f"Layer {layer}: coordinates" + (f" (coordinate {dim} in red)" if dim is not None else ""),
                      xaxis_title="coordinate", yaxis_title="value", height=320, margin={"t": 40})
    return fig
