"""How a `Result` shows itself in Jupyter: `_repr_html_` / `_repr_mimebundle_` (mixed into
`interp.runs.results.Result`) and its one obvious table.

The HTML holds the analysis and the model, the key numbers of `summary()` as a small table
(scalars, short lists and one level of nested dicts; never a tensor's values), the main
figure, and how to open the run in the explorer (`steerlens app --runs DIR` once saved).
The figure is interactive plotly HTML, or a static PNG when plotly's default renderer asks
for one (`plotly.io.renderers.default` containing "png", e.g. PLOTLY_RENDERER=
"plotly_mimetype+png"), which is what an executed notebook needs for GitHub to show it.
"""

from __future__ import annotations

import base64
import html
import json
import numbers
from pathlib import Path
from typing import Any

import pandas as pd

class CallableTable(pd.DataFrame):
    """A DataFrame that returns itself when called: where a result has a `table` field,
    `result.table()` gives it, as `Result.table()` does for every other result."""

    @property
    def _constructor(self):
        return pd.DataFrame  # operations on it give plain DataFrames

    def __call__(self) -> pd.DataFrame:
        return self


MAX_ROWS = 14
"""Summary rows shown; the rest is in `result.summary()`."""
MAX_LIST = 8
"""Lists longer than this are shown as their length."""


def summary_rows(summary: dict, limit: int = MAX_ROWS) -> list[tuple[str, str]]:
    """(key, value text) for the scalar and short entries of `summary`, nested dicts flattened
    one level (`ppl.original`); long lists and tables are left to `summary()`."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                text = _short(inner)
                if text is not None:
                    rows.append((f"{key}.{sub}", text))
        else:
            text = _short(value)
            if text is not None:
                rows.append((str(key), text))
    return rows[:limit]


def _short(value: Any) -> str | None:
    """A short text for a summary value, None when it is too long to show."""
    if value is None:
        return None  # not run, not set: nothing to show
    if isinstance(value, (bool, str)):
        text = str(value)
        return text if len(text) <= 120 else text[:117] + "..."
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) <= MAX_LIST and all(v is None or isinstance(v, (numbers.Real, str)) for v in value):
            return "[" + ", ".join(_short(v) or "" for v in value) + "]"
        return f"[{len(value)} entries]"
    return None


def main_figure(result) -> tuple[str, Any] | None:
    """(name, figure) of the result's main figure: `main_figure_name` if set, else the first."""
    figures = result.figures()
    if not figures:
        return None
    name = getattr(result, "main_figure_name", None)
    name = name if name in figures else next(iter(figures))
    return name, figures[name]


def static_figures() -> bool:
    """True when plotly's default renderer makes PNGs (then figures embed as images)."""
    try:
        import plotly.io as pio
    except ImportError:
        return False
    return "png" in str(pio.renderers.default)


def figure_html(fig) -> str:
    """The figure as an <img> (static mode) or as interactive plotly HTML."""
    from .figstyle import layers_top_down

    layers_top_down(fig)
    if static_figures():
        png = base64.b64encode(fig.to_image(format="png", width=800, height=450)).decode("ascii")
        return f'<img class="steerlens-figure" alt="figure" src="data:image/png;base64,{png}"/>'
    return fig.to_html(full_html=False, include_plotlyjs="cdn", default_width="100%", default_height="450px")


def explorer_hint(result) -> str:
    """How to open the run in the explorer: its folder's parent once saved, else how to save."""
    saved = getattr(result, "_run_dir", None)
    if saved is not None:
        return (f"saved in <code>{html.escape(str(saved))}</code>; explore it with "
                f"<code>steerlens app --runs {html.escape(str(Path(saved).parent))}</code>")
    return (f"not saved: <code>result.save(\"runs/{html.escape(result.analysis)}\")</code>, then "
            "<code>steerlens app --runs runs</code> opens it in the explorer")


def model_name(result) -> str:
    model = result.meta.model if isinstance(result.meta.model, dict) else {}
    name = model.get("spec") or model.get("name") or "model not recorded"
    family = model.get("family")
    return f"{name} ({family})" if family and family not in str(name) else str(name)


