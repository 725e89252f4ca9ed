"""Explorer page for refusal steering (`steering.refusal_steer`, Arditi et al. 2024).

Controls: the prompt set (benign or harmful), the steered condition (the direction added
at some alpha, or ablated) and a label filter. Shows every test prompt's baseline and
steered responses side by side with their classifier labels.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from .generic import chart
from .registry import Shown, page
from .runs import SavedRun


@page("refusal-steer", result="steering.refusal_steer")
def refusal_page(run: SavedRun, r) -> Shown:
    responses = r.responses
    chart(rate_figure(r.table), key=f"{run.name}:rates")
    c1, c2, c3 = st.columns([1, 2, 2])
    prompt_set = c1.radio("Prompts", sorted(set(r.table["prompts"])), key=f"{run.name}:set", horizontal=True)
    rows = r.table[(r.table["prompts"] == prompt_set) & (r.table["condition"] != "baseline")]
    settings = [(row.condition, row.alpha) for row in rows.itertuples()]
    if not settings:
        st.info(f"No steered condition for the {prompt_set} prompts in this run.")
        return Shown(figures={"refusal_rate"})
    condition, alpha = c2.selectbox("Steered condition", settings, key=f"{run.name}:condition",
                                    format_func=lambda s: s[0] if s[0] == "ablate" else f"{s[0]}, alpha {s[1]:g}")
    labels = sorted(set(responses["label"]))
    shown_labels = c3.multiselect("Steered label", labels, default=labels, key=f"{run.name}:labels")
    responses = responses[responses["prompts"] == prompt_set]
    base = responses[responses["condition"] == "baseline"].drop_duplicates("prompt").set_index("prompt")
    steered = responses[(responses["condition"] == condition) & (responses["alpha"] == alpha)]
    steered = steered[steered["prompt"].isin(base.index) & steered["label"].isin(shown_labels)]
    picked = rows[(rows["condition"] == condition) & (rows["alpha"] == alpha)].iloc[0]
    rate, n = picked["refusal_rate"], int(picked["n"])
    st.caption(f"{len(steered)} prompts shown · refusal rate {rate:.0%} steered ({round(rate * n)} of {n}), "
               f"direction at layer {r.layer} (norm {r.direction_norm:.3g})")
    for row in steered.itertuples():
        st.markdown(f"**{row.prompt}**")
        left, right = st.columns(2)
        left.caption(f"baseline · {base.loc[row.prompt, 'label']}")
        left.code(base.loc[row.prompt, "response"], language=None, wrap_lines=True)
        right.caption(f"{condition} · {row.label}")
        right.code(row.response, language=None, wrap_lines=True)
    return Shown(figures={"refusal_rate"})


def rate_figure(table) -> go.Figure:
    """Refusal rate of every condition, benign and harmful prompts side by side (grouped, never
    stacked), each bar labelled with its count out of n."""
    fig = go.Figure()
    for prompts, colour in (("benign", "#4c78a8"), ("harmful", "#e45756")):
        rows = table[table["prompts"] == prompts]
        if rows.empty:
            continue
        labels = [c if c == "baseline" or c == "ablate" else f"{c} (alpha {a:g})"
                  for c, a in zip(rows["condition"], rows["alpha"])]
        counts = [round(rate * n) for rate, n in zip(rows["refusal_rate"], rows["n"])]
        fig.add_bar(x=labels, y=rows["refusal_rate"].tolist(), name=f"{prompts} prompts", marker_color=colour,
                    text=[f"{rate:.0%} ({c}/{n})" for rate, c, n in zip(rows["refusal_rate"], counts, rows["n"])],
                    textposition="outside",
                    hovertemplate="%{x}: %{y:.0%} refused, %{text}<extra>" + prompts + "</extra>")
    fig.update_layout(barmode="group", title="Refusal rate per condition (n = test prompts per bar)",
                      xaxis_title="condition", yaxis={"title": "refusal rate", "range": [0, 1.15], "tickformat": ".0%"},
                      height=360)
    return fig
