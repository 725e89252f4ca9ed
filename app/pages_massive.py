"""Explorer page for massive activations (`interp.massive`, Sun et al., COLM 2024).

Controls: a layer and a prompt filter. Shows the max / median ratio per layer against the
ratio threshold, the layer's largest entries (dimension, token, value) and, for a picked
dimension, its largest |value| at every layer (among each layer's listed top entries).
"""

from __future__ import annotations

import re

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .generic import chart, pick_prompt, table_view
from .links import open_vector_coordinate
from .registry import Shown, page
from .runs import SavedRun
from .tokens import visible


@page("massive", result="interp.massive.activations")
def massive_page(run: SavedRun, r) -> Shown:
    layers = list(range(r.n_layers))
    massive = r.is_massive()
    fig = go.Figure(go.Bar(x=layers, y=r.ratio.tolist(), marker_color=["#b2182b" if m else "#878787" for m in massive],
                           hovertemplate="layer %{x}: max/median = %{y:.1f}<extra></extra>"))
    fig.add_hline(y=r.ratio_threshold, line_dash="dash", annotation_text=f"ratio threshold {r.ratio_threshold:g}")
    fig.update_layout(title="max |a| / median |a| of each decoder layer output (red: massive)", xaxis_title="layer",
                      yaxis_title="ratio", yaxis_type="log", height=340, margin={"t": 40})
    chart(fig, key=f"{run.name}:ratio")
    if getattr(r, "groups", None):
        st.markdown("**Massive dimensions, grouped by the layer where they first appear**")
        groups = pd.DataFrame(r.groups)
        listed = {c: groups[c].astype(str) for c in groups if groups[c].map(type).eq(list).any()}
        table_view(groups.assign(**listed), key=f"{run.name}:groups", name=f"{run.name}-groups")
    c1, c2 = st.columns([1, 3])
    first = r.first_massive_layer if r.first_massive_layer is not None else int(r.ratio.argmax())
    layer = c1.selectbox("Layer", ["all", *layers], index=1 + first, key=f"{run.name}:layer")
    prompt = pick_prompt(c2, r.prompts, key=f"{run.name}:prompt", all_label="all prompts")
    ranked = r.top.assign(rank=r.top["rank"] + 1, token=r.top["token"].map(visible))  # ranks from 1 on every page
    top = ranked if layer == "all" else ranked[ranked["layer"] == layer]
    if prompt != "mean":
        top = top[top["prompt"] == prompt]
    if layer != "all":
        st.caption(f"layer {layer}: max |a| {float(r.max_abs[layer]):.4g}, median |a| "
                   f"{float(r.median_abs[layer]):.4g}, ratio {float(r.ratio[layer]):.4g}, massive dims "
                   f"{[d for d, _ in r.layer_dims[layer]] or 'none'}")
    table_view(top, key=f"{run.name}:top", name=f"{run.name}-top")
    dims = sorted(set(r.massive_dims) | set(r.top["dim"].astype(int).tolist()))
    dim = st.selectbox("Dimension", dims, key=f"{run.name}:dim",
                       index=dims.index(r.massive_dims[0]) if r.massive_dims else 0)
    of_dim = r.top[r.top["dim"] == dim].assign(abs_value=lambda t: t["value"].abs())
    best = of_dim.sort_values("abs_value", ascending=False).drop_duplicates("layer").set_index("layer")
    fig = go.Figure(go.Scatter(x=layers, y=[float(best["value"][l]) if l in best.index else None for l in layers],
                               mode="lines+markers", text=[visible(best["token"][l]) if l in best.index else ""
                                                           for l in layers],
                               hovertemplate="layer %{x}: %{y:.4g} at %{text}<extra></extra>"))
    fig.update_layout(title=f"Dimension {dim}: largest listed value per layer", xaxis_title="layer",
                      yaxis_title="activation", height=320, margin={"t": 40})
    chart(fig, key=f"{run.name}:dim_curve")
    vector_links(run, r, dim, None if layer == "all" else layer)
    if "massive_bars" in run.figure_names():
        chart(readable_bars(run.figure("massive_bars")), key=f"{run.name}:bars")
    if r.notes:
        st.caption("Notes: " + "; ".join(r.notes))
    return Shown(figures={"massive_bars"}, tables={"top"})


def readable_bars(fig: go.Figure) -> go.Figure:
    """The saved per-layer bars with labels written along each bar at a readable size (plotly
    shrinks labels above 30 bars to a few pixels) and tokens with visible whitespace."""
    fig = go.Figure(fig)
    for trace in fig.data:
        if trace.type == "bar" and trace.text is not None:
            trace.text = [re.sub(r"'([^']*)'|\"([^\"]*)\"", lambda m: visible(m.group(1) or m.group(2) or ""), t or "")
                          for t in trace.text]
            trace.update(textposition="inside", textangle=-90, insidetextanchor="end",
                         textfont={"size": 11, "color": "white"})
    fig.update_layout(uniformtext={"minsize": 10, "mode": "show"}, height=420)
    return fig


def vector_links(run: SavedRun, r, dim: int, layer: int | None, most: int = 5) -> None:
    """Buttons to the steering vectors of the runs folder that live in this run's residual basis
    (width d_model, site "layer" or "ffn"), each opening the vector with coordinate `dim` highlighted."""
    from .access import app_options
    from .browse import open_vector, runs_in

    found = []
    for entry in runs_in(app_options().runs):
        if entry.kind != "vector" or entry.broken:
            continue
        try:
            vector = open_vector(entry)
        except Exception:  # the run list marks unreadable files
            continue
        if vector.width == r.d_model and vector.site in ("layer", "ffn"):
            found.append((entry.name, vector))
    if not found:
        return
    st.caption(f"Dimension {dim} in the steering vectors of width {r.d_model} in the runs folder:")
    for column, (name, vector) in zip(st.columns(min(len(found), most)), found[:most]):
        with column:
            open_vector_coordinate(name, dim, vector.layers, layer, key=f"{run.name}:to:{name}",
                                   label=f"dimension {dim} in {name}")
