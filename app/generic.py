"""The view every run gets, whatever its analysis: header, figures, tables, tensors, fields.

Only the saved-run format is assumed (see `app.runs.SavedRun`), so runs of analyses the
explorer has never seen open too. Analysis pages (`app/pages_*.py`) reuse the helpers
here (`chart`, `table_view`, `heatmap`) so that every page looks and filters the same way.
Each section catches its own errors: a corrupt part of a run shows a message, the rest
of the run still renders.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from interp.runs.figstyle import layers_top_down

from . import labels
from .axes import readable_log_axes
from .export import FORMATS, export_problem, figure_image
from .figdata import figure_table
from .runs import SavedRun

MAX_FILTER_VALUES = 50  # columns with at most this many distinct values get a value filter
MAX_HEATMAP_CELLS = 400_000
PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": "hover"}  # toolbar on hover: it never covers titles
# header metrics: values at a size that fits four columns of a 1000 px window without "3.…"
METRIC_CSS = """<style>[data-testid="stMetricValue"] {font-size: 1.5rem;}
[data-testid="stMetricValue"] > div {overflow: visible; text-overflow: clip;}</style>"""


@contextlib.contextmanager
def section(what: str) -> Iterator[None]:
    """Show an error for this part of the page instead of a traceback for the whole app."""
    try:
        yield
    except Exception as e:
        st.error(f"Cannot show {what}: {type(e).__name__}: {e}")


def chart(fig: go.Figure, key: str, name: str | None = None, clickable: bool = False, select: bool = False):
    """A plotly chart (hover shows values) with a "data" switch that shows its decoded numbers
    as a table with named columns (`app.figdata.figure_table`), a CSV, PNG, SVG and HTML download.
    Heatmaps with a layer axis get layer 0 at the top, as on every layer map of the explorer.
    With `clickable`, a click on a heatmap cell selects it (`app.cellpick`): returns the selection
    event for `cellpick.apply_click`. With `select`, the figure's own points are selectable as drawn
    (it carries its own markers, e.g. the heads grid of `app.patterns`): returns the event too."""
    layers_top_down(fig)
    readable_log_axes(fig)
    if fig.layout.margin.t is None or fig.layout.margin.t < 60:
        fig.update_layout(margin={"t": 70})  # room between the title and the chart's toolbar
    name = name or key.replace(":", "-").replace("/", "-")
    if clickable:
        from .cellpick import clickable_cells

        event = st.plotly_chart(clickable_cells(go.Figure(fig)), key=key, config=chart_config(name),
                                on_select="rerun", selection_mode="points")
    elif select:
        event = st.plotly_chart(fig, key=key, config=chart_config(name), on_select="rerun", selection_mode="points")
    else:
        event = st.plotly_chart(fig, key=key, config=chart_config(name))
    if st.toggle("data", key=f"{key}:data", help="the numbers behind this figure, with a CSV download, and the "
                 "figure as a standalone HTML file, a PNG and an SVG"):
        table_view(figure_table(fig), key=f"{key}:table", name=name)  # fig: without the click markers
        html, png, svg = st.columns(3)
        html.download_button(f"Download {name}.html (interactive figure)",
                             fig.to_html(include_plotlyjs="cdn", full_html=True).encode(), file_name=f"{name}.html",
                             mime="text/html", key=f"{key}:html", on_click="ignore")
        problem = export_problem()
        for column, fmt in ((png, "png"), (svg, "svg")):  # made when clicked (a headless Chrome, seconds)
            column.download_button(f"Download {name}.{fmt}", functools.partial(figure_image, fig, fmt),
                                   file_name=f"{name}.{fmt}", mime=FORMATS[fmt], key=f"{key}:{fmt}",
                                   on_click="ignore", disabled=problem is not None, help=problem)
    return event if clickable or select else None


def chart_config(name: str) -> dict:
    """plotly.js config of every chart: toolbar on hover, its camera saving `name`.png at twice the pixels."""
    return {**PLOTLY_CONFIG, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}


def heatmap(z, x=None, y=None, title: str = "", colorscale: str = "RdBu", zmid: float | None = 0.0,
            text=None, x_title: str = "", y_title: str = "", value: str = "value",
            top_down: bool = True, zmin: float | None = None, zmax: float | None = None,
            hover: str | None = None, show_text: bool = True) -> go.Figure:
    """A heatmap with hover values; rows top to bottom (layer 0 first) unless `top_down=False`.

    `z` [rows][columns]; `x` / `y` labels (category axes: give unique labels) or None for
    indices; `text` [rows][columns] shown in the cells (`show_text`) and on hover; `hover` a
    whole hovertemplate replacing the default one."""
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=y, colorscale=colorscale, zmid=zmid, zmin=zmin, zmax=zmax, text=text,
        texttemplate="%{text}" if text is not None and show_text else None, colorbar={"title": value},
        hovertemplate=hover or (f"{y_title or 'row'} %{{y}}, {x_title or 'column'} %{{x}}: %{{z:.4g}}"
                                f"{'<br>%{text}' if text is not None else ''}<extra></extra>"),
    ))
    rows = len(z) if hasattr(z, "__len__") else 0
    yaxis = {"autorange": "reversed" if top_down else True}
    if y is not None:  # a category axis only for labels: without labels it would hide every cell
        yaxis["type"] = "category"
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, yaxis=yaxis,
                      xaxis={"type": "category"} if x is not None else {},
                      margin={"t": 70, "b": 40}, height=max(320, 150 + 18 * min(rows, 60)))
    return fig


def linked_selectbox(container, label: str, options: list, key: str, index: int = 0,
                     url_value: Callable[[Any], str] = str, **kwargs):
    """A select box whose choice lives in the URL (``?<key>=<url_value(choice)>``, e.g. ``:layer=12``),
    so that a view can be shared: the URL's choice is honoured on a session's first draw (when it
    is one of `options`: a link made where the options differ still picks the same layer or head,
    or falls back to `index`), later choices are written back. `url_value` names an option in the
    URL (default `str`; e.g. ``L3H1`` for a head given as an index into a list of heads)."""
    if key not in st.session_state:
        raw = st.query_params.get(key)
        named = [i for i, option in enumerate(options) if url_value(option) == raw]
        if isinstance(raw, str) and named:
            index = named[0]
    else:
        index = 0  # the state (a click on a heatmap cell, or an earlier choice) decides
    value = container.selectbox(label, options, index=index, key=key, **kwargs)
    if value in options:
        st.query_params[key] = url_value(value)
    return value


def pick_prompt(container, prompts: list[str], key: str, mean: bool = True, label: str = "Prompt",
                all_label: str = "mean over prompts"):
    """A prompt picker (index into `prompts`), with "mean" (shown as `all_label`) first when `mean`;
    the choice is kept in the URL (`linked_selectbox`)."""
    options = (["mean"] if mean else []) + list(range(len(prompts)))
    return linked_selectbox(container, label, options, key, format_func=lambda i: all_label if i == "mean"
                            else f"{i}: {prompts[i][:70]}")


# ---- header ---------------------------------------------------------------------------
def header(run: SavedRun) -> None:
    """Title, provenance line, the summary's numbers as labelled metrics with units and help,
    a "how to read this" note, and (on request) summary, config and provenance in full."""
    model = run.model
    st.title(f"{labels.title(run.analysis)}: {run.name}")
    seed = run.manifest.get("seed")
    st.caption(" · ".join(part for part in (
        f"analysis `{run.analysis}`", f"model **{model.get('spec', '?')}** ({model.get('family', '?')})",
        f"created {run.manifest.get('created', '?')}", f"seed {seed}" if seed is not None else "",
        f"steerlens {run.manifest.get('steerlens_version', '?')}") if part))
    numbers = {k: v for k, v in run.summary.items() if isinstance(v, (int, float))}
    if numbers:
        st.html(METRIC_CSS)
        columns = st.columns(min(len(numbers), 4))
        for i, (key, value) in enumerate(list(numbers.items())[:12]):
            shown = labels.metric(key, value)
            columns[i % len(columns)].metric(shown.label, shown.value, help=shown.help)
    how_to_read(run.analysis)
    st.download_button("Download the whole run (.zip)", lambda: run_zip(run), file_name=f"{run.path.name}.zip",
                       mime="application/zip", key=f"{run.name}:zip", on_click="ignore",
                       help="manifest.json and every file it lists, as saved")
    if st.toggle("Summary, config and provenance", key=f"{run.name}:details"):  # drawn only when asked
        left, right = st.columns(2)
        left.markdown("**Summary**")
        left.json(run.summary, expanded=1)
        right.markdown("**Config**")
        right.dataframe(_config_table(run.config), hide_index=True)
        right.markdown("**Model**")
        right.json(model, expanded=False)
        right.markdown("**Timings (s) and versions**")
        right.json({"timings": run.manifest.get("timings"), "versions": run.manifest.get("versions")},
                   expanded=False)


def show_warnings(lines) -> None:
    """Each of a result's one-line warnings (``summary()["warnings"]``) as a warning box."""
    for line in lines or []:
        st.warning(line[:1].upper() + line[1:], icon="⚠️")


