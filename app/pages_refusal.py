"""Explorer page for refusal steering (`steering.refusal_steer`, Arditi et al. 2024).

Controls: the prompt set (benign or harmful), the steered condition (the direction added
at some alpha, or ablated) and a label filter. Shows every test prompt's baseline and
steered responses side by side with their classifier labels.
"""

from __future__ import annotations

import streamlit as st

from .registry import Shown, page
from .runs import SavedRun


@page("refusal-steer", result="steering.refusal_steer")
def refusal_page(run: SavedRun, r) -> Shown:
    responses = r.responses
    c1, c2, c3 = st.columns([1, 2, 2])
    prompt_set = c1.radio("Prompts", sorted(set(r.table["prompts"])), key=f"{run.name}:set", horizontal=True)
    rows = r.table[(r.table["prompts"] == prompt_set) & (r.table["condition"] != "baseline")]
    settings = [(row.condition, row.alpha) for row in rows.itertuples()]
    if not settings:
        st.info(f"No steered condition for the {prompt_set} prompts in this run.")
        return Shown()
    condition, alpha = c2.selectbox("Steered condition", settings, key=f"{run.name}:condition",
                                    format_func=lambda s: s[0] if s[0] == "ablate" else f"{s[0]}, alpha {s[1]:g}")
    labels = sorted(set(responses["label"]))
    shown_labels = c3.multiselect("Steered label", labels, default=labels, key=f"{run.name}:labels")
    responses = responses[responses["prompts"] == prompt_set]
    base = responses[responses["condition"] == "baseline"].drop_duplicates("prompt").set_index("prompt")
    steered = responses[(responses["condition"] == condition) & (responses["alpha"] == alpha)]
    steered = steered[steered["prompt"].isin(base.index) & steered["label"].isin(shown_labels)]
    rate = rows[(rows["condition"] == condition) & (rows["alpha"] == alpha)]["refusal_rate"].iloc[0]
    st.caption(f"{len(steered)} prompts shown · refusal rate {rate:.0%} steered, direction at layer {r.layer} "
               f"(norm {r.direction_norm:.3g})")
    for row in steered.itertuples():
        st.markdown(f"**{row.prompt}**")
        left, right = st.columns(2)
        left.caption(f"baseline · {base.loc[row.prompt, 'label']}")
        left.code(base.loc[row.prompt, "response"], language=None, wrap_lines=True)
        right.caption(f"{condition} · {row.label}")
        right.code(row.response, language=None, wrap_lines=True)
    return Shown()
