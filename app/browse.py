"""The run list and the run page of the explorer.

A run is chosen by name from the listing (sidebar select box, an "Open" button, or the
``?run=<name>`` query parameter, which is honoured only when it names a listed run). The
run page is the header, the analysis page registered for the run's analysis (if any) and
the generic view of everything else.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from interp.runs.results import RunLoadError

from . import generic, registry
from .keyfigures import key_figure
from .runs import RunEntry, SavedRun, find_run, scan_runs


@st.cache_resource(max_entries=4, show_spinner=False)
def _scan(root: str, stamp: int) -> list[RunEntry]:
    return scan_runs(root)


def folder_stamp(root: Path) -> int:
    """Changes when a run is added to the root or to a folder of runs directly in it."""
    stamp = root.stat().st_mtime_ns
    for child in root.iterdir():
        if child.is_dir() and not (child / "manifest.json").exists():
            stamp = max(stamp, child.stat().st_mtime_ns)
    return stamp


def runs_in(root: Path, warm: bool = False) -> list[RunEntry]:
    """The listing, rescanned whenever the root folder changes (a run added or finished);
    with `warm`, the runs are also opened in the background (`warm_up`)."""
    try:
        stamp = folder_stamp(root)
    except OSError:
        return []
    if warm:
        warm_up(str(root), stamp)
    return _scan(str(root), stamp)


@st.cache_resource(max_entries=16, show_spinner=False)
def _open(path: str, stamp: int, name: str | None = None) -> SavedRun:
    return SavedRun(path, name)


def open_run(entry: RunEntry) -> SavedRun:
    """The opened run, kept across reruns and sessions until its manifest changes."""
    return _open(str(entry.path), (entry.path / "manifest.json").stat().st_mtime_ns, entry.name)


WARM_RUNS = 16  # runs opened in the background, newest last in the listing


@st.cache_resource(max_entries=4, show_spinner=False)
def warm_up(root: str, stamp: int) -> threading.Thread:
    """Open the listed runs (typed results included) in the background, once per listing,
    so that the first click on a run finds it read already."""
    entries = [e for e in _scan(root, stamp) if not e.broken and e.kind == "run"][-WARM_RUNS:]

    def work() -> None:
        for entry in entries:
            try:
                page = registry.page_for(entry.analysis)
                run = open_run(entry)
                if page is not None and page.result:
                    run.result(page.result)
            except Exception:  # the run page reports it when the run is opened
                continue

    thread = threading.Thread(target=work, name="steerlens-warm-up", daemon=True)
    thread.start()
    return thread


def choose_run(entries: list[RunEntry]) -> RunEntry | None:
    """Sidebar run picker, initialised from ``?run=`` when that names a listed run."""
    names = [e.name for e in entries]
    if "run" not in st.session_state:
        asked = st.query_params.get("run")
        wanted = find_run(entries, asked)
        st.session_state["run"] = wanted.name if wanted else None
        if asked and wanted is None:
            st.session_state["run:missing"] = str(asked)[:200]
    if st.session_state["run"] not in names:
        st.session_state["run"] = None
    labels = {e.name: f"{'⚠ ' if e.broken else ''}{e.name}" for e in entries}
    name = st.sidebar.selectbox("Run", [None, *names], key="run", placeholder="(all runs)",
                                format_func=lambda n: "(all runs)" if n is None else labels[n])
    if name is None:
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = name
    return find_run(entries, name)


def _select(name: str) -> None:
    st.session_state["run"] = name


def run_list(root: Path, entries: list[RunEntry]) -> None:
    st.title("steerlens runs")
    st.caption(f"runs folder: `{root}`")
    missing = st.session_state.pop("run:missing", None)
    if missing:
        st.warning(f"No run or vector file named {missing!r} in this runs folder; pick one below "
                   "(names are as listed, e.g. `tour/dla` or `tour/skills/direction-0.safetensors`).")
    if not root.is_dir():
        st.info(f"There is no runs folder at `{root}` yet. Run an analysis (for example "
                "`steerlens dla --target ' Paris' --prompts prompts.txt`) or start the explorer "
                "with `steerlens app --runs DIR` pointing at a folder of runs.")
        return
    if not entries:
        st.info(f"No runs in `{root}` yet. Every `steerlens <analysis>` command saves one here "
                "(`--out` chooses another place).")
        return
    broken = sum(e.broken for e in entries)
    st.write(f"{len(entries)} runs" + (f", {broken} broken (marked ⚠)" if broken else ""))
    analyses = sorted({e.analysis for e in entries if e.analysis})
    picked = st.multiselect("Analyses", analyses, key="list:analyses", placeholder="all analyses")
    shown = [e for e in entries if not picked or e.analysis in picked]
    st.dataframe(_listing(shown), hide_index=True)
    generic.chart(_overview(shown), key="list:overview")
    from .compare import compare_section

    try:
        compare_section(entries, open_run)
    except Exception as e:  # a run damaged after the listing was read: one line, the list stays
        st.error(f"Cannot compare these runs: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                 "(a file of one run may be damaged; press \"Rescan runs folder\" to re-check them).")
    st.subheader("Open a run")
    for entry in shown:
        left, right = st.columns([3, 5])
        left.button(("⚠ " if entry.broken else "") + entry.name, key=f"open:{entry.name}",
                    on_click=_select, args=(entry.name,))
        finding = key_figure(entry.analysis, entry.summary)
        right.caption(f"broken: {entry.error}" if entry.broken else
                      f"{entry.analysis} · {entry.model or '?'} · {entry.created or '?'}"
                      + (f"  \n**{finding}**" if finding else ""))


def _overview(entries: list[RunEntry]) -> go.Figure:
    """Runs per analysis and model (broken ones apart): what the folder holds at a glance."""
    counts = Counter((e.analysis or "?", "broken" if e.broken else (e.model or "?")) for e in entries)
    fig = go.Figure([go.Bar(name=model, x=[a for a, m in counts if m == model],
                            y=[n for (a, m), n in counts.items() if m == model],
                            hovertemplate="%{x}: %{y} run(s)<extra>" + model + "</extra>")
                     for model in sorted({m for _, m in counts})])
    fig.update_layout(barmode="stack", title="Runs per analysis and model", height=260, margin={"t": 40, "b": 30},
                      yaxis_title="runs", legend_title="model")
    return fig


def _listing(entries: list[RunEntry]) -> pd.DataFrame:
    return pd.DataFrame({
        "run": [e.name for e in entries],
        "analysis": [e.analysis or "" for e in entries],
        "finding": [key_figure(e.analysis, e.summary) for e in entries],
        "model": [e.model or "" for e in entries],
        "created": [e.created or "" for e in entries],
        "status": ["broken: " + (e.error or "") if e.broken else "ok" for e in entries],
        "config": [json.dumps(e.config)[:300] for e in entries],
    })


@st.cache_resource(max_entries=16, show_spinner=False)
def _open_vector(path: str, stamp: int):
    from steering.vectors import SteeringVector

    return SteeringVector.load(path)


def open_vector(entry: RunEntry):
    """The `SteeringVector` of a listed vector file, kept until the file changes."""
    return _open_vector(str(entry.path), entry.path.stat().st_mtime_ns)


def run_page(entry: RunEntry) -> None:
    start = time.perf_counter()
    if entry.broken:
        st.title(f"⚠ {entry.name}")
        st.error(f"This run cannot be opened: {entry.error}")
        st.caption("Other runs are not affected; pick one in the sidebar.")
        return
    try:
        if entry.kind == "vector":
            opened = open_vector(entry)
        else:
            opened = open_run(entry)
    except Exception as e:
        st.title(f"⚠ {entry.name}")
        st.error(f"This run cannot be opened: {type(e).__name__}: {e}")
        return
    if entry.kind == "vector":
        with generic.section("the vector file"):
            registry.page_for(entry.analysis).render(entry, opened)
        _timed(start)
        return
    run = opened
    generic.header(run)
    figures_done, tables_done = set(), set()
    page = registry.page_for(run.analysis)
    if page is None:
        st.caption(f"No page for analysis {run.analysis!r} yet: showing everything the run saved.")
    else:
        try:
            result = run.result(page.result) if page.result else None
            shown = (page.render(run, result) if page.result else page.render(run)) or registry.Shown()
            figures_done, tables_done = shown.figures, shown.tables
        except RunLoadError as e:  # e.g. saved by another version of the analysis
            st.warning(f"The {run.analysis} page cannot read this run ({e}). Everything the run saved is "
                       "shown below.")
        except Exception as e:
            st.error(f"Cannot show the {run.analysis} page: {type(e).__name__}: {e}")
    generic.render_rest(run, figures_done, tables_done)
    _timed(start)


def _timed(start: float) -> None:
    seconds = time.perf_counter() - start
    st.session_state["render_seconds"] = seconds
    st.caption(f"page built in {seconds:.2f} s")
