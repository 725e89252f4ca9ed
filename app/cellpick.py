"""Clicking a heatmap cell picks its row and column (a layer and a head) in the page's pickers.

Streamlit's chart selection (`st.plotly_chart(on_select="rerun")`) returns nothing for plotly
heatmaps (plotly.js heatmaps have no point selection: streamlit issues 8760 and 15042), so
`clickable_cells` lays one small invisible square marker over the centre of every cell, carrying
``customdata = [row, column, value]`` and the heatmap's own hover (and per-cell ``hovertext``); the layout's
``hoverdistance = -1`` makes a click anywhere in a cell land on its marker, and the picked cell
gets an outline. `selected_cell(event)` maps the selection event to ``(row, column)``, and
`apply_click` sets the pickers' session state once per new click, before they are drawn, so a
later change of a picker is not undone by the old click (and `linked_selectbox` writes it to
the URL as for any choice).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from .figdata import decode

OVERLAY = "cells"  # name of the marker trace
# Plotly measures a marker's hover distance from its edge (0 anywhere inside it), so markers that
# overlap their neighbours (an 18 px square on an 8 px row) hand a click to the next row's marker.
# Unselected markers are a few pixels (no overlap on any realistic map, so the nearest centre, the
# cell's own, wins); only the picked cell's outline is drawn large.
MARKER, PICKED = 3, 18


def clickable_cells(fig: go.Figure) -> go.Figure:
    """Add the click markers over the figure's first heatmap (in place); figures without one unchanged."""
    trace = next((t for t in fig.data if t.type == "heatmap" and t.z is not None), None)
    if trace is None:
        return fig
    z = decode(trace.z)
    rows, cols = len(z), len(z[0]) if z else 0
    x = decode(trace.x) if trace.x is not None else list(range(cols))
    y = decode(trace.y) if trace.y is not None else list(range(rows))
    text = decode(trace.text) if trace.text is not None else None
    hover = decode(trace.hovertext) if trace.hovertext is not None else None
    cells = [(r, c) for r in range(rows) for c in range(cols)]
    template = trace.hovertemplate or "%{y}, %{x}: %{z:.4g}<extra></extra>"
    fig.add_scatter(
        x=[x[c] for _, c in cells], y=[y[r] for r, _ in cells], mode="markers", name=OVERLAY, showlegend=False,
        customdata=[[r, c, z[r][c]] for r, c in cells],
        text=[text[r][c] for r, c in cells] if isinstance(text, list) and text and isinstance(text[0], list) else None,
        hovertext=[hover[r][c] for r, c in cells] if isinstance(hover, list) and hover and isinstance(hover[0], list)
        else None,
        hovertemplate=re.sub(r"%\{z([:}])", r"%{customdata[2]\1", template),
        marker={"symbol": "square-open", "size": MARKER, "color": "black", "line": {"width": 2}, "opacity": 0},
        selected={"marker": {"opacity": 1, "size": PICKED}}, unselected={"marker": {"opacity": 0}})
    trace.hoverinfo = "skip"  # the marker on top shows the same hover
    fig.update_layout(hoverdistance=-1, clickmode="event+select")
    return fig


def selected_cell(event: Mapping | None) -> tuple[int, int] | None:
    """(row, column) of the clicked cell in a `st.plotly_chart` selection event, or None.

    The event is ``{"selection": {"points": [{"customdata": [row, column, value], ...}, ...]}}``;
    points of other traces (no customdata) are ignored; with several cells the last one counts."""
    selection = (event or {}).get("selection") or {}
    for point in reversed(selection.get("points") or []):
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and len(data) >= 2 and all(isinstance(v, (int, float)) for v in data[:2]):
            return int(data[0]), int(data[1])
    return None


def apply_click(event: Mapping | None, key: str, assign: Callable[[int, int], dict[str, Any]]) -> tuple[int, int] | None:
    """On a new click in the chart `key`, set ``st.session_state`` from ``assign(row, column)``
    (picker key -> value; keys mapped to None are left alone). Returns the clicked cell, or None."""
    cell = selected_cell(event)
    seen = f"{key}:clicked"
    if cell is None or st.session_state.get(seen) == cell:
        if cell is None:
            st.session_state.pop(seen, None)
        return None
    st.session_state[seen] = cell
    for picker, value in assign(*cell).items():
        if value is not None:
            st.session_state[picker] = value
    return cell
