"""Explorer page for SAE feature dashboards (`interp.features.explore`, `steerlens sae features`).

Controls: a feature (by index; the list can be sorted by firing density or maximum
activation). Shows, as Neuronpedia does for a feature: its firing density and maximum,
its top-activating contexts with every token shaded by the feature's activation on it
(the activating token outlined), the histogram of its non-zero activations, the tokens
its decoder row promotes and suppresses through the final norm and unembedding, and a
button that writes its decoder row as a steering vector next to the run and opens the
playground with it. Above the feature view: the firing-density histogram of all features.
"""

from __future__ import annotations

import html

import streamlit as st

from .generic import chart, linked_selectbox
from .links import open_in_playground
from .registry import Shown, page
from .runs import SavedRun
from .tokens import visible

ORDERS = {"index": "feature index", "max": "highest maximum activation", "density": "most often firing"}


@page("sae-features", result="interp.features.explore")
def sae_page(run: SavedRun, r) -> Shown:
    from interp.features.figures import density_figure, histogram_figure, logits_figure

    st.caption(f"{r.architecture} SAE at **{r.sae_site}**" + (f" -> {r.sae_out_site}" if r.sae_out_site != r.sae_site
                                                               else "") +
               f" · {r.d_sae} features ({len(r.features)} in this run) · {len(r.prompts)} prompts, {r.n_tokens} tokens")
    chart(density_figure(r), key=f"{run.name}:density")
    c1, c2 = st.columns([1, 2])
    order = c1.radio("List features by", list(ORDERS), format_func=ORDERS.get, key=f"{run.name}:order",
                     horizontal=True)
    ranked = _ranked(r, order)
    feature = linked_selectbox(c2, "Feature", ranked, f"{run.name}:feature",
                               format_func=lambda f: f"{f}  (max {float(r.max_act[r.row(f)]):.3g}, "
                                                     f"density {100 * float(r.density[r.row(f)]):.3g}%)")
    row = r.row(feature)
    m1, m2, m3 = st.columns(3)
    m1.metric("Firing density", f"{100 * float(r.density[row]):.3g}%")
    m2.metric("Max activation", f"{float(r.max_act[row]):.3g}")
    m3.metric("Mean when firing", f"{float(r.mean_act[row]):.3g}")
    st.markdown("**Top-activating contexts** (shade: the feature's activation on each token; outlined: the "
                "token the context is ranked by)")
    st.html(contexts_html(r, feature))
    left, right = st.columns(2)
    with left:
        chart(histogram_figure(r, feature), key=f"{run.name}:hist:{feature}")
    with right:
        chart(logits_figure(r, feature), key=f"{run.name}:logits:{feature}")
    steer_link(run, r, feature)
    return Shown(figures={"density"})


def _ranked(r, order: str) -> list[int]:
    if order == "max":
        return [r.features[i] for i in r.max_act.argsort(descending=True).tolist()]
    if order == "density":
        return [r.features[i] for i in r.density.argsort(descending=True).tolist()]
    return list(r.features)


def contexts_html(r, feature: int) -> str:
    """The feature's top contexts as HTML rows of tokens shaded by activation (escaped text)."""
    row = r.row(feature)
    peak = float(r.max_act[row]) or 1.0
    centre = _centre_index(r)
    lines = []
    for j in range(r.top_value.shape[1]):
        if int(r.top_prompt[row, j]) < 0:
            break
        spans = []
        for i, (token, act) in enumerate(zip(r.window_tokens[row, j].tolist(), r.window_acts[row, j].tolist())):
            if token < 0:
                continue
            alpha = max(0.0, min(1.0, act / peak))
            outline = "outline:2px solid #1a5276;" if i == centre else ""
            text = html.escape(visible(r.token_text.get(int(token), str(token))))
            spans.append(f"<span title='{act:.3g}' style='background:rgba(230,126,34,{alpha:.2f});{outline}"
                         f"padding:1px 2px;margin:0 1px;border-radius:3px'>{text}</span>")
        lines.append(f"<div style='font-family:monospace;margin:4px 0;white-space:nowrap;overflow-x:auto'>"
                     f"<b style='display:inline-block;width:5em'>{float(r.top_value[row, j]):.3g}</b>{''.join(spans)}"
                     f"<span style='color:#888;margin-left:1em'>prompt {int(r.top_prompt[row, j])}</span></div>")
    if not lines:
        return "<p>This feature never fired on the run's prompts.</p>"
    return "".join(lines)


def _centre_index(r) -> int:
    """Window index of the ranked token: the window holds `window` tokens before it."""
    return int(r.meta.config.get("window", 0)) if isinstance(r.meta.config, dict) else 0


def steer_link(run: SavedRun, r, feature: int) -> None:
    """Write the feature's decoder row as a steering vector next to the run, then a button that
    opens the playground with it (the playground lists vector files of the runs folder)."""
    if r.vector_site is None:
        st.caption(f"An SAE at {r.sae_out_site} has no steering-vector site; steer it with "
                   "`steerlens generate --sae FOLDER --feature F:+A`.")
        return
    prefix = run.name.rsplit("/", 1)[0] + "/" if "/" in run.name else ""
    file = f"{run.path.name}.f{feature}.safetensors"
    target = run.path.parent / file
    if st.button(f"Write feature {feature} as a steering vector ({file})", key=f"{run.name}:write:{feature}",
                 help=f"its decoder row at {r.vector_site} layer {r.vector_layer}, added with alpha A = "
                      f"`--feature {feature}:+A`"):
        r.steering_vector(feature).save(target)
    if target.is_file():
        open_in_playground(prefix + file, r.model_facts.get("spec"), key=f"{run.name}:playground:{feature}")
        st.caption(f"CLI: `steerlens generate --vector {target}:8` (or `--sae FOLDER --feature {feature}:+8`)")
