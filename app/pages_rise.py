"""Explorer page for RISE runs (`saes`, arXiv 2512.23988): a latent browser in the spirit of
a feature dashboard, the dose-response of step-level steering, and the confidence-vector
search (`steerlens rise confidence`: entropy curve, confidence latents, dose-response).

Controls: the layer and the latent (listed with the behaviour it wins most steps of, the
behaviour-specific latents first). Shows the latent's step counts per behaviour, then its
top-activating steps, each inside its response with the step highlighted.
"""

from __future__ import annotations

import html

import streamlit as st

from .generic import chart
from .registry import Shown, page
from .rise_tokens import tokens_view
from .runs import SavedRun


def _highlight(response: str, start: int, end: int) -> str:
    before, step, after = response[max(0, start - 300):start], response[start:end], response[end:end + 200]
    lead = "..." if start > 300 else ""
    tail = "..." if end + 200 < len(response) else ""
    body = (html.escape(lead + before) + "<mark style='background:#ffd54f'>" + html.escape(step) + "</mark>"
            + html.escape(after + tail))
    return "<div style='white-space:pre-wrap;font-size:0.9em;border-left:3px solid #ddd;padding-left:8px'>" + body + "</div>"


def _number(value, digits: int = 3) -> str:
    """A float rounded to `digits` decimals ("0.046", not 0.04622109903387343); others as text."""
    return f"{value:.{digits}f}" if isinstance(value, float) else "n/a" if value is None else str(value)


def _latent_options(r, layer: int) -> list[int]:
    specific = [row["latent"] for rows in r.behaviours[str(layer)].values() for row in rows]
    won = r.counts[r.counts["layer"] == layer].groupby("latent")["count"].sum().sort_values(ascending=False)
    order = list(dict.fromkeys([*specific, *won.index.tolist()]))
    rest = [j for j in range(len(r.groups[str(layer)])) if j not in set(order)]
    return order + rest


@page("rise", result="saes.result")
def rise_page(run: SavedRun, r) -> Shown:
    c1, c2 = st.columns([1, 3])
    layer = c1.selectbox("Layer", r.layers, key=f"{run.name}:layer")
    groups = r.groups[str(layer)]
    options = _latent_options(r, layer)
    latent = c2.selectbox("Latent", options, key=f"{run.name}:latent",
                          format_func=lambda j: f"latent {j} ({groups[j]})")
    stats = r.sae[str(layer)]
    st.caption(f"SAE layer {layer}: FVU {stats['fvu']:.3f}, L0 {stats['l0']:.1f}, dead {stats['dead_pct']:.1f}%, "
               f"CE recovered {stats.get('ce_recovered', float('nan')):.3f}; silhouette "
               f"{_number(r.silhouette.get(str(layer)))}; map: {r.map_method}")
    chart(r.figures()[f"decoder_map_layer{layer}"], key=f"{run.name}:map")
    table = r.counts[(r.counts["layer"] == layer) & (r.counts["latent"] == latent)]
    wins = {row.behaviour: int(row.count) for row in table.itertuples()}
    st.markdown(f"**Latent {latent}** is the top-firing latent of "
                + (", ".join(f"{n} {b} step{'s' * (n != 1)}" for b, n in wins.items()) or "no step"))
    index = r.top_steps[f"layer_{layer}.index"][latent].tolist()
    values = r.top_steps[f"layer_{layer}.value"][latent].tolist()
    shown = 0
    for row, value in zip(index, values):
        if value <= 0:
            continue
        step = r.steps.iloc[row]
        st.markdown(f"activation **{value:.3f}** - trace {step['trace']}, step {step['step']} "
                    f"(label: {step['label']})")
        st.markdown(_highlight(r.responses[int(step["trace"])], int(step["start"]), int(step["end"])),
                    unsafe_allow_html=True)
        shown += 1
    if not shown:
        st.info("This latent fires on no step (dead on this data).")
    tokens_view(run, r, layer, latent, key=f"{run.name}:tokens")
    return Shown(figures={f"decoder_map_layer{layer}"})


@page("rise-steer", result="saes.result")
def rise_steer_page(run: SavedRun, r) -> Shown:
    chart(r.figures()["dose_response"], key=f"{run.name}:dose")
    alpha = st.selectbox("Samples at alpha", list(r.samples), key=f"{run.name}:alpha")
    for text in r.samples.get(alpha, []):
        st.text(text)
    return Shown(figures={"dose_response"})


@page("rise-confidence", result="saes.confidence_result")
def rise_confidence_page(run: SavedRun, r) -> Shown:
    stop = "" if r.stopped_at is None else f", stopped early at step {r.stopped_at}"
    st.markdown(f"Mean answer entropy over {r.n_opt} traces: **{r.entropy_before:.3f} -> {r.entropy_after:.3f} "
                f"nats** after {len(r.curve)} Adam steps{stop} (layer {r.layer}).")
    for name, rows in r.latents.items():
        shown = ", ".join(f"{row['latent']} ({row['offset']:+.3f})" for row in rows)
        st.markdown(f"**{name.replace('_', ' ')}** latents (offset): {shown}; vector `{r.vectors.get(name, '')}`")
    chart(r.figures()["entropy_curve"], key=f"{run.name}:curve")
    if r.dose_response:
        held = f"held-out answer entropy (same text at every alpha): {r.answer_direction}; " if r.answer_direction else ""
        st.caption(f"Over increasing alpha: {held}generated responses' entropy: {r.direction}. Error bars: 95% "
                   "intervals over the held-out traces.")
        chart(r.figures()["confidence_dose_response"], key=f"{run.name}:dose")
        alpha = st.selectbox("Samples at alpha", list(r.samples), key=f"{run.name}:alpha")
        for text in r.samples.get(alpha, []):
            st.text(text)
    return Shown(figures={"entropy_curve", "confidence_dose_response"})
