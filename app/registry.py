"""Analysis pages: one small module per analysis registers a renderer for its runs.

A page module is a file ``app/pages_<name>.py`` that decorates a function with
``@page("analysis-name", ...)``. The function receives the opened `SavedRun`, draws its
controls (layer and head pickers, prompt filters, ...) and returns a `Shown` naming the
figures and tables it already drew; the generic view then draws everything else of the
run (remaining figures, tables with filters and CSV download, tensors, fields), so a page
only adds what is specific to its analysis and a run of an unknown analysis still opens.

    from app.registry import Shown, page

    @page("sinks", result="interp.sinks.measure")
    def render(run, result) -> Shown:      # result: the run loaded as interp.sinks.measure.SinkResult
        ...
        return Shown(figures={"sink_rate"})

With ``result=`` (the module defining the analysis' `Result` class) the page also gets the
typed result (`interp.runs.results.load_run`), so it can call the analysis' own methods and
figure functions; without it the page gets the `SavedRun` only.

Steering-vector files listed next to the runs are the one exception: their page (analysis
"steering-vector") is called as ``render(entry, vector)`` with the loaded `SteeringVector`
and draws the whole page.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

@dataclass(frozen=True)
class Page:
    render: Callable
    result: str | None = None  # module that defines the analysis' Result class


PAGES: dict[str, Page] = {}
BROKEN_PAGES: dict[str, str] = {}  # module -> import error (the generic view is used instead)


@dataclass
class Shown:
    """Names of the run's figures and tables a page has drawn itself."""

    figures: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)


def page(*analyses: str, result: str | None = None) -> Callable[[Callable], Callable]:
    """Register the decorated function as the page of each named analysis."""

    def register(render: Callable) -> Callable:
        for name in analyses:
            PAGES[name] = Page(render, result)
        return render

    return register


def discover() -> dict[str, Page]:
    """Import every ``app/pages_*.py`` module once; return the registry."""
    import app

    for info in pkgutil.iter_modules(app.__path__):
        if info.name.startswith("pages_") and info.name not in BROKEN_PAGES:
            try:
                importlib.import_module(f"app.{info.name}")
            except Exception as e:  # one bad page must not take the explorer down
                BROKEN_PAGES[info.name] = f"{type(e).__name__}: {e}"
    return PAGES


def page_for(analysis: str | None) -> Page | None:
    return discover().get(analysis) if analysis else None
