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
    assert not problems(at)
    options = at.selectbox(key="compare:diff").options
    assert "tensor head_attr" not in options and "figure head_heatmap" in options  # [2, ...] vs [3, ...]: left out
    (line,) = [c.value for c in at.caption if "shapes differ" in c.value]
    assert int(line.split()[0]) >= 1 and line.endswith("left out because their shapes differ.")


def test_compare_puts_both_heatmaps_on_one_colour_scale_and_names_options_alike():
    import plotly.graph_objects as go

    from app.compare import compare_table, option_label, shared_scale

    a = go.Figure(go.Heatmap(z=[[0.0, 1.0], [2.0, 3.0]]))
    b = go.Figure(go.Heatmap(z=[[-5.0, 1.0], [2.0, 4.0]]))
    left, right = shared_scale(a, b)
    assert (left.data[0].zmin, left.data[0].zmax) == (right.data[0].zmin, right.data[0].zmax) == (-5.0, 5.0)
    positive, _ = shared_scale(go.Figure(go.Heatmap(z=[[1.0, 2.0]])), go.Figure(go.Heatmap(z=[[3.0, 6.0]])))
    assert (positive.data[0].zmin, positive.data[0].zmax) == (1.0, 6.0)  # no zero inside: the range of both
    assert a.data[0].zmin is None  # the saved figures are left alone
    assert option_label(("tensor", "tensors/resid")) == "tensor resid" == option_label(("tensor", "resid"))
    table = compare_table({"site": "resid", "n": 2, "mode": "x"}, {"site": "mlp", "n": 5, "mode": "x"}, "A", "B")
    assert table["B - A"].tolist() == ["differs", "+3", "same"]


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
    import ast
    import json
    from pathlib import Path

    import app

    def draws(path: Path) -> bool:  # calls plotly_chart (docstrings that name it do not count)
        return any(isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "plotly_chart"
                   for n in ast.walk(ast.parse(path.read_text())))

    callers = sorted(p.name for p in Path(app.__file__).parent.glob("*.py") if draws(p))
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


# ---- 4. a click on a heatmap cell picks that layer / head --------------------------------------------
def _click(at: AppTest, chart_key: str, row: int, column: int) -> AppTest:
    """What the browser sends when the marker over cell (row, column) is clicked (`app.cellpick`)."""
    at.session_state[chart_key] = {"selection": {"points": [{"curve_number": 1, "customdata": [row, column, 0.5]}],
                                                 "point_indices": [0], "box": [], "lasso": []}}
    return at.run()


def test_selected_cell_maps_the_selection_event_to_row_and_column():
    from app.cellpick import selected_cell

    assert selected_cell({"selection": {"points": [{"customdata": [3, 1, -0.2], "x": "H1", "y": "L3"}]}}) == (3, 1)
    assert selected_cell({"selection": {"points": [{"x": 1, "y": 2}]}}) is None  # another trace's point
    assert selected_cell({"selection": {"points": [{"customdata": [0, 0, 1]}, {"customdata": [2, 4, 1]}]}}) == (2, 4)
    assert selected_cell({"selection": {"points": []}}) is None and selected_cell(None) is None


def test_clickable_cells_put_one_marker_with_the_cells_hover_over_every_cell():
    from app.cellpick import OVERLAY, clickable_cells
    from app.generic import heatmap

    fig = clickable_cells(heatmap([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], x=["H0", "H1", "H2"], y=["L0", "L1"],
                                  x_title="head", y_title="layer"))
    cells = next(t for t in fig.data if t.name == OVERLAY)
    assert [list(c) for c in cells.customdata] == [[r, c, 3.0 * r + c + 1] for r in range(2) for c in range(3)]
    assert list(cells.x) == ["H0", "H1", "H2"] * 2 and list(cells.y) == ["L0"] * 3 + ["L1"] * 3
    assert "%{customdata[2]:.4g}" in cells.hovertemplate and "%{z" not in cells.hovertemplate
    assert fig.data[0].hoverinfo == "skip" and fig.layout.hoverdistance == -1  # a click anywhere in a cell counts


