"""Explorer page for the void-skipping evaluation (`interp.voids.evaluation`, "Void in Language
Models", arXiv 2505.14467, section 5: accuracy when the layers LAC marks void are skipped).

Shows the accuracy without skipping and with skipping at each alpha as points with their
counts (k/n) and 95% Wilson intervals on one category axis (so two equal accuracies are two
visible points, not one line of one point), how many answers skipping changed, the share of
layers used (prompt, response, answer token) per alpha, and which layers the answer token
used (share of questions per layer). Replaces the saved "accuracy_vs_alpha" figure, whose
no-skipping baseline is a line of one point (invisible) on runs of one alpha.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from .generic import chart, table_view
from .intervals import wilson
from .registry import Shown, page
from .runs import SavedRun


def accuracy_rows(r) -> pd.DataFrame:
    """One row per setting (no skipping, then each alpha): correct, n, accuracy, Wilson 95% CI,
    answers changed by skipping and the layers used, from the per-question table."""
    table = r.per_question
    rows = []
    base = table[table["mode"] == "no_skip"].set_index("question")
    settings = [("no skipping", None, base)] + [
        (f"{r.skip} skipping, alpha {a:g}", a, table[(table["mode"] == r.skip) & (table["alpha"] == a)].set_index("question"))
        for a in r.alphas]
    for name, alpha, part in settings:
        k, n = int(part["correct"].sum()), len(part)
        low, high = wilson(k, n) if n else (float("nan"), float("nan"))
        a = None if alpha is None else r.alphas.index(alpha)
        changed = None if alpha is None else int((part["predicted"] != base["predicted"].reindex(part.index)).sum())
        rows.append({"setting": name, "alpha": alpha, "correct": k, "n": n, "accuracy": k / n if n else float("nan"),
                     "ci_low": low, "ci_high": high, "answers_changed": changed,
                     "layers_used_prompt_pct": None if a is None else _round(r.layers_used_prompt[a]),
                     "layers_used_response_pct": None if a is None else _round(r.layers_used_response[a]),
                     "layers_used_answer_token_pct": None if a is None else _round(r.layers_used_answer_token[a]),
                     "layer_calls_skipped_pct": None if a is None else _round(
                         100 * (r.compute[a] or {}).get("layer_calls_skipped_frac", float("nan")))})
    return pd.DataFrame(rows)


def _round(value) -> float | None:
    return None if value is None else round(float(value), 1)


def accuracy_figure(rows: pd.DataFrame, task: str) -> go.Figure:
    """Accuracy per setting: a point with its Wilson interval and "k/n" beside it, one category each."""
    colours = ["#555555"] + ["#d95f02"] * (len(rows) - 1)
    fig = go.Figure(go.Scatter(
        x=rows["setting"].tolist(), y=rows["accuracy"].tolist(), mode="markers+text",
        text=[f"{k}/{n}" for k, n in zip(rows["correct"], rows["n"])], textposition="middle right",
        marker={"size": 12, "color": colours},
        error_y={"type": "data", "symmetric": False, "array": (rows["ci_high"] - rows["accuracy"]).tolist(),
                 "arrayminus": (rows["accuracy"] - rows["ci_low"]).tolist(), "width": 8},
        customdata=list(zip(rows["ci_low"], rows["ci_high"])),
        hovertemplate="%{x}: %{text} correct = %{y:.0%}<br>95% Wilson CI %{customdata[0]:.0%} to "
                      "%{customdata[1]:.0%}<extra></extra>"))
    fig.update_layout(title=f"{task}: accuracy without and with void layers skipped ({int(rows['n'].iloc[0])} "
                            "questions; bars: 95% Wilson intervals)",
                      xaxis={"title": "setting", "type": "category"},
                      yaxis={"title": "accuracy", "range": [0, 1.05], "tickformat": ".0%"}, height=380,
                      showlegend=False)
    return fig


def layers_used_figure(rows: pd.DataFrame) -> go.Figure:
    """% of layers used per alpha: prompt tokens, response tokens (when generated) and the answer token."""
    skipped = rows[rows["alpha"].notna()]
    x = [f"alpha {a:g}" for a in skipped["alpha"]]
    fig = go.Figure()
    for column, name in (("layers_used_prompt_pct", "prompt tokens"), ("layers_used_response_pct", "response tokens"),
                         ("layers_used_answer_token_pct", "answer token (last prompt token)")):
        values = skipped[column].tolist()
        if any(v is not None and v == v for v in values):
            fig.add_bar(x=x, y=values, name=name, text=[f"{v:.1f}%" if v is not None else "" for v in values],
                        textposition="outside", cliponaxis=False, hovertemplate=f"%{{x}}, {name}: %{{y:.1f}}% of layers used<extra></extra>")
    fig.update_layout(title="Layers used (LAC active) per alpha, % of (layer, token) pairs", barmode="group",
                      xaxis={"title": "alpha", "type": "category"}, yaxis={"title": "% of layers used",
                                                                           "range": [0, 115]}, height=340)
    return fig


def answer_layers_figure(r) -> go.Figure:
    """Share of questions whose answer token uses each layer, one line per alpha ([A, L] saved)."""
    fig = go.Figure()
    for alpha, row in zip(r.alphas, r.per_layer_answer.float()):
        fig.add_scatter(x=list(range(row.shape[0])), y=row.tolist(), mode="lines+markers", name=f"alpha {alpha:g}",
                        hovertemplate=f"layer %{{x}}: used by %{{y:.0%}} of answer tokens (alpha {alpha:g})<extra></extra>")
    fig.update_layout(title="Which layers the answer token uses: share of questions per layer",
                      xaxis={"title": "layer", "dtick": 1}, yaxis={"title": "share of questions", "range": [0, 1.05], "tickformat": ".0%"},
                      height=320)
    return fig


@page("voids_eval", result="interp.voids.evaluation")
def voids_eval_page(run: SavedRun, r) -> Shown:
    rows = accuracy_rows(r)
    st.subheader(f"Accuracy on {r.task}: {r.n_questions} questions, {r.skip} skipping, answers by {r.answer}")
    columns = st.columns(len(rows))
    for column, row in zip(columns, rows.itertuples()):
        column.metric(row.setting, f"{row.correct}/{row.n} = {row.accuracy:.0%}",
                      help=f"95% Wilson interval {row.ci_low:.0%} to {row.ci_high:.0%}"
                           + ("" if row.answers_changed is None else f"; {row.answers_changed} answer(s) changed by skipping"))
    chart(accuracy_figure(rows, r.task), key=f"{run.name}:accuracy")
    chart(layers_used_figure(rows), key=f"{run.name}:layers_used")
    chart(answer_layers_figure(r), key=f"{run.name}:answer_layers")
    table_view(rows, key=f"{run.name}:settings", name=f"{run.name}-accuracy")
    return Shown(figures={"accuracy_vs_alpha"})
