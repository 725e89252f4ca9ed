"""The numbers behind a plotly figure, decoded, as a table with named columns.

Figures saved by plotly 6+ store arrays as typed-array specs (``{"dtype": "f8", "bdata":
"<base64>", "shape": "2, 3"}``); `decode` turns those back into lists. `figure_table` gives
one row per point (per cell for heatmaps), the columns named after the axes' titles
(``layer``, ``head``) and the colour bar's title for heatmap values (``value`` when untitled),
so that a CSV of the DLA head map reads ``layer, head, logit``. Axis labels such as ``L3`` /
``H2`` become the integers 3 / 2 when every label of the axis has the same one-letter prefix.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_DTYPES = {"f8": "<f8", "f4": "<f4", "i1": "i1", "u1": "u1", "i2": "<i2", "u2": "<u2", "i4": "<i4",
           "u4": "<u4", "i8": "<i8", "u8": "<u8", "u1c": "u1"}
_LABEL = re.compile(r"^([A-Za-z])(-?\d+)$")


def decode(value):
    """A plotly array as plain Python lists (typed-array specs and numpy arrays decoded)."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=_DTYPES.get(value["dtype"], value["dtype"]))
        shape = value.get("shape")
        if shape:
            array = array.reshape([int(s) for s in str(shape).split(",")])
        return array.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [decode(v) for v in value]
    return value


def _axis_title(fig: go.Figure, trace, letter: str, default: str) -> str:
    ref = getattr(trace, f"{letter}axis", None) or letter  # "x", "x2", ...
    axis = fig.layout[f"{letter}axis{ref[1:]}"] if ref[1:] else fig.layout[f"{letter}axis"]
    text = axis.title.text if axis is not None and axis.title is not None else None
    return str(text) if text else default


def _labels(values: list) -> list:
    """["L0", "L1"] -> [0, 1] when every label shares one letter prefix; else unchanged."""
    matches = [_LABEL.match(v) if isinstance(v, str) else None for v in values]
    if values and all(matches) and len({m.group(1) for m in matches}) == 1:
        return [int(m.group(2)) for m in matches]
    return values


def _unique(names: list[str]) -> list[str]:
    out = []
    for name in names:
        candidate, n = name, 2
        while candidate in out:
            candidate, n = f"{name} ({n})", n + 1
        out.append(candidate)
    return out


def _heatmap_rows(fig: go.Figure, trace) -> pd.DataFrame:
    z = decode(trace.z)
    rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in (z or [])]
    width = max((len(r) for r in rows), default=0)
    xs = _labels(decode(trace.x)) if trace.x is not None else list(range(width))
    ys = _labels(decode(trace.y)) if trace.y is not None else list(range(len(rows)))
    colorbar = trace.colorbar.title.text if trace.colorbar is not None and trace.colorbar.title is not None else None
    names = _unique([_axis_title(fig, trace, "y", "row"), _axis_title(fig, trace, "x", "column"),
                     str(colorbar) if colorbar else "value"])
    text = decode(trace.text)
    records = []
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            record = {names[0]: ys[r] if r < len(ys) else r, names[1]: xs[c] if c < len(xs) else c, names[2]: v}
            if isinstance(text, list) and r < len(text) and isinstance(text[r], list) and c < len(text[r]):
                record["label"] = text[r][c]
            records.append(record)
    return pd.DataFrame(records, columns=[*names, *(["label"] if records and "label" in records[0] else [])])


def _point_rows(fig: go.Figure, trace) -> pd.DataFrame:
    ys = decode(getattr(trace, "y", None))
    xs = decode(getattr(trace, "x", None))
    if ys is None and xs is None:
        return pd.DataFrame()
    if ys is None:
        ys, xs = xs, list(range(len(xs)))
    if xs is None:
        xs = list(range(len(ys)))
    names = _unique([_axis_title(fig, trace, "x", "x"), _axis_title(fig, trace, "y", "value")])
    frame = pd.DataFrame({names[0]: _labels(list(xs))[: len(ys)], names[1]: list(ys)[: len(xs)]})
    text = decode(getattr(trace, "text", None))
    if isinstance(text, list) and len(text) == len(frame):
        frame["label"] = text
    return frame


def figure_table(fig: go.Figure) -> pd.DataFrame:
    """Every trace's decoded values in long form, columns named after the axes (see module doc);
    a ``series`` column (the trace's name) first when the figure has several traces."""
    frames = []
    for i, trace in enumerate(fig.data):
        frame = _heatmap_rows(fig, trace) if getattr(trace, "z", None) is not None else _point_rows(fig, trace)
        if len(fig.data) > 1:
            frame.insert(0, "series", getattr(trace, "name", None) or f"trace {i}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
