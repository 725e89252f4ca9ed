"""Explorer pages for direct logit attribution (`interp.dla`) and the logit lens (`interp.dla.lens`).

DLA: the layer x head heatmap for one prompt and position (or their mean), the
components of one chosen layer, the top components of the selection and the per-prompt
table filtered to the prompt. Logit lens: the top-token map of one prompt and the top-k
list at a chosen layer and position.
"""

from __future__ import annotations

import math
import re

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .cellpick import apply_click
from .dla_positions import positions_view
from .generic import chart, heatmap, linked_selectbox, pick_prompt, table_view
from .registry import Shown, page
from .patterns import pattern_view
from .runs import SavedRun
from .tokens import visible
from .tokenstrip import token_strip


def _select(t, prompt, position):
    """[N, n, ...] -> [...]: one prompt / position, or the mean over them."""
    t = t.double().mean(0) if prompt == "mean" else t[prompt].double()
    return t.mean(0) if position == "mean" else t[position]


@page("dla", result="interp.dla.attribution")
def dla_page(run: SavedRun, r) -> Shown:
    c1, c2 = st.columns([3, 1])
    prompt = pick_prompt(c1, r.prompts, key=f"{run.name}:prompt")
    positions = ["mean", *range(len(r.positions))] if len(r.positions) > 1 else [0]
    position = c2.selectbox("Position", positions, key=f"{run.name}:position",
                            format_func=lambda j: "mean" if j == "mean" else f"token {r.positions[j]}")
    heads = _select(r.head_attr, prompt, position)  # [L, H]
    where = f"mean over {len(r.prompts)} prompts" if prompt == "mean" else f"prompt {prompt}"
    direction = _direction_label(r.direction)
    event = chart(heatmap(heads.tolist(), x=[f"H{h}" for h in range(r.n_heads)], y=[f"L{l}" for l in range(r.n_layers)],
                          title=f"Heads: DLA on {direction} ({where}); click a cell to pick its layer and head",
                          x_title="head", y_title="layer", value="logit"), key=f"{run.name}:heads", clickable=True)
    clicked = apply_click(event, f"{run.name}:heads", lambda l, h: {f"{run.name}:layer": l,
                                                                    f"{run.name}:pattern_head": (l, h)})
    strongest = int(heads.abs().argmax()) // r.n_heads  # first shown: the layer of the strongest head
    layer = linked_selectbox(st, "Layer", list(range(r.n_layers)), f"{run.name}:layer", index=strongest,
                             help="the layer whose components the bar chart below shows")
    mlp, bias = _select(r.mlp_attr, prompt, position), _select(r.attn_bias_attr, prompt, position)  # [L]
    names = [f"H{h}" for h in range(r.n_heads)] + ["attn bias", "MLP"]
    values = heads[layer].tolist() + [bias[layer].item(), mlp[layer].item()]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=["#2166ac" if v > 0 else "#b2182b" for v in values],
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(title=f"Layer {layer}: what each component writes to {direction} ({where})",
                      yaxis_title="contribution to the logit (difference)", height=320, margin={"t": 40})
    chart(fig, key=f"{run.name}:layer_bars")
    chart(layer_overview(r, prompt, position, f"{direction} ({where})"), key=f"{run.name}:overview")
    positions_view(run, r.prompts, prompt, key=f"{run.name}:positions")
    st.subheader("Top components of this selection")
    top = _components(heads, mlp, bias, _select(r.embed_attr[..., None], prompt, position).item())
    table_view(top, key=f"{run.name}:top", name=f"{run.name}-components")
    st.subheader("Per prompt")
    rows = r.per_prompt if prompt == "mean" else r.per_prompt[r.per_prompt["prompt"] == prompt]
    table_view(rows, key=f"{run.name}:per_prompt", name=f"{run.name}-per_prompt")
    st.subheader("Attention pattern of a head")
    ranked = top[top["head"].notna()].head(10)
    choices = [(int(a), int(b)) for a, b in zip(ranked["layer"], ranked["head"])]
    clicked = clicked or st.session_state.get(f"{run.name}:heads:clicked")
    if clicked is not None and tuple(clicked) not in choices:  # a clicked head joins the list
        choices.insert(0, tuple(clicked))
    picked = st.selectbox("Head (the 10 strongest of this selection, or the clicked one)", choices, key=f"{run.name}:pattern_head",
                          format_func=lambda c: f"L{c[0]}H{c[1]}")
    if picked is not None:
        pattern_view(run, r.prompts, picked[0], picked[1], key=f"{run.name}:dla", prompt=prompt)
    return Shown(figures={"head_heatmap", "layer_bars"}, tables={"per_prompt"})


