"""Plotly figures of a skill basis and of steering along its directions.

- `explained_variance_figure`: share of the corpus variance per direction, and cumulative.
- `projection_figure`: the corpus on two directions (PCA scores), coloured by a metadata
  column, the text on hover.
- `steering_effect_figure`: per direction, the task metric's change and the perplexity of
  held-out text against alpha (the damage check beside the effect).
- `proxy_figure`: the proxy-intervention ranking of the directions.
"""

from __future__ import annotations

import textwrap

import pandas as pd

HOVER_CHARS = 300


def explained_variance_figure(result):
    import plotly.graph_objects as go

    ratio = result.variance_ratio.double()
    labels = [str(k) for k in range(len(ratio))]
    fig = go.Figure()
    fig.add_bar(x=labels, y=ratio.tolist(), name="per direction",
                hovertemplate="direction %{x}: %{y:.1%} of the variance<extra></extra>")
    fig.add_scatter(x=labels, y=ratio.cumsum(0).tolist(), name="cumulative", mode="lines+markers",
                    hovertemplate="directions 0..%{x}: %{y:.1%}<extra></extra>")
    fig.update_layout(title=f"Explained variance of the {len(ratio)} skill directions "
                            f"({len(result.corpus)} texts, layers {result.layers[0]}..{result.layers[-1]})",
                      xaxis={"title": "direction", "type": "category"},
                      yaxis={"title": "share of total variance", "tickformat": ".0%"}, height=360, margin={"t": 50})
    return fig


def _hover(text: str) -> str:
    short = text if len(text) <= HOVER_CHARS else text[:HOVER_CHARS] + "..."
    return "<br>".join(textwrap.wrap(short.replace("\n", " "), 60))


def default_color(corpus: pd.DataFrame) -> str | None:
    """The first metadata column with a few distinct values (e.g. 'category')."""
    fixed = {"id", "text", "n_chars", "n_tokens", "truncated_tokens", "norm"}
    for column in corpus.columns:
        if column not in fixed and 1 < corpus[column].nunique() <= 20:
            return column
    return None


def projection_figure(result, x: int = 0, y: int = 1, color: str | None = "auto"):
    """The corpus on directions x and y (centred scores), coloured by a metadata column."""
    import plotly.express as px

    for d in (x, y):
        result._check(d)
    corpus = result.corpus
    color = default_color(corpus) if color == "auto" else color
    if color is not None and color not in corpus.columns:
        raise ValueError(f"no corpus column '{color}'; columns are {list(corpus.columns)}")
    frame = pd.DataFrame({f"direction {x}": result.scores[:, x].tolist(), f"direction {y}": result.scores[:, y].tolist(),
                          "id": corpus["id"].astype(str), "hover": [_hover(t) for t in corpus["text"]]})
    if color is not None:
        frame[color] = corpus[color].astype(str).fillna("")
    ratio = result.variance_ratio
    fig = px.scatter(frame, x=f"direction {x}", y=f"direction {y}", color=color, custom_data=["id", "hover"],
                     title=f"Corpus on directions {x} ({float(ratio[x]):.1%}) and {y} ({float(ratio[y]):.1%})")
    fig.update_traces(hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<extra></extra>",
                      marker={"size": 8, "opacity": 0.8})
    fig.update_layout(height=480, margin={"t": 50})
    return fig


def steering_effect_figure(table: pd.DataFrame, metric: str = "accuracy"):
    """Per direction: change of `metric` (left) and held-out perplexity (right) against alpha."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"change of {metric} vs no steering",
                                                        "held-out perplexity (damage)"))
    for direction, rows in table.sort_values("alpha").groupby("direction", sort=True):
        name = f"direction {direction}"
        fig.add_scatter(x=rows["alpha"], y=rows[f"delta_{metric}"], mode="lines+markers", name=name,
                        legendgroup=name, row=1, col=1,
                        hovertemplate=f"{name}, alpha %{{x}}: %{{y:+.3f}}<extra></extra>")
        fig.add_scatter(x=rows["alpha"], y=rows["ppl"], mode="lines+markers", name=name, legendgroup=name,
                        showlegend=False, row=1, col=2, hovertemplate=f"{name}, alpha %{{x}}: ppl %{{y:.2f}}<extra></extra>")
    fig.update_xaxes(title_text="alpha (corpus standard deviations, or raw with scale=unit)")
    fig.update_layout(title="Steering along each skill direction: effect and damage", height=400, margin={"t": 60})
    return fig


def proxy_figure(proxy: pd.DataFrame):
    import plotly.express as px

    frame = proxy.assign(label=[f"{d} ({p})" for d, p in zip(proxy["direction"], proxy["best_pole"])])
    fig = px.bar(frame, x="label", y="gain", title="Proxy intervention: gain of the cheap metric per direction "
                 "(best pole; higher is more useful)")
    fig.update_layout(xaxis_title="direction (best pole)", yaxis_title="gain", height=360, margin={"t": 50})
    return fig
