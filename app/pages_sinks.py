"""Explorer page for attention sinks (`interp.sinks`, Gu et al. ICLR 2025; StreamingLLM).

Controls: natural text or random tokens, one sequence or the mean, the key position k
(0 = the first token). Shows the layer x head map of the sink importance alpha at k with
the eps threshold, and for a picked layer and head alpha over every key position.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from .generic import chart, heatmap, linked_selectbox, pick_prompt, table_view
from .cellpick import apply_click
from .patterns import pattern_view
from .registry import Shown, page
from .runs import SavedRun
from .tokens import visible


@page("sinks", result="interp.sinks.measure")
def sinks_page(run: SavedRun, r) -> Shown:
    kinds = ["natural"] + (["random"] if r.random is not None else [])
    c1, c2, c3 = st.columns([1, 3, 1])
    kind = c1.radio("Input", kinds, key=f"{run.name}:kind", horizontal=True)
    alpha = r.stats(kind)["alpha"].float()  # [N, L, H, T], NaN beyond a sequence's length
    if kind == "natural":
        seq = pick_prompt(c2, r.prompts, key=f"{run.name}:seq", label="Sequence")
    else:
        seq = c2.selectbox("Sequence", ["mean", *range(alpha.shape[0])], key=f"{run.name}:rseq",
                           format_func=lambda i: "mean over sequences" if i == "mean" else f"random sequence {i}")
    sel = alpha.nanmean(0) if seq == "mean" else alpha[seq]  # [L, H, T]
    valid = int((~sel[0, 0].isnan()).sum())
    k = c3.number_input("Key position k", 0, max(valid - 1, 0), 0, key=f"{run.name}:k",
                        help="0-based over real tokens; the paper's Sink_1 is k = 0")
    at_k = sel[..., k]  # [L, H]
    rate = 100.0 * float((at_k > r.eps).float().mean())
    n_heads_total = r.n_layers * r.n_heads
    above = int((at_k > r.eps).sum())
    event = chart(share_map(torch.nan_to_num(at_k), r.eps, [f"H{h}" for h in range(r.n_heads)],
                    [f"L{l}" for l in range(r.n_layers)], "head", "layer",
                    f"Sink importance of key {k}: {rate:.1f}% of heads above eps={r.eps} ({above} of "
                    f"{n_heads_total}; {kind}, {'mean' if seq == 'mean' else f'sequence {seq}'})"),
          key=f"{run.name}:map", clickable=True)
    apply_click(event, f"{run.name}:map", lambda layer, head: {f"{run.name}:layer": layer, f"{run.name}:head": head})
    c4, c5 = st.columns(2)
    top = int(torch.nan_to_num(at_k, nan=-1.0).argmax())  # first shown: the strongest sink head
    layer = linked_selectbox(c4, "Layer", list(range(r.n_layers)), f"{run.name}:layer", index=top // r.n_heads)
    head = linked_selectbox(c5, "Head", list(range(r.n_heads)), f"{run.name}:head", index=top % r.n_heads)
    curve = sel[layer, head, :valid]  # [T]
    fig = go.Figure(go.Scatter(y=curve.tolist(), mode="lines+markers", name=f"L{layer}H{head}",
                               hovertemplate="key %{x}: alpha %{y:.4f}<extra></extra>"))
    fig.add_hline(y=r.eps, line_dash="dash", annotation_text=f"eps={r.eps}")
    fig.update_layout(title=f"L{layer}H{head}: sink importance alpha of every key position",
                      xaxis_title="key position (0 = first token)", yaxis_title="alpha", yaxis_range=[0, 1.02],
                      height=320, margin={"t": 40})
    chart(fig, key=f"{run.name}:curve")
    chart(share_map(torch.nan_to_num(sel[layer, :, :valid]), r.eps, list(range(valid)),
                    [f"H{h}" for h in range(r.n_heads)], "key position", "head",
                    f"Layer {layer}: alpha per head and key position"), key=f"{run.name}:layer_map")
    if r.prompts:
        pattern_view(run, r.prompts, layer, head, key=f"{run.name}:sink", prompt=seq if kind == "natural" else None)
    secondary = getattr(r, "secondary", None)
    if isinstance(secondary, pd.DataFrame) and not secondary.empty:
        st.subheader(f"Secondary sinks ({len(secondary)} rows)")
        textual = {c: secondary[c].map(visible) for c in ("token",) if c in secondary.columns}
        table_view(secondary.assign(**textual), key=f"{run.name}:secondary", name=f"{run.name}-secondary")
    if r.notes:
        st.caption("Notes: " + "; ".join(r.notes))
    return Shown(figures={"sink_heatmap"}, tables={"secondary"} if isinstance(secondary, pd.DataFrame) else set())


def share_map(values: torch.Tensor, eps: float, x, y, x_title: str, y_title: str, title: str):
    """Attention shares on a fixed 0-1 scale (a map of small values stays dark), eps marked on the
    colour bar and every cell above eps outlined by a dot."""
    fig = heatmap(values.tolist(), x=x, y=y, colorscale="Viridis", zmid=None, zmin=0.0, zmax=1.0,
                  value="attention share", x_title=x_title, y_title=y_title, title=title)
    fig.update_traces(colorbar={"tickvals": [0, eps, 0.5, 1], "ticktext": ["0", f"eps {eps:g}", "0.5", "1"]})
    rows, cols = torch.nonzero(values > eps, as_tuple=True)
    if len(rows):
        fig.add_scatter(x=[x[c] for c in cols.tolist()], y=[y[r] for r in rows.tolist()], mode="markers",
                        marker={"symbol": "circle-open", "color": "white", "size": 7}, name=f"> eps {eps:g}",
                        hoverinfo="skip", showlegend=True)
        fig.update_layout(legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"})
    return fig
