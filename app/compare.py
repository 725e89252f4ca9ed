"""Compare two runs of one analysis side by side (two models, or two settings).

Chosen on the run list among the listed runs (names only, as everywhere). Shows what
differs in their config, their summary numbers with the difference, every figure both runs
saved, next to each other on one shared colour scale per heatmap (`shared_scale`), and the
difference B - A of one tensor or heatmap both runs hold with the same shape (`difference_figure`:
a diverging colour scale symmetric about 0); one line says how many were left out because their
shapes differ.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from . import labels
from .figdata import decode
from .runs import RunEntry, SavedRun


def compare_section(entries: list[RunEntry], open_run) -> None:
    """Two pickers limited to runs of one analysis; `open_run(entry)` opens a listed run."""
    runs = [e for e in entries if not e.broken and e.kind == "run"]
    if len(runs) < 2:
        return
    if not st.toggle("Compare two runs of one analysis", key="compare:on"):
        return
    names = [e.name for e in runs]
    left, right = st.columns(2)
    first = left.selectbox("Run A", names, key="compare:a")
    analysis = next(e.analysis for e in runs if e.name == first)
    others = [e.name for e in runs if e.analysis == analysis and e.name != first]
    if not others:
        st.info(f"No other run of {analysis!r} to compare {first} with.")
        return
    second = right.selectbox("Run B", others, key="compare:b")
    a, b = (open_run(next(e for e in runs if e.name == n)) for n in (first, second))
    st.markdown(f"**{labels.title(analysis)}**: {a.name} (model {a.model.get('spec', '?')}) vs {b.name} "
                f"(model {b.model.get('spec', '?')})")
    st.dataframe(compare_table(a.config, b.config, a.name, b.name, only_differences=True), hide_index=True,
                 key="compare:config")
    st.dataframe(compare_table(a.summary, b.summary, a.name, b.name), hide_index=True, key="compare:summary")
    from .generic import chart

    for name in [n for n in a.figure_names() if n in set(b.figure_names())]:
        st.caption(f"figure `{name}`")
        one, two = st.columns(2)
        left, right = shared_scale(a.figure(name), b.figure(name))
        with one:
            chart(left, key=f"compare:a:{name}")
        with two:
            chart(right, key=f"compare:b:{name}")
    difference_section(a, b)


def difference_section(a: SavedRun, b: SavedRun) -> None:
    """A picker among the tensors and heatmaps both runs hold with one shape, and the map of B - A for the pick."""
    candidates = diff_candidates(a, b)
    choices = [c for c in candidates if _shape(a, *c) == _shape(b, *c)]
    if not candidates:
        return
    st.subheader("Difference (B − A)")
    left_out = len(candidates) - len(choices)
    if left_out:
        st.caption(f"{left_out} tensor(s)/figure(s) both runs hold are left out because their shapes differ.")
    if not choices:
        return
    pick = st.selectbox("Difference (B − A) of", choices, key="compare:diff", format_func=option_label)
    (va, axes), (vb, _) = (diff_values(run, *pick) for run in (a, b))
    from .generic import chart

    chart(difference_figure(vb - va, f"{option_label(pick)}: {b.name} − {a.name}", **axes), key="compare:diff:plot",
          name=f"difference-{pick[1].replace('/', '-')}")


def option_label(choice: tuple[str, str]) -> str:
    """"tensor <name>" or "figure <name>", the same for every analysis (no "tensors/" prefix)."""
    kind, name = choice
    return f"{kind} {name.removeprefix('tensors/')}"


def _shape(run: SavedRun, kind: str, name: str) -> tuple:
    if kind == "tensor":
        return tuple(run.tensor_info()[name][0])
    return np.shape(decode(_first_heatmap(run.figure(name)).z))


def shared_scale(a: go.Figure, b: go.Figure) -> tuple[go.Figure, go.Figure]:
    """Copies of two figures whose heatmaps (paired in order) share one colour range: the range of
    both; symmetric about the trace's zmid, or about 0 when the values straddle 0."""
    a, b = go.Figure(a), go.Figure(b)
    pairs = zip(*([t for t in fig.data if t.type == "heatmap" and t.z is not None] for fig in (a, b)))
    for one, two in pairs:
        values = np.concatenate([np.asarray(decode(t.z), dtype=float).ravel() for t in (one, two)])
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        low, high = float(values.min()), float(values.max())
        mid = one.zmid if one.zmid is not None else 0.0 if low < 0 < high else None
        if mid is not None:
            top = max(abs(low - mid), abs(high - mid)) or 1.0
            low, high = mid - top, mid + top
        for trace in (one, two):
            trace.update(zmin=low, zmax=high, zauto=False, zmid=None)
    return a, b


