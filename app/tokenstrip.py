"""Tokens coloured by a value (as circuitsvis' colored_tokens): one value per token of a text.

`token_strip_html(tokens, values, ...)` lays the tokens out as running text (whitespace made
visible, `app.tokens.visible`), each on a background whose colour encodes its value: white to
blue for values >= 0 (`low` .. `high`), or red-white-blue symmetric about 0 when `diverging`.
The hover (title) of each token gives its position, the value and an optional note. NaN values
(a token without a value) stay white with "n/a". The legend line names the scale's two ends.
"""

from __future__ import annotations

import html
import math

from .tokens import visible

BLUE, RED = (33, 102, 172), (178, 24, 43)


def colour(value: float, low: float, high: float, diverging: bool) -> str:
    """CSS rgb() of `value` on the scale (see module doc); white for NaN."""
    if value is None or not math.isfinite(value):
        return "rgb(255,255,255)"
    if diverging:
        top = max(abs(low), abs(high)) or 1.0
        share, end = min(abs(value) / top, 1.0), BLUE if value >= 0 else RED
    else:
        span = (high - low) or 1.0
        share, end = min(max((value - low) / span, 0.0), 1.0), BLUE
    r, g, b = (round(255 + share * (c - 255)) for c in end)
    return f"rgb({r},{g},{b})"


def token_strip_html(tokens: list[str], values: list[float], label: str, fmt: str = ".3g",
                     notes: list[str] | None = None, diverging: bool = False, low: float | None = None,
                     high: float | None = None) -> str:
    """HTML of the coloured tokens and a one-line legend; `label` names the value."""
    if len(tokens) != len(values):
        raise ValueError(f"{len(tokens)} tokens but {len(values)} values")
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = (min(finite, default=0.0) if not diverging else -max((abs(v) for v in finite), default=1.0)) \
        if low is None else low
    high = max(finite, default=1.0) if high is None else high
    spans = []
    for i, (token, value) in enumerate(zip(tokens, values)):
        shown = "n/a" if value is None or not math.isfinite(value) else format(value, fmt)
        note = f" · {notes[i]}" if notes else ""
        back = colour(value, low, high, diverging)
        dark = value is not None and math.isfinite(value) and abs(value - (0 if diverging else low)) > 0.6 * (
            (max(abs(low), abs(high)) if diverging else (high - low)) or 1)
        spans.append(f"<span class='tok' title='{html.escape(f'{i}: {visible(token)} · {label} {shown}{note}', quote=True)}' "
                     f"data-value='{shown}' style='background:{back};color:{'white' if dark else 'black'};"
                     f"padding:1px 2px;margin:1px;border-radius:3px;display:inline-block;font-family:monospace'>"
                     f"{html.escape(visible(token))}</span>")
    legend = (f"<div style='font-size:0.8em;color:#555;margin-top:4px'>colour: {html.escape(label)}, "
              f"{'red' if diverging else 'white'} = {format(low, fmt)}, {'white = 0, ' if diverging else ''}"
              f"blue = {format(high, fmt)}; hover a token for its value</div>")
    return f"<div class='token-strip' style='line-height:1.9'>{''.join(spans)}</div>{legend}"


def token_strip(tokens: list[str], values: list[float], label: str, **kwargs) -> None:
    """Draw `token_strip_html` in the page."""
    import streamlit as st

    st.html(token_strip_html(tokens, values, label, **kwargs))
