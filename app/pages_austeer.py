"""Explorer page for AUSteer evaluations (`steering.austeer_eval`, arXiv 2602.04428).

Shows the accuracy table (no steering, block-level difference of means, AUSteer at each
k), the selected atomic units (layer, coordinate, beta) with a top-k slider and a layer
filter, where they sit (layer x coordinate scatter) and the full beta map. `units_view`
is reused by the steering-vector page for AUSteer mask files (`austeer fit`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from steering.austeer_eval import units_figure

from .generic import chart, heatmap, table_view
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


@page("austeer-eval", result="steering.austeer_eval")
def austeer_page(run: SavedRun, r) -> Shown:
    st.subheader(f"Test accuracy on {r.task} (site {r.site})")
    table_view(r.table, key=f"{run.name}:table", name=f"{run.name}-accuracy")
    st.subheader("Selected atomic units")
    units_view(r.selected, r.beta, key=f"{run.name}:units", site=r.site)
    return Shown(tables={"table"})
