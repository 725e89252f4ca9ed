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


# ---- 2. the compare view's difference heatmap ---------------------------------------------------------
@pytest.fixture(scope="module")
def dla_runs(tmp_path_factory):
    """dla-1 (target a, contrast b), dla-swap (b - a: the same attribution negated) and dla-3p (3 prompts)."""
    import shutil

    from test_app_runs import PROMPTS
    from tiny import tiny_model

    from interp.dla.attribution import dla

    root = tmp_path_factory.mktemp("compare")
    shutil.copytree(saved_runs() / "dla-1", root / "dla-1")
    model = tiny_model("llama")
    dla(model, PROMPTS, target="b", contrast="a").save(root / "dla-swap")
    dla(model, [*PROMPTS, "One more prompt"], target="a", contrast="b").save(root / "dla-3p")
    return root


def _compare(monkeypatch, root, a: str, b: str) -> AppTest:
    at = open_app(monkeypatch, root)
    at.toggle(key="compare:on").set_value(True).run()
    at.selectbox(key="compare:a").set_value(a).run()
    return at.selectbox(key="compare:b").set_value(b).run()


def test_compare_draws_b_minus_a_on_a_symmetric_scale_and_refuses_other_shapes(monkeypatch, dla_runs):
    import torch

    from app.figdata import decode
    from interp.runs.results import load_run
    from test_app_fixes import spec

    at = _compare(monkeypatch, dla_runs, "dla-1", "dla-swap")
    at.selectbox(key="compare:diff").set_value(("figure", "head_heatmap")).run()  # a saved heatmap figure
    figure = spec(at, "compare:diff:plot")
    saved = load_run(dla_runs / "dla-1").figures()["head_heatmap"].data[0]
    assert torch.allclose(torch.tensor(decode(figure["data"][0]["z"])), -2 * torch.tensor(decode(saved.z)), atol=1e-5)
    assert figure["data"][0]["x"] == list(decode(saved.x))  # the saved axis labels are kept
    at.selectbox(key="compare:diff").set_value(("tensor", "head_attr")).run()
    assert not problems(at)
    trace = spec(at, "compare:diff:plot")["data"][0]
    z = torch.tensor(decode(trace["z"]), dtype=torch.float64)
    a = load_run(dla_runs / "dla-1").head_attr.double().flatten(0, 1).mean(0)  # [L, H]
    assert torch.allclose(z, -2 * a, atol=1e-5)  # swapping target and contrast negates every head
    assert trace["zmid"] == 0 and trace["zmin"] == -trace["zmax"] == pytest.approx(-float(z.abs().max()))
    assert trace["colorscale"][0][1] != trace["colorscale"][-1][1]  # diverging: two ends of different colours
    at = _compare(monkeypatch, dla_runs, "dla-1", "dla-3p")
    at.selectbox(key="compare:diff").set_value(("tensor", "head_attr")).run()
    assert not problems(at)
    assert not [c for c in at.get("plotly_chart") if "compare:diff:plot" in c.proto.id]
    assert any("shapes differ" in i.value and "[2," in i.value and "[3," in i.value for i in at.info)


# ---- 3. PNG and SVG of every figure ---------------------------------------------------------------------
def test_figure_image_writes_png_and_svg_through_kaleido():
    import plotly.graph_objects as go

    from app.export import export_problem, figure_image

    if export_problem():
        pytest.skip(export_problem())
    fig = go.Figure(go.Heatmap(z=[[1.0, -1.0], [0.5, 0.0]])).update_layout(title="probe title", height=300)
    assert figure_image(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    svg = figure_image(fig, "svg").decode()
    assert svg.startswith("<svg") and "probe title" in svg
    with pytest.raises(ValueError, match="png, svg"):
        figure_image(fig, "gif")


def test_every_chart_goes_through_one_helper_that_offers_png_and_svg(monkeypatch):
    import json
    from pathlib import Path

    import app

    callers = [p.name for p in Path(app.__file__).parent.glob("*.py") if "st.plotly_chart(" in p.read_text()]
    assert callers == ["generic.py"]  # every page draws through generic.chart
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    at.toggle(key="dla-1:heads:data").set_value(True).run()
    assert not problems(at)
    buttons = {b.proto.label: b for b in at.get("download_button") if b.proto.id and "dla-1:heads:" in b.proto.id}
    assert {"Download dla-1-heads.png", "Download dla-1-heads.svg", "Download dla-1-heads.html (interactive "
            "figure)"} <= set(buttons)
    from app.export import export_problem

    assert buttons["Download dla-1-heads.svg"].proto.disabled == (export_problem() is not None)
    charts = list(at.get("plotly_chart"))
    assert charts and all(json.loads(c.proto.config)["toImageButtonOptions"]["scale"] == 2 for c in charts)