def layer_overview(r, prompt, position, what: str) -> go.Figure:
    """Per-layer stacked bars (embeddings, the layer's heads summed, attention bias, MLP, final
    bias) for the page's prompt and position: the run's saved `layer_bars`, which is the mean over
    prompts, redrawn for the selection (the same numbers when "mean" is picked)."""
    heads = _select(r.head_attr, prompt, position).sum(-1)  # [L]
    bias, mlp = _select(r.attn_bias_attr, prompt, position), _select(r.mlp_attr, prompt, position)
    embed = _select(r.embed_attr[..., None], prompt, position).item()
    if r.pos_embed_attr is not None:
        embed += _select(r.pos_embed_attr[..., None], prompt, position).item()
    final = _select(r.bias_attr[..., None], prompt, position).item()
    x = ["embed"] + [f"L{l}" for l in range(r.n_layers)] + ["bias"]
    zeros = [0.0] * r.n_layers
    parts = [("embeddings", [embed] + zeros + [0.0]), ("attention heads", [0.0] + heads.tolist() + [0.0]),
             ("attention bias", [0.0] + bias.tolist() + [0.0]), ("MLP", [0.0] + mlp.tolist() + [0.0]),
             ("norm/unembed bias", [0.0] + zeros + [final])]
    fig = go.Figure([go.Bar(name=name, x=x, y=y, hovertemplate=f"%{{x}} {name}: %{{y:.4f}}<extra></extra>")
                     for name, y in parts])
    fig.update_layout(barmode="relative", title=f"Per layer: DLA on {what}", xaxis={"title": "component",
                      "type": "category"}, yaxis_title="contribution to the logit (difference)", height=360)
    return fig


def _direction_label(direction: str) -> str:
    """"' Paris' - ' London'" -> "␣Paris - ␣London" (quoted tokens with visible whitespace)."""
    return re.sub(r"'([^']*)'", lambda m: visible(m.group(1)), direction)


