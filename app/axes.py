"""Log axes with readable ticks: one labelled tick per power of ten (1, 10, 100, 1k, 10k).

Plotly labels a log axis spanning a few decades with its minor digits ("2, 5, 2, 10k, 2"),
which reads as noise. `readable_log_axes` gives every log-scaled y axis of a figure that has
no ticks of its own one tick per decade of the data it carries (and 2x, 5x ticks when the data
spans two decades or less), labelled in SI style, and an axis range from the first tick to the
last, so that every tick is drawn (data between 0.2 and 0.9 would otherwise show no tick).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from .figdata import decode

_SI = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]


def decade_label(value: float) -> str:
    """10**d as text: 1, 10, 100, 1k, 10k, 100k, 1M, ...; 0.1, 0.01 below 1."""
    for size, suffix in _SI:
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def decades(values) -> list[float]:
    """Powers of ten covering the positive finite `values` (from the one at or below the least to
    the one at or above the greatest); [] when there are none."""
    positive = [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    if not positive:
        return []
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    return [10.0 ** d for d in range(low, max(high, low + 1) + 1)]


def readable_log_axes(fig: go.Figure) -> go.Figure:
    """Set decade ticks (`decades`, `decade_label`) on each log y axis without tickvals (in place)."""
    for name in [k for k in fig.layout if k.startswith("yaxis")]:
        axis = fig.layout[name]
        if axis.type != "log" or axis.tickvals is not None:
            continue
        ref = "y" + name.removeprefix("yaxis")
        values = []
        for trace in fig.data:
            if (getattr(trace, "yaxis", None) or "y") == ref and getattr(trace, "y", None) is not None:
                data = decode(trace.y)
                values += list(data) if hasattr(data, "__iter__") else []
        ticks = decades(values)
        if ticks:
            if len(ticks) <= 3:  # two decades or less: 2 and 5 between them too (0.1, 0.2, 0.5, 1)
                ticks = sorted(ticks + [t * m for t in ticks[:-1] for m in (2, 5)])
            axis.update(tickvals=ticks, ticktext=[decade_label(t) for t in ticks])
            if axis.range is None:  # from the first tick to the last: every tick drawn, none outside
                axis.update(range=[math.log10(ticks[0]), math.log10(ticks[-1])], autorange=False)
    return fig
