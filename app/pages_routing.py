"""Explorer page for policy-gate routing (`interp.routing`, "How Alignment Routes", arXiv 2604.04385).

Shows the interchange necessity and sufficiency heatmaps (layer x head, * p<0.05, ** p<0.01),
a head picker (first shown: the gate) with that head's per-pair necessity and sufficiency,
and the modulation dose-response. The other figures (DLA screen, AtP vs exact, knockout,
cipher) follow in the generic view.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from .cellpick import apply_click
from .generic import chart
from .registry import Shown, page
from .runs import SavedRun


@page("routing", result="interp.routing.result")
def routing_page(run: SavedRun, r) -> Shown:
    figures = r.figures()
    shown = set()
    if r.gate is not None:
        screen = r.step("interchange")
        gate = tuple(r.gate)
        st.markdown(f"**Gate: L{gate[0]}H{gate[1]}** (highest interchange necessity; positions aligned "
                    f"{screen.align}, screen method {screen.method})")
        heads = [tuple(h) for h in screen.heads]
        st.caption("Click a cell of either map to pick that head below.")
        for column, which in zip(st.columns(2), ("necessity", "sufficiency")):
            with column:
                event = chart(figures[which], key=f"{run.name}:{which}", clickable=True)
            apply_click(event, f"{run.name}:{which}", lambda layer, head: {
                f"{run.name}:head": heads.index((layer, head)) if (layer, head) in heads else None})
        shown |= {"necessity", "sufficiency"}
        pick = st.selectbox("Head", range(len(heads)), key=f"{run.name}:head",
                            index=0 if f"{run.name}:head" in st.session_state else heads.index(gate),
                            format_func=lambda i: f"L{heads[i][0]}H{heads[i][1]}" + (" (gate)" if heads[i] == gate else ""))
        labels = [f"{i}: {p['harmful'][:40]}" for i, p in enumerate(r.pairs)]
        fig = go.Figure([go.Bar(x=labels, y=screen.necessity[pick].tolist(), name="necessity"),
                         go.Bar(x=labels, y=screen.sufficiency[pick].tolist(), name="sufficiency")])
        fig.update_layout(title=f"L{heads[pick][0]}H{heads[pick][1]}: per-pair interchange scores (nats; "
                                f"p_nec={float(screen.p_necessity[pick]):.3g})", yaxis_title="nats", barmode="group",
                          height=360, margin={"t": 40})
        chart(fig, key=f"{run.name}:pairs")
    else:
        st.info("This run has no interchange step: run `steerlens routing --steps screen,interchange` for the gate.")
    if "dose_response" in figures:
        chart(figures["dose_response"], key=f"{run.name}:dose")
        shown.add("dose_response")
    return Shown(figures=shown)
