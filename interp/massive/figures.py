"""Plotly figures of a `MassiveResult`: per-layer bars of the largest |activation| (log
scale, labelled with its dimension and token), the paper's per-sequence statistic (each
prompt's top-k and median |h| averaged over prompts, next to the pooled ones), the origin chart (attention vs MLP output at
the massive entries per layer) and the perplexity table of the intervention."""

from __future__ import annotations

import plotly.graph_objects as go


def massive_figures(result) -> dict:
    figures = {"massive_bars": massive_bars(result)}
    if result.seq_top is not None:
        figures["per_sequence"] = per_sequence_chart(result)
    if result.origin_table is not None:
        figures["origin"] = origin_chart(result)
    if result.ppl is not None:
        figures["ppl_table"] = ppl_table(result)
    return figures


def massive_bars(result) -> go.Figure:
    layers = result.layers()
    x = [f"L{e['layer']}" for e in layers]
    labels = []
    for e in layers:
        top = e["top"][0] if e["top"] else None
        labels.append(f"dim {top['dim']} @ {top['token']!r}" if top else "")
    fig = go.Figure([
        go.Bar(x=x, y=[e["max_abs"] for e in layers], name="max |a|", text=labels, textposition="outside",
               marker_color=["#b2182b" if e["is_massive"] else "#878787" for e in layers],
               customdata=[[e["ratio"], ", ".join(map(str, e["dims"])) or "-"] for e in layers],
               hovertemplate="%{x}: max |a| = %{y:.1f}, ratio %{customdata[0]:.0f}, massive dims "
                             "%{customdata[1]}<br>%{text}<extra></extra>"),
        go.Scatter(x=x, y=[e["median_abs"] for e in layers], name="median |a|", mode="lines+markers"),
    ])
    fig.update_layout(title=f"Largest |activation| per layer (red: {result.summary()['criterion']})",
                      xaxis_title="decoder layer output", yaxis_title="|activation|", yaxis_type="log")
    return fig


def per_sequence_chart(result) -> go.Figure:
    """The authors' layer-wise figure (top-k and median |h|, each prompt's own, averaged over
    prompts) with our pooled maximum and median dashed."""
    x = [f"L{l}" for l in range(result.n_layers)]
    fig = go.Figure()
    for rank in range(result.seq_top.shape[1]):
        fig.add_trace(go.Scatter(x=x, y=result.seq_top[:, rank].tolist(), mode="lines+markers",
                                 name=f"top {rank + 1} (per prompt, mean)"))
    fig.add_trace(go.Scatter(x=x, y=result.seq_median.tolist(), mode="lines+markers", name="median (per prompt, mean)"))
    fig.add_trace(go.Scatter(x=x, y=result.max_abs.tolist(), mode="lines", line={"dash": "dash"},
                             name="max |a| (pooled)"))
    fig.add_trace(go.Scatter(x=x, y=result.median_abs.tolist(), mode="lines", line={"dash": "dash"},
                             name="median |a| (pooled)"))
    fig.update_layout(title=f"Per-prompt statistic of the paper, averaged over {len(result.prompts)} prompts "
                            "(dashed: pooled over all prompts)", xaxis_title="decoder layer output",
                      yaxis_title="|activation|", yaxis_type="log")
    return fig


def origin_chart(result) -> go.Figure:
    fig = go.Figure()
    table = result.origin_table
    for origin in result.origin:
        rows = table[table["group_layer"] == origin["first_layer"]]
        x = [f"L{l}" for l in rows["layer"]]
        name = f"dims {origin['dims']}"
        fig.add_trace(go.Bar(x=x, y=rows["attn_max"].tolist(), name=f"{name}: attention output, max |.|"))
        fig.add_trace(go.Bar(x=x, y=rows["mlp_max"].tolist(), name=f"{name}: MLP output, max |.|"))
        fig.add_trace(go.Scatter(x=x, y=rows["resid_write"].abs().tolist(), mode="lines+markers",
                                 name=f"{name}: residual, |mean aligned value|"))
    writers = "; ".join(f"dims {o['dims']}: L{o['layer']} {o['sublayer']}" if o["sublayer"] else
                        f"dims {o['dims']}: not found" for o in result.origin)
    fig.update_layout(title=f"Origin of the massive activations (first writer: {writers})", xaxis_title="layer",
                      yaxis_title="|value| at the massive entries", yaxis_type="log", barmode="group")
    return fig


def ppl_table(result) -> go.Figure:
    ppl = result.ppl
    rows = [("original", ppl["original"]), ("massive dims set to 0", ppl["zero"]),
            ("massive dims set to their mean", ppl["mean"])]
    fig = go.Figure(go.Table(
        header={"values": ["condition", "perplexity"]},
        cells={"values": [[r[0] for r in rows], [f"{r[1]:.3f}" for r in rows]]},
    ))
    fig.update_layout(title=f"Perplexity on {ppl['n_texts']} texts ({ppl['n_tokens']} tokens; "
                            f"{ppl['massive_tokens']} massive (token, layer) edits at layers "
                            f"{[e['layer'] for e in ppl['edits']]})")
    return fig
