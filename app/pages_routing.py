"""Explorer page for policy-gate routing (`interp.routing`, "How Alignment Routes", arXiv 2604.04385).

Shows the run's warnings (behaviour absent; the exact gate outside the fast estimate's top
--verify), the gate with its per-head and family-wise p, the interchange necessity and sufficiency heatmaps
(layer x head, * p<0.05, ** p<0.01; blank: a head only estimated by AtP, or not screened), a head
picker kept in the URL (first shown: the gate) with that head's per-pair necessity and
sufficiency, and the modulation dose-response. The other figures (DLA screen, AtP vs exact,
knockout, cipher) follow in the generic view.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from .cellpick import apply_click
from .figdata import decode
from .generic import chart, linked_selectbox, show_warnings
from .registry import Shown, page
from .runs import SavedRun

MARK_SIZE = 13  # px: the significance marks (*, **) on the maps


def atp_percent(screen, index: int) -> float | None:
    """The AtP estimate of head `index`'s necessity, as % of the mean baseline delta (the map's unit)."""
    if screen.atp_necessity is None:
        return None
    delta = float(screen.baseline_delta.double().mean())
    return 100.0 * float(screen.atp_necessity[index].double().mean()) / delta if delta else None


def _estimator(screen) -> str:
    """The fast estimate's name ("AtP", "IG (m=5)"); runs made before IG existed are AtP."""
    return getattr(screen, "estimator", None) or "AtP"


def gate_p_line(screen, index: int) -> str:
    """': p = ..., family-wise p = ...' for the gate at `index` (each only where the run has it)."""
    parts = []
    p = float(screen.p_necessity[index])
    if not math.isnan(p):
        parts.append(f"p = {p:.3g}")
    family = screen.gate_p_family() if hasattr(screen, "gate_p_family") else None
    if family is not None:
        parts.append(f"family-wise p = {family:.3g} over the {int(screen.exact.sum())} heads measured exactly "
                     "(Westfall-Young)")
    return ": " + ", ".join(parts) if parts else ""


def not_measured(screen, index: int) -> str | None:
    """One line when head `index` has no exact interchange scores (only AtP estimated it), else None."""
    if bool(screen.exact[index]) and not math.isnan(float(screen.necessity[index].double().mean())):
        return None
    layer, head = screen.heads[index]
    atp = atp_percent(screen, index)
    name = _estimator(screen)
    estimate = f"{name} estimate: {atp:.1f}% necessity" if atp is not None else f"no {name} estimate"
    return (f"L{layer}H{head} was not measured exactly ({estimate}); rerun with a larger --verify or "
            "--method exact")


def map_figure(fig: go.Figure, which: str, screen) -> go.Figure:
    """The saved interchange map with a title that fits a half-width column, readable marks, and a
    hover that names the blank cells (AtP estimate only / not screened)."""
    trace = fig.data[0]
    z, marks = decode(trace.z), decode(trace.text) if trace.text is not None else None
    where = {tuple(h): i for i, h in enumerate(screen.heads)}
    hover = []
    for layer, row in enumerate(z):
        line = []
        for head, value in enumerate(row):
            name, index = f"L{layer}H{head}", where.get((layer, head))
            if value is not None and not math.isnan(value):
                line.append(f"{name}: {value:.2f}% {marks[layer][head] if marks else ''}")
            elif index is None:
                line.append(f"{name}: blank: not screened")
            else:
                atp = atp_percent(screen, index)
                line.append(f"{name}: blank: {_estimator(screen)} estimate only"
                            + (f" ({atp:.1f}%)" if atp is not None else ""))
        hover.append(line)
    trace.update(hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", textfont={"size": MARK_SIZE})
    return fig.update_layout(title=f"interchange {which}")


@page("routing", result="interp.routing.result")
def routing_page(run: SavedRun, r) -> Shown:
    show_warnings(r.summary().get("warnings"))
    figures = r.figures()
    shown = set()
    if r.gate is not None:
        screen = r.step("interchange")
        gate = tuple(r.gate)
        gi = [tuple(h) for h in screen.heads].index(gate)
        st.markdown(f"**Gate: L{gate[0]}H{gate[1]}** (highest interchange necessity; positions aligned "
                    f"{screen.align}, screen method {screen.method}){gate_p_line(screen, gi)}")
        heads = [tuple(h) for h in screen.heads]
        st.caption("% of the mean baseline delta (NLL harmful − benign); * p<0.05, ** p<0.01 (sign-flip "
                   "permutation); blank: fast estimate only (AtP or IG, not measured exactly) or not screened. "
                   "Click a cell of either map to pick that head below.")
        for column, which in zip(st.columns(2), ("necessity", "sufficiency")):
            with column:
                event = chart(map_figure(figures[which], which, screen), key=f"{run.name}:{which}", clickable=True)
            apply_click(event, f"{run.name}:{which}", lambda layer, head: {
                f"{run.name}:head": heads.index((layer, head)) if (layer, head) in heads else None})
        shown |= {"necessity", "sufficiency"}
        pick = linked_selectbox(st, "Head", list(range(len(heads))), f"{run.name}:head", index=heads.index(gate),
                                url_value=lambda i: f"L{heads[i][0]}H{heads[i][1]}",
                                format_func=lambda i: f"L{heads[i][0]}H{heads[i][1]}" + (" (gate)" if heads[i] == gate else ""))
        missing = not_measured(screen, pick)
        if missing:
            st.info(missing)
        else:
            labels = [f"{i}: {p['harmful'][:40]}" for i, p in enumerate(r.pairs)]
            fig = go.Figure([go.Bar(x=labels, y=screen.necessity[pick].tolist(), name="necessity"),
                             go.Bar(x=labels, y=screen.sufficiency[pick].tolist(), name="sufficiency")])
            fig.update_layout(title=f"L{heads[pick][0]}H{heads[pick][1]}: per-pair interchange scores (nats; "
                                    f"p_nec={float(screen.p_necessity[pick]):.3g})", yaxis_title="nats",
                              barmode="group", height=360, margin={"t": 40})
            chart(fig, key=f"{run.name}:pairs")
    elif not r.done:
        st.info("This run has no finished step yet (it was interrupted or is still running): continue it with "
                f"`steerlens routing --out {run.path} --resume`.")
    else:
        st.info("This run has no interchange step: run `steerlens routing --steps screen,interchange` for the gate.")
    if "dose_response" in figures:
        chart(figures["dose_response"], key=f"{run.name}:dose")
        shown.add("dose_response")
    return Shown(figures=shown)
