"""One orientation for every layer map: layer 0 at the top, as the explorer draws it.

`layers_top_down` is applied to every figure a run saves (`interp.runs.results`: the
``figures/*.html`` and the JSON that PNG exports are made from) and by the explorer to every
chart it draws (`app.generic.chart`), so saved files and the app agree.
"""

from __future__ import annotations

from typing import Any


def layers_top_down(fig: Any) -> Any:
    """Reverse the y axis (layer 0 at the top) of a plotly figure with a heatmap whose y axis is
    titled "layer..." (case-insensitive); other figures unchanged. In place; returns `fig`."""
    title = fig.layout.yaxis.title.text
    if title and str(title).lower().startswith("layer") and any(t.type == "heatmap" for t in fig.data):
        fig.update_yaxes(autorange="reversed")
    return fig
