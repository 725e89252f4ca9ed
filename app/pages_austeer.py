"""Explorer page for AUSteer evaluations (`steering.austeer_eval`, arXiv 2602.04428).

Shows the accuracy table (no steering, block-level difference of means, AUSteer at each
k), the selected atomic units (layer, coordinate, beta) with a top-k slider and a layer
filter, where they sit (layer x coordinate scatter) and the full beta map. `units_view`
is reused by the steering-vector page for AUSteer mask files (`austeer fit`).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from steering.austeer_eval import units_figure

from .generic import chart, heatmap, table_view
from .intervals import count_text, wilson
from .registry import Shown, page
from .runs import SavedRun


def units_view(selected: list, beta: torch.Tensor | None, key: str, site: str) -> None:
    """Selected units [[layer, dim, beta], ...] (best first) and the beta map [L, width]."""
    units = pd.DataFrame(selected, columns=["layer", "dim", "beta"])
    units.insert(0, "rank", range(1, len(units) + 1))
    if units.empty:
        st.info("No units selected.")
        return
    k = st.slider("Top k units", 1, len(units), min(len(units), 32), key=f"{key}:k") if len(units) > 1 else 1
    top = units.head(k)
    fig = units_figure(selected[:k], site)
    chart(fig, key=f"{key}:scatter")
    table_view(top, key=f"{key}:units", name=f"{key.split(':')[0]}-units")
    if beta is not None:
        if st.toggle("beta of every (layer, coordinate)", key=f"{key}:beta_map"):
            chart(heatmap(beta.float().tolist(), y=[f"L{l}" for l in range(beta.shape[0])], value="beta",
                          title="beta = +r_pos or -r_neg per coordinate", x_title="coordinate",
                          y_title="layer"), key=f"{key}:beta")


def accuracy_figure(table: pd.DataFrame, n: int | None, task: str) -> go.Figure:
    """Test accuracy per method, each bar labelled with correct / n (0.0625 of 16 reads 1/16) and
    its 95% Wilson interval as an error bar (`app.intervals.wilson`; 1/16 and 3/16 overlap)."""
    labels = [f"AUSteer k={k}" if m == "austeer" else m for m, k in zip(table["method"], table["k"])]
    acc = table["test_accuracy"].tolist()
    counts = [round(a * n) for a in acc] if n else []
    bounds = [wilson(k, n) for k in counts]
    text = [f"{k}/{n} ({low:.0%}-{high:.0%})" for k, (low, high) in zip(counts, bounds)] if n else [f"{a:.3g}" for a in acc]
    error = {"type": "data", "symmetric": False, "array": [h - a for a, (_, h) in zip(acc, bounds)],
             "arrayminus": [a - low for a, (low, _) in zip(acc, bounds)], "color": "#333"} if n else None
    fig = go.Figure(go.Bar(x=labels, y=acc, text=text, textposition="outside", marker_color="#4c78a8",
                           error_y=error, customdata=table["n_coordinates"].tolist(),
                           hovertemplate="%{x}: %{y:.0%} correct, %{text} (95% Wilson CI), %{customdata} steered "
                                         "coordinates<extra></extra>"))
    fig.update_layout(title=f"{task}: test accuracy" + (f" (n = {n} questions per bar; bars: 95% Wilson intervals)"
                                                        if n else ""),
                      xaxis_title="method", yaxis={"title": "test accuracy", "range": [0, 1.15], "tickformat": ".0%"},
                      height=360)
    return fig


@page("austeer-eval", result="steering.austeer_eval")
def austeer_page(run: SavedRun, r) -> Shown:
    n = run.config.get("n_test")
    st.subheader(f"Test accuracy on {r.task} (site {r.site}" + (f", {n} test questions)" if n else ")"))
    chart(accuracy_figure(r.table, n if isinstance(n, int) else None, r.task), key=f"{run.name}:accuracy")
    table = r.table.assign(correct=[count_text(round(a * n), n) for a in r.table["test_accuracy"]]) if n else r.table
    table_view(table, key=f"{run.name}:table", name=f"{run.name}-accuracy")
    st.subheader("Selected atomic units")
    units_view(r.selected, r.beta, key=f"{run.name}:units", site=r.site)
    return Shown(figures={"accuracy", "units"}, tables={"table"})