def how_to_read(analysis: str | None) -> None:
    """The page's "How to read this page" note (`labels.NOTES`: from the analysis' docstring, paper linked)."""
    note = labels.NOTES.get(analysis or "")
    if note:
        with st.expander("How to read this page"):
            st.markdown(note)


def run_zip(run: SavedRun) -> bytes:
    """The run folder as a zip: manifest.json and the files it names (each checked to stay in the run)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(run.path / "manifest.json", f"{run.path.name}/manifest.json")
        for rel in run.manifest.get("files", []):
            archive.write(run.file(rel), f"{run.path.name}/{rel}")
    return buffer.getvalue()


def _config_table(config: dict) -> pd.DataFrame:
    return pd.DataFrame({"option": list(config), "value": [json.dumps(v) for v in config.values()]})


# ---- tables -----------------------------------------------------------------------------
def filter_table(df: pd.DataFrame, text: str = "", column: str | None = None,
                 values: list | None = None) -> pd.DataFrame:
    """Rows whose text cells contain `text` (case-insensitive) and `column` is in `values`."""
    out = df
    if text:
        textual = [c for c in out.columns if not pd.api.types.is_numeric_dtype(out[c])]
        hits = pd.Series(False, index=out.index)
        for c in textual:
            hits |= out[c].astype(str).str.contains(text, case=False, regex=False, na=False)
        out = out[hits]
    if column is not None and values:
        out = out[out[column].isin(values)]
    return out


def filterable_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if df[c].nunique(dropna=True) <= MAX_FILTER_VALUES
            and not pd.api.types.is_float_dtype(df[c])]


def table_view(df: pd.DataFrame, key: str, name: str) -> pd.DataFrame:
    """A table with a text filter, a value filter on one column and a CSV download."""
    left, mid, right = st.columns([2, 1, 2])
    text = left.text_input("Rows containing", key=f"{key}:text", placeholder="text in any column")
    choices = filterable_columns(df)
    column = mid.selectbox("Filter column", [None, *choices], key=f"{key}:col",
                           format_func=lambda c: "(none)" if c is None else str(c))
    values = []
    if column is not None:
        values = right.multiselect(f"{column} is one of", sorted(df[column].dropna().unique().tolist(), key=str),
                                   key=f"{key}:values")
    shown = filter_table(df, text, column, values)
    st.dataframe(shown, key=f"{key}:df", hide_index=isinstance(df.index, pd.RangeIndex))
    st.download_button(f"Download {name}.csv ({len(shown)} of {len(df)} rows)",
                       shown.to_csv(index=not isinstance(df.index, pd.RangeIndex)).encode(),
                       file_name=f"{name}.csv", mime="text/csv", key=f"{key}:csv", on_click="ignore")
    return shown


# ---- the generic sections -----------------------------------------------------------------
def figures_section(run: SavedRun, skip: set[str] = frozenset()) -> None:
    names = [n for n in run.figure_names() if n not in skip]
    if not names:
        return
    st.header("Figures")
    for name in names:
        with section(f"figure {name}"):
            st.caption(f"figure `{name}`")
            chart(run.figure(name), key=f"{run.name}:fig:{name}")


def tables_section(run: SavedRun, skip: set[str] = frozenset()) -> None:
    names = [n for n in run.table_names() if n not in skip]
    if not names:
        return
    st.header("Tables")
    for name in names:
        with section(f"table {name}"):
            df = run.table(name)
            st.subheader(f"{name} ({len(df)} rows)")
            table_view(df, key=f"{run.name}:table:{name}", name=name)


def tensors_section(run: SavedRun) -> None:
    with section("the tensors"):
        info = run.tensor_info()
        if not info:
            return
        st.header("Tensors")
        st.dataframe(pd.DataFrame({"tensor": list(info), "shape": [str(list(s)) for s, _ in info.values()],
                                   "dtype": [d for _, d in info.values()]}), hide_index=True)
        plottable = [n for n, (shape, _) in info.items() if shape]
        if not plottable:
            return
        name = st.selectbox("Plot a tensor", plottable, index=None, key=f"{run.name}:tensor",
                            placeholder="choose a tensor to plot")
        if name is not None:
            tensor_plot(run, name)


def tensor_plot(run: SavedRun, name: str) -> None:
    """Heatmap of the last two axes (line for 1-D); an index or the mean for every other axis."""
    t = run.tensor(name).float()
    picks = []
    lead = st.columns(max(t.ndim - 2, 1))
    for axis in range(t.ndim - 2):
        options = ["mean", *range(t.shape[axis])]
        picks.append(lead[axis].selectbox(f"axis {axis} (size {t.shape[axis]})", options,
                                          key=f"{run.name}:tensor:{name}:axis{axis}"))
    for axis, pick in reversed(list(enumerate(picks))):
        t = t.mean(axis) if pick == "mean" else t.select(axis, int(pick))
    if t.ndim == 1:
        fig = go.Figure(go.Scatter(y=t.tolist(), mode="lines+markers"))
        fig.update_layout(title=name, xaxis_title="index", yaxis_title="value")
    else:
        if t.numel() > MAX_HEATMAP_CELLS:
            rows = max(1, MAX_HEATMAP_CELLS // t.shape[1])
            st.caption(f"showing the first {rows} of {t.shape[0]} rows")
            t = t[:rows]
        fig = heatmap(t.tolist(), title=name, zmid=0.0 if bool((t < 0).any()) else None,
                      colorscale="RdBu" if bool((t < 0).any()) else "Viridis", x_title="last axis",
                      y_title="axis before")
    chart(fig, key=f"{run.name}:tensor:{name}:plot")


def fields_section(run: SavedRun) -> None:
    with section("the JSON fields"):
        if not st.toggle("Fields (fields.json)", key=f"{run.name}:fields"):
            return
        for name, value in run.fields.items():
            text = json.dumps(value)
            st.markdown(f"**{name}** ({type(value).__name__}, {len(text):,} characters)")
            st.code(text[:2000] + (" ..." if len(text) > 2000 else ""), language="json")


def render_rest(run: SavedRun, figures_done: set[str], tables_done: set[str]) -> None:
    figures_section(run, figures_done)
    tables_section(run, tables_done)
    tensors_section(run)
    fields_section(run)
