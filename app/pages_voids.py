"""Explorer page for LAC void detection (`interp.voids`, "Void in Language Models").

Controls: the prompt and the phase (prompt processing or response generation). Shows the
prompt and the generated text, the analysis' own token x layer activation map for that
choice, and the same grid coloured by the layer-output norm change that the rule reads.
"""

from __future__ import annotations

import streamlit as st

from .generic import chart, heatmap, pick_prompt, table_view
from .registry import Shown, page
from .runs import SavedRun

PHASES = {"prompt": "prompt processing (prefill)", "response": "response generation (decode steps)"}


@page("voids", result="interp.voids.maps")
def voids_page(run: SavedRun, r) -> Shown:
    from interp.voids.figures import activation_map

    c1, c2 = st.columns([3, 2])
    prompt = pick_prompt(c1, r.prompts, key=f"{run.name}:prompt", mean=False)
    phases = [p for p in PHASES if p == "prompt" or r.response_tokens[prompt]]
    phase = c2.radio("Phase", phases, format_func=PHASES.get, key=f"{run.name}:phase", horizontal=True)
    st.markdown("**Prompt**")
    st.code(r.prompts[prompt], language=None, wrap_lines=True)
    st.markdown("**Generated**")
    st.code(r.generated[prompt] or "(nothing)", language=None, wrap_lines=True)
    used = r.layers_used_pct()
    st.caption("layers used over the run: " + ", ".join(
        f"{phase} {value:.1f}%" for phase, value in used.items() if value is not None))
    chart(activation_map(r, prompt, phase), key=f"{run.name}:map")
    tokens = getattr(r, f"{phase}_tokens")[prompt]
    norms = getattr(r, f"{phase}_norms")[prompt, : len(tokens)].float()  # [T_i, L + 1]
    delta = (norms[:, 1:] - norms[:, :-1]).T  # [L, T_i]: n_l - n_{l-1}
    chart(heatmap(delta.tolist(), x=[f"{i}:{t!r}" for i, t in enumerate(tokens)], y=list(range(r.n_layers)),
                  title="Norm change of each layer's output (delta_l = n_l - n_{l-1}; low = void)",
                  x_title="token", y_title="layer", value="delta", top_down=False), key=f"{run.name}:delta")
    st.subheader("Tokens of this prompt")
    table = r.per_token[(r.per_token["prompt"] == prompt) & (r.per_token["phase"] == phase)]
    table_view(table, key=f"{run.name}:tokens", name=f"{run.name}-tokens-{prompt}-{phase}")
    return Shown(figures={"map_prompt", "map_response"})
