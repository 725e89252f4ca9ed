"""A RISE latent on every token of the traces where it fires most, and its activation histogram.

A RISE run stores per-step activations (one per reasoning step), not per token. This view loads
the run's model and the layer's trained SAE (``<collect run>/sae/layer_<l>``, sae-lens format,
`saes.train.load_sae`) once, runs the model on up to `TRACES` traces (prompt + response, as
collected) and encodes the residual stream at every response token (`saes.diagnostics.encode`).
Each response token is coloured by the latent's activation (white = 0); the histogram counts
the latent's activations over every response token of those traces (zeros counted apart).

The collect run's folder comes from the run's fields, so it is read under the playground's
access rule (`app.access.model_refusal`: when the explorer is served beyond this machine, only
folders inside the runs root).
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch

from .tokenstrip import token_strip

TRACES = 3  # traces of the latent's top steps that are run


@torch.inference_mode()
def token_latents(model, sae, site: str, prompt: str, response: str) -> tuple[list[str], torch.Tensor]:
    """(response tokens, latent activations [T, d_sae]) of one trace; `prompt` carries its template."""
    n_prompt = int(model.tokenize([prompt], formatted=True).attention_mask.sum())
    batch = model.tokenize([prompt + response], formatted=True)
    _, cache = model.run_with_cache(batch, [site], logits=None, to_cpu=True)
    n = int(batch.attention_mask.sum())
    acts = cache[site][0, -n:].float()[n_prompt:]  # [T, d_model] response tokens
    ids = batch.input_ids[0, -n:][n_prompt:].tolist()
    from saes.diagnostics import encode

    return [model.tokenizer.decode([i]) for i in ids], encode(sae, acts).float()


def histogram(values: torch.Tensor, latent: int) -> go.Figure:
    """Activations > 0 of one latent over tokens, with how many tokens it is 0 on in the title."""
    fired = values[values > 0]
    fig = go.Figure(go.Histogram(x=fired.tolist(), nbinsx=30, marker_color="#2166ac",
                                 hovertemplate="activation %{x}: %{y} tokens<extra></extra>"))
    fig.update_layout(title=f"Latent {latent}: activation over {values.numel()} response tokens "
                            f"({fired.numel()} > 0, {values.numel() - fired.numel()} at 0)",
                      xaxis_title="activation", yaxis_title="tokens", height=300, bargap=0.05)
    return fig


def tokens_view(run, r, layer: int, latent: int, key: str) -> None:
    """Per-token activations of `latent` on the traces of its top steps, after a button press."""
    from .generic import chart

    spec = run.model.get("spec")
    index, values = r.top_steps[f"layer_{layer}.index"][latent], r.top_steps[f"layer_{layer}.value"][latent]
    traces = list(dict.fromkeys(int(r.steps.iloc[int(i)]["trace"]) for i, v in zip(index, values) if v > 0))[:TRACES]
    if not traces:
        return
    st.subheader(f"Latent {latent} on every token")
    store = st.session_state.setdefault("rise_tokens", {})
    wanted = (run.name, layer, latent)
    if wanted not in store:
        left, right = st.columns([3, 1])
        left.caption(f"The run stores one activation per step. Per token, this loads the run's model ({spec}) and "
                     f"the layer's SAE once and runs {len(traces)} trace(s).")
        if not right.button("Compute per-token activations", key=f"{key}:go", disabled=not spec or not r.run):
            return
        folder = Path(r.run) / "sae" / f"layer_{layer}"
        from saes.collect import load_traces
        from saes.train import load_sae

        from .playground import run_on_model

        def per_token(model):
            sae = load_sae(folder)
            every = load_traces(r.run)
            site = sae.cfg.metadata.hook_name
            return [(t, *token_latents(model, sae, site, every[t].prompt, every[t].response)) for t in traces]

        done = run_on_model(spec, per_token, spinner="Running the traces...",
                            failure="Cannot compute per-token activations", also_checked=(str(folder),))
        if done is None:
            return
        store[wanted] = done
    done = store[wanted]
    column = torch.cat([acts[:, latent] for _, _, acts in done])
    top = float(column.max()) if column.numel() else 1.0
    for trace, tokens, acts in done:
        st.markdown(f"**Trace {trace}**")
        token_strip(tokens, acts[:, latent].tolist(), f"latent {latent}", fmt=".3g", low=0.0, high=top or 1.0)
    chart(histogram(column, latent), key=f"{key}:histogram")
