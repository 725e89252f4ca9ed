"""Plotly figures of a routing run: interchange heatmaps with significance marks, AtP vs
exact, DLA screen, knockout bars with the null band, dose-response, cipher collapse and the
cipher contrast ranking. Each appears only when its step was run."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import torch


def _marks(p: float) -> str:
    if p is None or math.isnan(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def screen_grid(screen, values: torch.Tensor, n_layers: int, n_heads: int) -> tuple[torch.Tensor, list]:
    """Per-head values on a [L, H] grid (NaN where not screened)."""
    grid = torch.full((n_layers, n_heads), float("nan"))
    for (l, h), v in zip(screen.heads, values.tolist()):
        grid[l, h] = v
    return grid


def interchange_heatmap(screen, which: str, n_layers: int, n_heads: int) -> go.Figure:
    pct = getattr(screen, f"{which}_pct").float()
    p = getattr(screen, f"p_{which}").float()
    grid = screen_grid(screen, pct, n_layers, n_heads)
    pgrid = screen_grid(screen, p, n_layers, n_heads)
    text = [[_marks(pgrid[l, h].item()) for h in range(n_heads)] for l in range(n_layers)]
    fig = go.Figure(go.Heatmap(z=grid.tolist(), text=text, texttemplate="%{text}", colorscale="RdBu", zmid=0,
                               colorbar={"title": "% of baseline"},
                               hovertemplate="L%{y}H%{x}: %{z:.2f}% %{text}<extra></extra>"))
    return fig.update_layout(title=f"interchange {which} (% of mean baseline delta; * p<0.05, ** p<0.01, "
                                   f"align={screen.align})", xaxis_title="head", yaxis_title="layer")


def atp_scatter(screen) -> go.Figure | None:
    if screen.atp_necessity is None:
        return None
    name = getattr(screen, "estimator", None) or "AtP"  # IG for --method ig+exact
    keep = screen.exact.bool() & ~torch.isnan(screen.necessity).any(-1)
    fig = go.Figure()
    for which in ("necessity", "sufficiency"):
        atp = getattr(screen, f"atp_{which}")
        if atp is None:
            continue
        exact = getattr(screen, which)
        labels = [f"L{l}H{h}" for (l, h), k in zip(screen.heads, keep.tolist()) if k]
        fig.add_scatter(x=atp[keep].mean(-1).tolist(), y=exact[keep].mean(-1).tolist(), mode="markers", name=which,
                        text=labels, hovertemplate="%{text}: " + name + " %{x:.4f}, exact %{y:.4f}<extra></extra>")
    rho = screen.rank_correlation
    title = f"{name} estimate vs exact interchange (mean nats)" + (f", Spearman {rho:.2f}" if rho is not None else "")
    return fig.update_layout(title=title, xaxis_title=name, yaxis_title="exact")


def dla_heatmap(dla) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=dla.delta.tolist(), colorscale="RdBu", zmid=0, colorbar={"title": "logit"}))
    for l, h in dla.candidates:
        fig.add_scatter(x=[h], y=[l], mode="markers", marker={"symbol": "square-open", "size": 12, "color": "black"},
                        showlegend=False, hoverinfo="skip")
    return fig.update_layout(title=f"refusal DLA, harmful - benign (candidates boxed, band L{dla.band[0]}..L{dla.band[1] - 1})",
                             xaxis_title="head", yaxis_title="layer")


def ablation_bars(abl, screen=None) -> go.Figure:
    """Step 2 next to step 3 for the DLA candidates: the effect of removing the probe direction
    from z_h and, where the screen measured the head exactly, its interchange necessity (both in
    % of the mean baseline delta; arXiv 2604.04385 shows ablation to be the weaker test)."""
    names = [f"L{l}H{h}" for l, h in abl.heads]
    fig = go.Figure(go.Bar(x=names, y=abl.effect_pct.tolist(), name="ablation (probe direction removed from z_h)"))
    if screen is not None:
        nec = []
        for l, h in abl.heads:
            i = screen.heads.index((l, h)) if (l, h) in screen.heads else None
            nec.append(screen.necessity_pct[i].item() if i is not None and bool(screen.exact[i]) else None)
        if any(v is not None for v in nec):
            fig.add_bar(x=names, y=nec, name="interchange necessity (measured exactly)")
    return fig.update_layout(title="per-head ablation vs interchange, DLA candidates", barmode="group",
                             yaxis_title="% of mean baseline delta")


def knockout_bars(ko) -> go.Figure:
    names = [f"L{l}H{h}" for l, h in ko.candidates]
    fig = go.Figure(go.Bar(x=names, y=ko.change_pct.tolist(), name=f"gate L{ko.gate[0]}H{ko.gate[1]} knocked out"))
    null = ko.null_change_pct
    if null.numel():
        fig.add_scatter(x=names, y=null.max(0).values.tolist(), mode="lines", line={"width": 0}, showlegend=False)
        fig.add_scatter(x=names, y=null.min(0).values.tolist(), mode="lines", line={"width": 0}, fill="tonexty",
                        fillcolor="rgba(128,128,128,0.3)", name=f"null: {len(ko.null_heads)} random heads (min-max)")
    return fig.update_layout(title="knockout cascade: amplifier DLA change %", yaxis_title="change %")


def dose_curves(dose) -> go.Figure:
    fig = go.Figure()
    for prompts in ("benign", "harmful"):
        rows = dose.table[dose.table["prompts"] == prompts].sort_values("alpha")
        for label in ("refusal", "answer", "other"):
            fig.add_scatter(x=rows["alpha"].tolist(), y=rows[label].tolist(), mode="lines+markers",
                            name=f"{prompts}: {label}")
    return fig.update_layout(title=f"modulation dose-response (probe direction at layer {dose.layer})",
                             xaxis_title="alpha (signed)", yaxis_title="fraction")


def collapse_bars(col) -> go.Figure:
    names = [f"L{l}H{h}" for l, h in col.heads]
    return go.Figure(go.Bar(x=names, y=(100 * col.collapse).tolist())).update_layout(
        title="cipher interchange collapse per head (gate first)", yaxis_title="collapse %")


def contrast_bars(con, k: int = 20) -> go.Figure:
    top = con.ranking[:k]
    return go.Figure(go.Bar(x=[f"L{l}H{h}" for l, h in top], y=[con.gap[l, h].item() for l, h in top])).update_layout(
        title="cipher contrast: |plain - cipher| probe-direction DLA", yaxis_title="|mean plain - mean cipher|")


def routing_figures(result) -> dict:
    figs = {}
    if result.has("interchange"):
        screen = result.step("interchange")
        figs["necessity"] = interchange_heatmap(screen, "necessity", result.n_layers, result.n_heads)
        figs["sufficiency"] = interchange_heatmap(screen, "sufficiency", result.n_layers, result.n_heads)
        scatter = atp_scatter(screen)
        if scatter is not None:
            figs["atp_vs_exact"] = scatter
    if result.has("screen"):
        figs["dla_screen"] = dla_heatmap(result.step("screen"))
    if result.has("ablate"):
        figs["ablation"] = ablation_bars(result.step("ablate"),
                                         result.step("interchange") if result.has("interchange") else None)
    if result.has("knockout"):
        figs["knockout"] = knockout_bars(result.step("knockout"))
    if result.has("modulate"):
        figs["dose_response"] = dose_curves(result.step("modulate"))
    if result.has("collapse"):
        figs["cipher_collapse"] = collapse_bars(result.step("collapse"))
    if result.has("contrast"):
        figs["cipher_contrast"] = contrast_bars(result.step("contrast"))
    return figs
