"""Explorer views of issue 18 (second round): how-to-read notes on every page, the compare view's
difference heatmap, PNG/SVG downloads, heatmap clicks that pick a layer/head, cross-page links, and
the "misleading" fixes that screenshots used to check."""

from __future__ import annotations

import re

import pytest
from apptest import open_app, problems
from streamlit.testing.v1 import AppTest
from test_app_runs import saved_runs

from app.registry import discover

pytestmark = pytest.mark.usefixtures("one_thread")
GENERIC_VIEW_ANALYSES = {"voids_eval"}  # runs shown by the generic view only: the header shows their note


def _note_page(kind: str) -> None:
    from app.generic import how_to_read

    how_to_read(kind)


# ---- 1. a "how to read this page" note on every page kind, paper linked ---------------------------
@pytest.mark.parametrize("kind", sorted(set(discover()) | GENERIC_VIEW_ANALYSES))
def test_every_page_kind_shows_a_how_to_read_note_with_the_paper_linked(kind):
    at = AppTest.from_function(_note_page, args=(kind,)).run()
    assert not at.exception
    (note,) = at.expander
    assert note.label == "How to read this page"
    text = note.markdown[0].value
    assert re.search(r"\[[^\]]+\]\(https://[^)]+\)", text), f"{kind}: no paper link"
    words = re.sub(r"\[[^\]]+\]\([^)]+\)", "", text)
    assert 2 <= len([s for s in re.split(r"[.!?](?:\s|$)", words) if len(s.strip()) > 20]) <= 4, kind


def test_the_vector_page_and_run_headers_draw_the_note(monkeypatch):
    for run in ("v.safetensors", "dla-1"):
        at = open_app(monkeypatch, saved_runs(), run=run)
        assert not problems(at)
        assert [e.label for e in at.expander].count("How to read this page") == 1, run
