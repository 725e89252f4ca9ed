"""Plotly figures of a `SinkResult`: layer x head sink heatmap, first-token share per layer
with its spread over heads, value-drain curves and residual-norm curves."""

from __future__ import annotations

import plotly.graph_objects as go


def sink_figures(result) -> dict:
    figures = {"sink_heatmap": sink_heatmap(result), "first_token_share": first_token_share_plot(result),
               "resid_norm": resid_norm_plot(result)}
    if result.value_drain() is not None:
        figures["value_drain"] = value_drain_plot(result)
    return figures


def _layers(result) -> list[str]:
    return [f"L{l}" for l in range(result.n_layers)]


def sink_heatmap(result) -> go.Figure:
    alpha0 = result.mean_alpha()[..., 0]  # [L, H]
    frac = result.head_sink_fraction()
    fig = go.Figure(go.Heatmap(
        z=alpha0.tolist(), customdata=frac.tolist(), x=[f"H{h}" for h in range(result.n_heads)], y=_layers(result),
        colorscale="Viridis", zmin=0.0, zmax=1.0, colorbar={"title": "alpha(token 0)"},
        hovertemplate="%{y} %{x}: alpha=%{z:.3f}, sinks in %{customdata:.0%} of sequences<extra></extra>",
    ))
    fig.update_layout(title=f"Sink importance of the first token (sink rate {result.sink_rate():.1f}% at "
                            f"eps={result.eps}, T={result.tokens}, BOS {'on' if result.bos_added else 'off'})",
                      xaxis_title="head", yaxis_title="layer", yaxis={"autorange": "reversed"})
    return fig


def first_token_share_plot(result) -> go.Figure:
    x = list(range(result.n_layers))
    fig = go.Figure()
    variants = [("natural, mean over queries", "natural", False), ("natural, last query", "natural", True)]
    if result.random is not None:
        variants.append(("random tokens, mean over queries", "random", False))
    for name, kind, last in variants:
        fig.add_trace(go.Scatter(
            x=x, y=result.first_token_share_by_layer(kind, last), name=name, mode="lines+markers",
            error_y={"type": "data", "array": result.first_token_share_std_by_layer(kind, last), "visible": True},
        ))
    fig.update_layout(title="Attention share on the first token per layer (mean +/- std over heads)",
                      xaxis_title="layer", yaxis_title="attention to token 0", yaxis={"range": [0, 1.05]})
    return fig


def value_drain_plot(result) -> go.Figure:
    sink, rest = result.value_drain()
    x = list(range(result.n_layers))
    fig = go.Figure([
        go.Scatter(x=x, y=sink.mean(-1).tolist(), name="token 0 (sink)", mode="lines+markers",
                   error_y={"type": "data", "array": sink.std(-1, unbiased=False).tolist(), "visible": True}),
        go.Scatter(x=x, y=rest.mean(-1).tolist(), name="other tokens (mean)", mode="lines+markers",
                   error_y={"type": "data", "array": rest.std(-1, unbiased=False).tolist(), "visible": True}),
    ])
    fig.update_layout(title="Value drain: ||v_j W_O^h|| per layer (mean +/- std over heads)",
                      xaxis_title="layer", yaxis_title="norm of the head's value output")
    return fig


def resid_norm_plot(result) -> go.Figure:
    x = list(range(result.n_layers))
    fig = go.Figure()
    kinds = ["natural"] + (["random"] if result.random is not None else [])
    for kind in kinds:
        first, rest = result.resid_norm_by_layer(kind)
        fig.add_trace(go.Scatter(x=x, y=first, name=f"token 0 ({kind})", mode="lines+markers"))
        fig.add_trace(go.Scatter(x=x, y=rest, name=f"other tokens ({kind})", mode="lines+markers",
                                 line={"dash": "dash"}))
    fig.update_layout(title="Residual-state norm ||resid_j|| per layer", xaxis_title="layer",
                      yaxis_title="L2 norm of the decoder layer output", yaxis_type="log")
    return fig