def result_html(result) -> str:
    """The whole HTML view of a result (see the module doc)."""
    try:
        rows = summary_rows(result.summary())
    except Exception as err:  # a view must not fail where the result itself is fine
        rows = [("summary", f"unavailable ({type(err).__name__}: {err})")]
    table = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                    f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
    figure = main_figure(result)
    others = [name for name in (result.figures() if figure else {}) if name != figure[0]] if figure else []
    parts = [
        f"<div class='steerlens-result'><h4 style='margin:0.2em 0'>{html.escape(result.analysis)} · "
        f"{html.escape(type(result).__name__)}</h4>",
        f"<p style='margin:0.2em 0'>model: <b>{html.escape(model_name(result))}</b></p>",
        f"<table class='steerlens-summary'><thead><tr><th style='text-align:left'>summary</th><th></th></tr>"
        f"</thead><tbody>{table}</tbody></table>",
    ]
    if figure is not None:
        parts.append(f"<p style='margin:0.4em 0 0 0'>figure <code>{html.escape(figure[0])}</code></p>")
        parts.append(figure_html(figure[1]))
        if others:
            parts.append("<p style='margin:0.2em 0'>more figures: <code>result.figures()</code> → "
                         + ", ".join(f"<code>{html.escape(n)}</code>" for n in others) + "</p>")
    stages = getattr(result, "stages", None)
    if stages:
        parts.append("<p style='margin:0.2em 0'>stages: " + ", ".join(
            f"<code>result.stages[{json.dumps(n)}]</code> ({html.escape(type(r).__name__)})"
            for n, r in stages.items()) + "</p>")
    parts.append(f"<p style='margin:0.2em 0'>table: <code>result.table()</code>; "
                 f"{explorer_hint(result)}</p></div>")
    return "\n".join(parts)


def result_text(result) -> str:
    """The plain-text view: the analysis, the model and the summary rows (no tensor values)."""
    try:
        rows = summary_rows(result.summary())
    except Exception as err:
        rows = [("summary", f"unavailable ({type(err).__name__})")]
    lines = [f"<{type(result).__name__}: {result.analysis} on {model_name(result)}>"]
    lines += [f"  {k}: {v}" for k, v in rows]
    return "\n".join(lines)


def default_table(result) -> pd.DataFrame:
    """The result's one obvious table: what its class names in `main_table` (a field, a method
    or a summary entry; rows as dicts become a DataFrame), else its first DataFrame field,
    else its summary rows."""
    from .fields import data_fields

    name = getattr(result, "main_table", None)
    if name:
        value = getattr(result, name) if hasattr(result, name) else result.summary()[name]
        value = value() if callable(value) else value
        return value if isinstance(value, pd.DataFrame) else pd.DataFrame(value)
    for f in data_fields(type(result)):
        value = getattr(result, f.name)
        if isinstance(value, pd.DataFrame):
            return value
    return pd.DataFrame(summary_rows(result.summary(), limit=10_000), columns=["key", "value"])


class Displayed:
    """What `Result` gets from this module: its Jupyter views and `table()`."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "table" and isinstance(value, pd.DataFrame) and not isinstance(value, CallableTable):
            value = CallableTable(value)  # a `table` field: `result.table()` still gives the table
        super().__setattr__(name, value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `table()`; not on the base class, where a dataclass would read it as the default of a
        # subclass's `table` field (those hold their table and are made callable above)
        concrete = "analysis" in cls.__dict__  # an analysis' result, not the base `Result`
        if concrete and not any("table" in getattr(c, "__annotations__", {}) for c in cls.__mro__):
            cls.table = _table

    def _repr_html_(self) -> str:
        """Jupyter: analysis, model, key numbers, main figure, how to open it in the explorer."""
        return result_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        """HTML and a short text view (never a tensor's values) for Jupyter's display."""
        return {"text/plain": result_text(self), "text/html": result_html(self)}


def _table(self) -> pd.DataFrame:
    """The result's one obvious table (see `interp.runs.display.default_table`)."""
    return default_table(self)
