"""Explorer page for MoE expert scans (`interp.experts`, MoTE arXiv 2502.11096).

The run's warning (no behaviour to attribute) comes first. Controls: the association score shown in the layer x expert map (fTRI difference, risk
difference, selection frequency on either set, permutation p), and a layer whose experts'
selection frequency on the target and other prompts is compared. Shows the candidates ranked
by causal effect with their association scores beside it, and the condition bars.

`expert_controls` adds "experts off / forced on" fields to the steering playground for MoE
models (`app.playground.register_controls`); they join the steered side as engine edits.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .cellpick import apply_click
from .generic import chart, heatmap, show_warnings
from .playground import register_controls
from .registry import Shown, page
from .runs import SavedRun

SCORES = {"ftri": "fTRI difference", "risk_diff": "risk difference", "freq_target": "frequency (target)",
          "freq_other": "frequency (other)", "p_value": "permutation p"}


@page("experts", result="interp.experts.result")
def experts_page(run: SavedRun, r) -> Shown:
    show_warnings(r.warnings())
    st.caption(f"{r.metric} · {r.n_target} target / {r.n_other} other prompts · {len(r.layers)} MoE layers × "
               f"{max(r.n_experts)} experts, top-{max(r.top_k)}")
    ranking = pd.DataFrame(r.experts)
    if not ranking.empty:
        ranking.insert(0, "rank", range(1, len(ranking) + 1))
        st.subheader("Candidates ranked by causal effect (off: baseline − value on target prompts)")
        st.dataframe(ranking, hide_index=True)
    score = st.selectbox("Map", list(SCORES), format_func=SCORES.get, key=f"{run.name}:score")
    z = getattr(r, score)
    event = chart(heatmap(z.tolist(), x=[f"E{e}" for e in range(z.shape[1])], y=[f"L{layer_}" for layer_ in r.layers],
                  zmid=None if score in ("p_value", "freq_target", "freq_other") else 0.0,
                  colorscale="Viridis" if score == "p_value" else "RdBu", value=score,
                  title=f"{SCORES[score]} per layer and expert (click a cell to pick its layer)", x_title="expert",
                  y_title="MoE layer"), key=f"{run.name}:map", clickable=True)
    apply_click(event, f"{run.name}:map", lambda row, _: {f"{run.name}:layer": r.layers[row]})
    layer = st.selectbox("Layer", r.layers, key=f"{run.name}:layer", help="the layer whose experts the bars below compare")
    li = r.layers.index(layer)
    fig = go.Figure([go.Bar(name="target", y=r.freq_target[li].tolist()),
                     go.Bar(name="other", y=r.freq_other[li].tolist())])
    fig.update_layout(title=f"Layer {layer}: share of tokens that select each expert", barmode="group",
                      xaxis_title="expert", yaxis_title="selection frequency", height=320)
    chart(fig, key=f"{run.name}:freq")
    chart(r.figures()["effects"], key=f"{run.name}:effects")
    return Shown(figures={"score_heatmap", "effects"})


def expert_controls(model) -> list:
    """Playground controls for an MoE model: experts to switch off / force on in the steered
    generation (engine edits from `interp.engine.experts.expert_toggles`); nothing for a dense model."""
    from interp.engine.experts import expert_toggles, experts_per_layer, parse_experts

    shape = experts_per_layer(model) if model.spec.moe else {}
    if not shape:
        return []
    st.subheader("MoE experts")
    n_experts, k = max(e for e, _ in shape.values()), max(k for _, k in shape.values())
    st.caption(f"{len(shape)} MoE layers ({min(shape)}..{max(shape)}) × {n_experts} experts, top-{k}; "
               "write LAYER:EXPERT pairs, e.g. 3:17,5:2")
    c1, c2 = st.columns(2)
    off = c1.text_input("experts off", key="pg:experts_off", help="excluded from top-k; the router renormalises the rest")
    on = c2.text_input("experts forced on", key="pg:experts_on", help="always selected, with their own weight")
    try:
        return expert_toggles(model, parse_experts(off), parse_experts(on)) if (off.strip() or on.strip()) else []
    except ValueError as e:
        st.error(str(e))
        return []


register_controls(expert_controls)
