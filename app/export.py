"""A figure as a PNG or SVG file, through plotly's static export (kaleido, which drives a headless
Chrome or Chromium).

`figure_image(fig, "png" | "svg")` returns the file's bytes at the figure's own size (PNG at twice
the pixels, for print). `export_problem()` says in one line why no export can be made here (kaleido
not installed, or no Chrome/Chromium found), or None; the explorer then disables its PNG/SVG
buttons with that line as their help instead of failing when one is clicked.
"""

from __future__ import annotations

import functools

import plotly.graph_objects as go

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
DEFAULT_WIDTH = 1000  # px, for figures that leave their width to the page


@functools.lru_cache(maxsize=1)
def export_problem() -> str | None:
    """None when kaleido and a Chrome/Chromium are available, else what is missing and how to fix it."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "PNG/SVG export needs kaleido: pip install kaleido"
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception:  # another choreographer release without this method: let the export itself try
        return None
    if not found:
        return ("PNG/SVG export needs Chrome or Chromium (apt-get install chromium, or run "
                "plotly_get_chrome once)")
    return None


def figure_image(fig: go.Figure, fmt: str) -> bytes:
    """The figure as `fmt` ("png" or "svg") bytes; ValueError for another format."""
    if fmt not in FORMATS:
        raise ValueError(f"cannot export a figure as {fmt!r}: choose one of {', '.join(FORMATS)}")
    width = fig.layout.width or DEFAULT_WIDTH
    height = fig.layout.height or 500
    return fig.to_image(format=fmt, width=width, height=height, scale=2 if fmt == "png" else 1)