def test_click_markers_never_overlap_the_next_row_only_the_picked_one_is_large():
    """Plotly's hover distance is 0 anywhere inside a marker: an 18 px marker on a routing map's
    ~8.5 px rows (30 layers, half-width column) overlapped the next row's, which won the click."""
    from app.cellpick import OVERLAY, clickable_cells
    from app.generic import heatmap

    fig = clickable_cells(heatmap([[0.0] * 8 for _ in range(30)], x=[f"H{h}" for h in range(8)],
                                  y=[f"L{i}" for i in range(30)]))
    cells = next(t for t in fig.data if t.name == OVERLAY)
    assert cells.marker.size <= 4 and cells.selected.marker.size >= 12  # the outline of the pick stays visible


def test_clicking_a_dla_head_picks_its_layer_and_pattern_head_once(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    at = _click(at, "dla-1:heads", 1, 2)
    assert not problems(at) and not at.warning
    assert at.selectbox(key="dla-1:layer").value == 1 and at.query_params["dla-1:layer"] in ("1", ["1"])
    assert at.selectbox(key="dla-1:pattern_head").value == (1, 2)
    at.selectbox(key="dla-1:layer").set_value(0).run()  # a later choice is not undone by the old click
    assert at.selectbox(key="dla-1:layer").value == 0


@pytest.mark.parametrize(("run", "chart_key", "pickers"), [
    ("sinks-1", "sinks-1:map", {"sinks-1:layer": 1, "sinks-1:head": 3}),
    ("lens-1", "lens-1:lens", {"lens-1:layer": 1, "lens-1:column": 3}),
])
def test_clicking_a_cell_sets_the_pickers(monkeypatch, run, chart_key, pickers):
    at = _click(open_app(monkeypatch, saved_runs(), run=run), chart_key, 1, 3)
    assert not problems(at) and not at.warning
    assert {key: at.selectbox(key=key).value for key in pickers} == pickers


# ---- 5. links between pages: massive dimension -> vector coordinate, vector -> playground --------------
def test_link_targets_name_the_page_and_its_pickers():
    from app.links import playground_target, url, vector_coordinate_target

    assert vector_coordinate_target("v.safetensors", 7, 2) == {"run": "v.safetensors", "v.safetensors:dim": "7",
                                                               "v.safetensors:layer": "2"}
    assert playground_target("tour/v.safetensors") == {"view": "playground", "vector": "tour/v.safetensors"}
    assert url(playground_target("a b")) == "?view=playground&vector=a+b"


def test_a_massive_dimension_opens_the_vector_with_that_coordinate_highlighted(monkeypatch):
    from app.figdata import decode
    from test_app_fixes import spec

    at = open_app(monkeypatch, saved_runs(), run="massive-1")
    dim = at.selectbox(key="massive-1:dim").value
    layer = at.selectbox(key="massive-1:layer").value
    (link,) = [b for b in at.button if b.key == "massive-1:to:v.safetensors"]
    assert link.label == f"dimension {dim} in v.safetensors"
    link.click().run()
    assert not problems(at) and not at.warning
    assert at.title[0].value == "steering vector: v.safetensors"
    assert at.number_input(key="v.safetensors:dim").value == dim
    assert at.query_params["v.safetensors:dim"] in (str(dim), [str(dim)])
    assert at.selectbox(key="v.safetensors:layer").value == layer  # the vector has layers 0, 1, 2
    bars = spec(at, "v.safetensors:coords")["data"][0]
    colours = decode(bars["marker"]["color"])
    assert colours[dim] == "#d62728" and colours.count("#d62728") == 1
    assert any(f"coordinate {dim}:" in c.value for c in at.caption)


def test_a_vector_opens_the_playground_with_it_chosen(monkeypatch, tiny_llama_folder):
    at = open_app(monkeypatch, saved_runs(), run="v.safetensors")
    at.button(key="v.safetensors:playground").click().run()
    assert not problems(at) and not at.warning
    assert at.sidebar.radio(key="view").value == "playground"
    assert at.query_params["vector"] in ("v.safetensors", ["v.safetensors"])
    assert at.text_input(key="pg:spec").value == "tiny-llama"  # the vector's model, ready to load
    at.text_input(key="pg:spec").set_value(str(tiny_llama_folder))
    at.button(key="pg:load").click().run()
    assert not problems(at)
    box = at.selectbox(key="pg:vector:runs")
    assert len(box.options) > 1 and box.options[box.index] == "file v.safetensors"


# ---- 6. the "misleading" fixes, pinned (were checked by screenshots only) ------------------------------
def _order(at: AppTest) -> list[str]:
    """Widget keys and chart ids of the main area, in the order the page draws them."""
    out = []

    def walk(node) -> None:
        for index in sorted(getattr(node, "children", None) or {}):
            child = node.children[index]
            proto = getattr(child, "proto", None)
            out.append(getattr(child, "key", None) or getattr(proto, "id", "") or type(child).__name__)
            walk(child)

    walk(at.main)
    return out


def _at(order: list[str], needle: str) -> int:
    return next(i for i, name in enumerate(order) if needle in name)


def test_lens_pickers_sit_under_the_grid_and_the_rank_axis_starts_at_1(monkeypatch):
    import math

    from app.figdata import decode
    from test_app_fixes import spec

    at = open_app(monkeypatch, saved_runs(), run="lens-1")
    order = _order(at)
    grid = _at(order, "lens-1:lens")
    assert grid < order.index("lens-1:layer") and grid < order.index("lens-1:column")
    axis = spec(at, "lens-1:rank")["layout"]["yaxis"]
    assert axis["type"] == "log" and axis["tickvals"][0] == 1 and min(axis["tickvals"]) == 1
    assert 10 ** min(axis["range"]) > 0.5 and axis["range"][0] > axis["range"][1]  # rank 1 at the top, nothing below
    ranks = [y for trace in spec(at, "lens-1:rank")["data"] for y in decode(trace["y"])]
    assert min(ranks) >= 1 and math.log10(max(ranks)) < max(axis["range"])  # every rank inside the axis


def test_dla_layer_picker_sits_between_the_head_map_and_the_chart_it_drives(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    order = _order(at)
    assert _at(order, "dla-1:heads") < order.index("dla-1:layer") < _at(order, "dla-1:layer_bars")


def test_massive_bar_labels_are_readable_and_ranks_count_from_1(monkeypatch):
    from test_app_fixes import spec

    at = open_app(monkeypatch, saved_runs(), run="massive-1")
    bars = [t for t in spec(at, "massive-1:bars")["data"] if t["type"] == "bar" and t.get("text")]
    assert bars and all(t["textfont"]["size"] >= 11 for t in bars)
    assert spec(at, "massive-1:bars")["layout"]["uniformtext"] == {"minsize": 10, "mode": "show"}  # never shrunk
    (top,) = [d.value for d in at.dataframe if {"rank", "dim", "token"} <= set(d.value.columns)]
    assert top["rank"].min() == 1
    at = open_app(monkeypatch, saved_runs(), run="lens-1")
    (ranked,) = [d.value for d in at.dataframe if "rank" in d.value.columns]
    assert ranked["rank"].tolist()[0] == 1


@pytest.mark.parametrize("run", ["dla-1", "sinks-1", "massive-1", "v.safetensors"])
def test_header_metrics_have_human_labels_and_values_that_fit(monkeypatch, run):
    from app.runs import SavedRun

    at = open_app(monkeypatch, saved_runs(), run=run)
    assert at.metric
    for metric in at.metric:
        assert "_" not in metric.label, metric.label  # not a raw field name
        assert len(metric.value) <= 12, (metric.label, metric.value)  # four columns of a 1000 px window
    if run != "v.safetensors":
        from app.labels import metric as label

        summary = SavedRun(saved_runs() / run).summary  # every header metric is the labelled form of a field
        expected = {label(k, v) for k, v in summary.items() if isinstance(v, (int, float))}
        assert {(m.label, m.value) for m in at.metric if m.label} <= {(e.label, e.value) for e in expected}
        assert all(e.value.endswith("%") for e in expected if e.label.startswith("Sink rate"))
        (css,) = [h.proto.body for h in at.get("html") if "stMetricValue" in h.proto.body]
        assert "text-overflow: clip" in css and "overflow: visible" in css