def _components(heads, mlp, bias, embed: float) -> pd.DataFrame:
    rows = [("embed", None, None, embed)]
    for layer in range(heads.shape[0]):
        rows += [(f"L{layer}H{h}", layer, h, heads[layer, h].item()) for h in range(heads.shape[1])]
        rows.append((f"L{layer} MLP", layer, None, mlp[layer].item()))
        if bias[layer] != 0:
            rows.append((f"L{layer} attn bias", layer, None, bias[layer].item()))
    table = pd.DataFrame(rows, columns=["component", "layer", "head", "value"])
    table["layer"], table["head"] = table["layer"].astype("Int64"), table["head"].astype("Int64")
    return table.reindex(table["value"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def rank_figure(r, rows: list[int], names: list[str]) -> go.Figure:
    """Target rank per layer (1 = top) on a log axis labelled 1, 10, 100, ... that starts at rank 1."""
    fig = go.Figure()
    ranks = r.target_rank[rows] + 1  # [rows, L + 1], 1 = most likely
    for row, name in zip(ranks, names):
        fig.add_scatter(x=r.layer_labels, y=row.tolist(), mode="lines+markers", name=name,
                        hovertemplate="%{x}: rank %{y}<extra>" + name + "</extra>")
    top = float(ranks.max()) if ranks.numel() else 1.0
    ticks = [v for v in (1, 10, 100, 1000, 10_000, 100_000, 1_000_000) if v <= max(top, 1) * 10]
    fig.update_layout(title=f"Rank of the target {visible(r.target)} per layer (1 = top prediction)",
                      xaxis_title="layer", yaxis={"title": "rank of the target", "type": "log",
                                                  "range": [math.log10(max(top, 10)) + 0.1, -0.05],
                                                  "tickvals": ticks, "ticktext": [f"{v:,}" for v in ticks]},
                      height=340)
    return fig


@page("lens", result="interp.dla.lens")
def lens_page(run: SavedRun, r) -> Shown:
    """The lens grid (every row x every layer, top-1 token in the cell, top-5 and the target on hover),
    then the pickers for the top-k table under it, and the target's rank for the rows shown."""
    per_prompt = len(r.row_prompt) > len(r.prompts)  # positions="all": several rows per prompt
    if per_prompt:
        prompt = pick_prompt(st, r.prompts, key=f"{run.name}:prompt", mean=False)
        rows = [i for i, p in enumerate(r.row_prompt) if p == prompt]
        columns = [f"{r.row_position[i]}:{visible(r.row_token[i])}" for i in rows]
    else:
        rows = list(range(len(r.row_prompt)))
        columns = [f"prompt {r.row_prompt[i]}: {visible(r.row_token[i])}" for i in rows]
    labels = r.layer_labels
    z = r.top_probs[rows, :, 0].T.tolist()  # [L + 1, columns]
    text = [[visible(r.top_tokens[i][j][0]) for i in rows] for j in range(len(labels))]
    hover = [[_lens_hover(r, i, j) for i in rows] for j in range(len(labels))]
    fig = heatmap(z, x=columns, y=labels, text=text, colorscale="Blues", zmid=None, zmin=0.0, zmax=1.0,
                  value="top-1 prob", title="Logit lens: top next token per layer (hover: top 5 and the target)",
                  x_title="input token", y_title="layer", hover="%{hovertext}<extra></extra>")
    fig.update_traces(hovertext=hover, textfont={"size": 10})  # hovertext: the click markers carry it over
    event = chart(fig, key=f"{run.name}:lens", clickable=True)
    apply_click(event, f"{run.name}:lens", lambda layer, column: {f"{run.name}:layer": layer,
                                                                  f"{run.name}:column": column})
    st.caption("Click a cell of the grid, or pick it here, for its full top-k list:")
    c2, c3 = st.columns([1, 2])
    clicked = f"{run.name}:layer" in st.session_state  # then the state decides, not the default
    layer = c2.selectbox("Layer", range(len(labels)), index=0 if clicked else len(labels) - 1,
                         format_func=labels.__getitem__, key=f"{run.name}:layer")
    column = c3.selectbox("Position", range(len(rows)), index=0 if clicked else len(rows) - 1,
                          format_func=columns.__getitem__, key=f"{run.name}:column")
    row = rows[column]
    if per_prompt:
        lens_strip(r, rows, layer)
    top = pd.DataFrame({"rank": range(1, r.top_ids.shape[-1] + 1),
                        "token": [visible(t) for t in r.top_tokens[row][layer]],
                        "id": r.top_ids[row, layer].tolist(), "prob": r.top_probs[row, layer].tolist()})
    st.markdown(f"**Top tokens at {labels[layer]}, {columns[column]}**")
    if r.target_rank is not None:
        st.caption(f"target {visible(r.target)}: rank {int(r.target_rank[row, layer]) + 1}, "
                   f"prob {float(r.target_prob[row, layer]):.4g}")
    table_view(top, key=f"{run.name}:top", name=f"{run.name}-top-{labels[layer]}")
    if r.target_rank is not None:
        chart(rank_figure(r, rows, columns), key=f"{run.name}:rank")
    return Shown(figures={"lens_heatmap", "target_rank"})


def lens_strip(r, rows: list[int], layer: int) -> None:
    """The prompt's tokens coloured by the lens at `layer` at every position: the target's
    probability (the top-1 probability without a target), the top-1 token on hover."""
    label = r.layer_labels[layer]
    if r.target_rank is not None:
        values, what = [float(r.target_prob[i, layer]) for i in rows], f"p({visible(r.target)}) at {label}"
    else:
        values, what = [float(r.top_probs[i, layer, 0]) for i in rows], f"top-1 prob at {label}"
    st.markdown(f"**Every position at {label}**: {what}")
    token_strip([r.row_token[i] for i in rows], values, what, fmt=".2f", low=0.0, high=1.0,
                notes=[f"top-1 {visible(r.top_tokens[i][layer][0])} {float(r.top_probs[i, layer, 0]):.2f}"
                       for i in rows])


def _lens_hover(r, row: int, layer: int) -> str:
    lines = [f"{r.layer_labels[layer]}, position {r.row_position[row]}"]
    lines += [f"{k + 1}. {visible(t)}  {float(r.top_probs[row, layer, k]):.3f}"
              for k, t in enumerate(r.top_tokens[row][layer][:5])]
    if r.target_rank is not None:
        lines.append(f"target {visible(r.target)}: rank {int(r.target_rank[row, layer]) + 1}, "
                     f"p {float(r.target_prob[row, layer]):.3g}")
    return "<br>".join(lines)
