"""Compare two runs of one analysis side by side (two models, or two settings).

Chosen on the run list among the listed runs (names only, as everywhere). Shows what
differs in their config, their summary numbers with the difference, and every figure
both runs saved, next to each other.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from . import labels
from .runs import RunEntry


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
        with one:
            chart(a.figure(name), key=f"compare:a:{name}")
        with two:
            chart(b.figure(name), key=f"compare:b:{name}")


def compare_table(a: dict, b: dict, name_a: str, name_b: str, only_differences: bool = False) -> pd.DataFrame:
    """One row per key of either dict: both values and, for numbers, B - A."""
    rows = []
    for key in list(dict.fromkeys([*a, *b])):
        va, vb = a.get(key), b.get(key)
        if only_differences and va == vb:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        rows.append({"field": labels.metric(key, va if va is not None else 0).label if numeric else key,
                     name_a: _text(va), name_b: _text(vb), "B - A": (vb - va) if numeric else None})
    return pd.DataFrame(rows, columns=["field", name_a, name_b, "B - A"])


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)[:200]