def diff_candidates(a: SavedRun, b: SavedRun) -> list[tuple[str, str]]:
    """("tensor", name) for tensors both runs saved, ("figure", name) for figures with a heatmap in both."""
    shared = [n for n in a.tensor_info() if n in b.tensor_info() and a.tensor_info()[n][0]]
    heatmaps = [n for n in a.figure_names() if n in set(b.figure_names()) and all(
        _first_heatmap(run.figure(n)) is not None for run in (a, b))]
    return [("tensor", n) for n in shared] + [("figure", n) for n in heatmaps]


def diff_values(run: SavedRun, kind: str, name: str) -> tuple[np.ndarray, dict]:
    """The values to subtract, with axis labels and titles: a tensor as saved (float), or the z of
    the figure's first heatmap."""
    if kind == "tensor":
        return run.tensor(name).float().numpy(), {}
    trace, fig = _first_heatmap(run.figure(name)), run.figure(name)
    return np.asarray(decode(trace.z), dtype=float), {
        "x": decode(trace.x), "y": decode(trace.y), "x_title": fig.layout.xaxis.title.text or "",
        "y_title": fig.layout.yaxis.title.text or ""}


def difference_figure(diff: np.ndarray, title: str, x=None, y=None, x_title: str = "", y_title: str = "") -> go.Figure:
    """B - A as a heatmap on a diverging scale symmetric about 0 (|B - A| max at both ends). Tensors of
    more than two axes are averaged over the leading ones (said in the title); 1-D ones are one row."""
    diff = np.asarray(diff, dtype=float)
    if diff.ndim > 2:
        title += f" (mean over the leading {diff.ndim - 2} axes)"
        diff = diff.reshape(-1, *diff.shape[-2:]).mean(0)
    diff = diff.reshape(1, -1) if diff.ndim < 2 else diff
    top = float(np.nanmax(np.abs(diff))) if diff.size and np.isfinite(diff).any() else 0.0
    top = top if top > 0 else 1.0
    from .generic import heatmap

    x = list(x) if x is not None and len(x) == diff.shape[1] else None
    y = list(y) if y is not None and len(y) == diff.shape[0] else None
    return heatmap(diff.tolist(), x=x, y=y, title=title, colorscale="RdBu", zmid=0.0, zmin=-top, zmax=top,
                   value="B − A", x_title=x_title or ("last axis" if x is None else ""),
                   y_title=y_title or ("axis before" if y is None else ""))


def _first_heatmap(fig: go.Figure):
    return next((t for t in fig.data if t.type == "heatmap" and t.z is not None), None)


def compare_table(a: dict, b: dict, name_a: str, name_b: str, only_differences: bool = False) -> pd.DataFrame:
    """One row per key of either dict: both values and B - A (signed text for numbers, "same" or
    "differs" for other values)."""
    rows = []
    for key in list(dict.fromkeys([*a, *b])):
        va, vb = a.get(key), b.get(key)
        if only_differences and va == vb:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        rows.append({"field": labels.metric(key, va if va is not None else 0).label if numeric else key,
                     name_a: _text(va), name_b: _text(vb),
                     "B - A": _signed(vb - va) if numeric else "same" if va == vb else "differs"})
    return pd.DataFrame(rows, columns=["field", name_a, name_b, "B - A"])


def _signed(value: float) -> str:
    return "0" if value == 0 else f"{value:+.4g}"


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)[:200]
