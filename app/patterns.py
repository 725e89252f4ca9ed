"""Attention pattern of one head: query x key with token labels (as in circuitsvis).

Runs do not store full patterns ([prompts, layers, heads, q, k] is large), so the view
recomputes them for one chosen prompt and layer: it loads the run's model once per
process (the playground's cache, within the same access rule: `app.access`), switches it
to the engine's eager attention and captures ``blocks.{l}.attn.hook_pattern``
([1, heads, q, k], post-softmax) through `Model.run_with_cache`. Pages call
`pattern_view(run, prompts, layer, head, key)` next to their head pickers (DLA top heads,
sink heads).
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
import torch

from .tokens import position_labels, visible


def compute_pattern(model, prompt: str, layer: int) -> tuple[torch.Tensor, list[str]]:
    """(pattern [heads, q, k] of `layer` for one prompt, its tokens as text)."""
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"layer {layer} out of range: the model has layers 0..{model.n_layers - 1}")
    model.set_attn_implementation("eager")
    batch = model.tokenize([prompt])
    site = f"blocks.{layer}.attn.hook_pattern"
    _, cache = model.run_with_cache(batch, [site], logits=None, to_cpu=True)
    ids = batch.input_ids[0].tolist()
    tokens = [model.tokenizer.decode([i]) for i in ids]
    return cache[site][0].float(), tokens


def pattern_figure(pattern: torch.Tensor, tokens: list[str], title: str) -> go.Figure:
    """Heatmap of one head's pattern [q, k]: rows are queries, columns keys, 0-1 colour scale."""
    labels = position_labels(tokens)
    q, k = pattern.shape
    z = [[float(pattern[i, j]) if j <= i else None for j in range(k)] for i in range(q)]  # causal: no future keys
    hover = [[f"query {i}:{visible(tokens[i])}<br>key {j}:{visible(tokens[j])}" for j in range(k)] for i in range(q)]
    fig = go.Figure(go.Heatmap(z=z, x=labels[:k], y=labels[:q], zmin=0, zmax=1, colorscale="Blues",
                               text=hover, colorbar={"title": "attention"},
                               hovertemplate="%{text}<br>attention %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "key token", "type": "category", "tickangle": -60},
                      yaxis={"title": "query token", "type": "category", "autorange": "reversed"},
                      height=max(380, 160 + 16 * q), margin={"t": 70})
    return fig


def heads_grid(pattern: torch.Tensor, layer: int, picked: int | None = None,
               columns: int = 8) -> go.Figure:
    """Every head of one layer as a small query x key pattern (circuitsvis' attention_heads), on one
    0-1 colour scale; the picked head outlined. Each small map carries one invisible marker at its
    centre with ``customdata = [layer, head]``: a click anywhere in a map selects it (as `app.cellpick`)."""
    from plotly.subplots import make_subplots

    heads, q, k = pattern.shape
    columns = min(columns, heads)
    rows = -(-heads // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[f"H{h}" for h in range(heads)],
                        horizontal_spacing=0.012, vertical_spacing=0.35 / rows if rows > 1 else 0.0)
    for h in range(heads):
        row, col = h // columns + 1, h % columns + 1
        z = [[float(pattern[h, i, j]) if j <= i else None for j in range(k)] for i in range(q)]
        fig.add_heatmap(z=z, coloraxis="coloraxis", hoverinfo="skip", row=row, col=col)
        fig.add_scatter(x=[(k - 1) / 2], y=[(q - 1) / 2], mode="markers", customdata=[[layer, h]], showlegend=False,
                        marker={"size": 4, "opacity": 0}, hovertemplate=f"L{layer}H{h}: click to enlarge<extra></extra>",
                        row=row, col=col)
        if h == picked:
            fig.add_shape(type="rect", x0=-0.5, y0=-0.5, x1=k - 0.5, y1=q - 0.5, line={"color": "#d62728", "width": 3},
                          row=row, col=col)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    fig.update_layout(coloraxis={"colorscale": "Blues", "cmin": 0, "cmax": 1, "colorbar": {"title": "attention"}},
                      title=f"Layer {layer}: every head's attention pattern (rows: queries, columns: keys); "
                            "click a head to enlarge it",
                      height=120 + 150 * rows, hoverdistance=-1, clickmode="event+select", margin={"t": 90})
    return fig


def pattern_view(run, prompts: list[str], layer: int, head: int, key: str, prompt=None) -> None:
    """Every head of `layer` as a grid and the pattern of (layer, head) enlarged, on the page's
    `prompt` (an index; otherwise, e.g. "mean", a picker chooses one); a button computes them when
    not yet known. A click on a head of the grid enlarges that head instead."""
    from .cellpick import selected_cell
    from .generic import chart

    spec = run.model.get("spec")
    if isinstance(prompt, int) and 0 <= prompt < len(prompts):
        st.caption(f"On the page's prompt {prompt}: {prompts[prompt][:70]}")
        left, right = st.columns([3, 1])
    else:
        left, right = st.columns([3, 1])
        prompt = left.selectbox("Prompt for the pattern", range(len(prompts)), key=f"{key}:pattern_prompt",
                                format_func=lambda i: f"{i}: {prompts[i][:70]}")
    store = st.session_state.setdefault("patterns", {})
    wanted = (run.name, int(prompt), int(layer))
    if wanted not in store:
        st.caption(f"This run does not store attention patterns. Computing them loads the run's model "
                   f"({spec or 'unknown'}) once and runs one forward pass on the prompt.")
        right.write("")
        if not right.button("Compute the pattern", key=f"{key}:pattern_go", disabled=not spec):
            return
        from .playground import run_on_model

        got = run_on_model(spec, lambda model: compute_pattern(model, prompts[prompt], int(layer)),
                           spinner="Running the model...", failure=f"Cannot compute the pattern with {spec!r}")
        if got is None:
            return
        store[wanted] = got
    pattern, tokens = store[wanted]
    if not 0 <= head < pattern.shape[0]:
        st.error(f"head {head} out of range: layer {layer} has {pattern.shape[0]} heads")
        return
    clicked = st.session_state.get(f"{key}:grid:head")
    if clicked is not None and clicked[0] == layer and 0 <= clicked[1] < pattern.shape[0]:
        head = clicked[1]
    event = chart(heads_grid(pattern, layer, picked=head), key=f"{key}:grid", select=True)
    cell = selected_cell(event)
    if cell is not None and cell != st.session_state.get(f"{key}:grid:head"):
        st.session_state[f"{key}:grid:head"] = cell
        st.rerun()
    st.markdown(f"**Attention pattern of L{layer}H{head}**")
    chart(pattern_figure(pattern[head], tokens, f"L{layer}H{head} attention, prompt {prompt} (rows: queries)"),
          key=f"{key}:pattern")
