"""Figures of a feature-dashboard run (`interp.features.explore.FeaturesResult`).

- `density_figure`: how often each feature fires (log10 firing density over features), the
  usual first check of an SAE (dead and dense features at the two ends).
- `histogram_figure(result, feature)`: the distribution of one feature's non-zero activations.
- `logits_figure(result, feature)`: its top and bottom logit tokens (per unit activation).
"""

from __future__ import annotations

import plotly.graph_objects as go


def density_figure(result) -> go.Figure:
    density = result.density.double()
    alive = density[density > 0]
    dead = int((density == 0).sum())
    fig = go.Figure(go.Histogram(x=alive.log10().tolist(), nbinsx=40, name="features",
                                 hovertemplate="log10 density %{x}: %{y} features<extra></extra>"))
    fig.update_layout(title=f"Feature firing density at {result.sae_site} ({len(alive)} alive, {dead} never fired "
                            f"on {result.n_tokens} tokens)",
                      xaxis_title="log10(fraction of tokens where the feature fires)", yaxis_title="features",
                      height=320, margin={"t": 50})
    return fig


def histogram_figure(result, feature: int) -> go.Figure:
    row = result.row(feature)
    edges = result.hist_edges[row].tolist()
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    fig = go.Figure(go.Bar(x=centres, y=result.hist_counts[row].tolist(), width=edges[1] - edges[0],
                           hovertemplate="activation %{x:.3g}: %{y} tokens<extra></extra>"))
    density = float(result.density[row])
    label = f"{100 * density:.3g}% of tokens" if density > 0 else "never fired"
    fig.update_layout(title=f"Feature {feature}: non-zero activations ({label})", xaxis_title="activation",
                      yaxis_title="tokens", height=280, margin={"t": 40}, bargap=0.05)
    return fig


def logits_figure(result, feature: int) -> go.Figure:
    row = result.row(feature)
    text = result.token_text
    top = [(repr(text.get(int(t), str(int(t)))), float(v)) for t, v in zip(result.logit_top_ids[row], result.logit_top[row])]
    bottom = [(repr(text.get(int(t), str(int(t)))), float(v))
              for t, v in zip(result.logit_bottom_ids[row], result.logit_bottom[row])]
    items = list(reversed(bottom)) + list(reversed(top))
    values = [v for _, v in items]
    fig = go.Figure(go.Bar(x=values, y=[f"{label} " for label, _ in items], orientation="h",
                           marker_color=["#c0392b" if v < 0 else "#2471a3" for v in values],
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title=f"Feature {feature}: logits per unit activation (decoder row through final norm and W_U)",
                      height=max(260, 22 * len(items) + 60), margin={"t": 40, "l": 120},
                      xaxis_title="logit change", yaxis={"automargin": True})
    return fig
