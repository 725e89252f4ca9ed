"""Explorer pages in Streamlit's AppTest: run list, one page per analysis, controls, bad input."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from apptest import open_app, problems
from streamlit.testing.v1 import AppTest
from test_app_runs import FILE_NAMES, RUN_NAMES, copy_runs, saved_runs

from app.generic import filter_table



def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def chart(at: AppTest, key_part: str) -> dict:
    (spec,) = [s for k, s in charts(at).items() if key_part in k]
    return spec


def frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one table shown with these columns (tables without selection carry no key)."""
    (df,) = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    return df


def test_run_list_shows_every_run_with_an_open_button(monkeypatch):
    at = open_app(monkeypatch, saved_runs())
    assert not problems(at)
    assert at.title[0].value == "steerlens runs"
    listing = at.dataframe[0].value
    assert listing["run"].tolist() == RUN_NAMES + FILE_NAMES
    assert set(listing["status"]) == {"ok"}
    assert {b.label for b in at.button} >= set(RUN_NAMES + FILE_NAMES)


@pytest.mark.parametrize("name", RUN_NAMES + FILE_NAMES)
def test_each_run_page_renders_its_figures(monkeypatch, name):
    at = open_app(monkeypatch, saved_runs(), run=name)
    assert not problems(at)
    assert name in at.title[0].value
    specs = charts(at)
    assert specs and all(spec["data"] for spec in specs.values())
    assert at.session_state["render_seconds"] < 30  # the real budget (2 s) is measured in the e2e test


def test_open_button_opens_the_run(monkeypatch):
    at = open_app(monkeypatch, saved_runs())
    at.button(key="open:sinks-1").click().run()
    assert not problems(at)
    assert at.title[0].value == "Attention sinks: sinks-1"
    assert at.query_params["run"] == ["sinks-1"] or at.query_params["run"] == "sinks-1"


def test_dla_prompt_picker_redraws_heads_for_that_prompt(monkeypatch):
    from interp.runs.results import load_run

    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    mean = chart(at, "dla-1:heads")["data"][0]["z"]
    at.selectbox(key="dla-1:prompt").set_value(1).run()
    one = chart(at, "dla-1:heads")["data"][0]["z"]
    expected = load_run(saved_runs() / "dla-1").head_attr[1, 0].tolist()  # [L, H]
    assert torch.allclose(torch.tensor(one), torch.tensor(expected), atol=1e-6)
    assert not torch.allclose(torch.tensor(one), torch.tensor(mean))
    assert set(frame(at, "prompt", "model_value", "top_head")["prompt"]) == {1}  # the table follows the picker


@pytest.mark.parametrize("name, kind, key, values, figure", [
    ("lens-1", "selectbox", "lens-1:prompt", [1, 0], "lens-1:lens"),
    ("sinks-1", "selectbox", "sinks-1:head", [3, 2], "sinks-1:curve"),
    ("sinks-1", "radio", "sinks-1:kind", ["random"], "sinks-1:map"),
    ("voids-1", "radio", "voids-1:phase", ["response"], "voids-1:map"),
    ("massive-1", "selectbox", "massive-1:dim", ["last", "first"], "massive-1:dim_curve"),
    ("austeer-eval-1", "slider", "austeer-eval-1:units:k", [1, 2], "austeer-eval-1:units:scatter"),
    ("v.safetensors", "selectbox", "v.safetensors:layer", [0, 2], "v.safetensors:coords"),
])
def test_changing_a_control_redraws_its_figure(monkeypatch, name, kind, key, values, figure):
    at = open_app(monkeypatch, saved_runs(), run=name)
    before = chart(at, figure)
    widget = getattr(at, kind)(key=key)
    options = list(getattr(widget, "options", None) or [])
    named = {"last": options[-1], "first": options[0]} if options else {}
    value = next(v for v in (named.get(v, v) for v in values) if v != widget.value)  # not the current one
    widget.set_value(value).run()
    assert not problems(at)
    assert chart(at, figure) != before


def test_refusal_page_shows_baseline_and_steered_side_by_side(monkeypatch):
    from interp.runs.results import load_run

    responses = load_run(saved_runs() / "refusal-1").responses
    at = open_app(monkeypatch, saved_runs(), run="refusal-1")
    assert not problems(at)
    at.radio(key="refusal-1:set").set_value("harmful").run()
    assert not problems(at)
    ablated = responses[responses["condition"] == "ablate"]
    shown = [c.value for c in at.code]
    assert len(shown) == 2 * len(ablated) and set(ablated["response"]) <= set(shown)
    at.multiselect(key="refusal-1:labels").set_value([]).run()
    assert not at.code  # the label filter hides every pair


def test_data_switch_shows_the_numbers_behind_a_figure(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    z = chart(at, "dla-1:heads")["data"][0]["z"]  # [L, H]
    at.toggle(key="dla-1:heads:data").set_value(True).run()
    table = frame(at, "layer", "head", "logit")  # decoded numbers, columns named after the axes
    assert len(table) == 3 * 4
    assert table.set_index(["layer", "head"]).loc[(1, 2), "logit"] == pytest.approx(z[1][2])


def test_unknown_analysis_gets_the_generic_view(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="probe-1")
    assert not problems(at)
    assert any("No page for analysis" in c.value for c in at.caption)
    assert [h.value for h in at.header] == ["Figures", "Tables", "Tensors"]
    assert frame(at, "tensor", "shape", "dtype")["tensor"].tolist() == ["scores"]
    assert not [c for c in at.get("plotly_chart") if ":tensor:" in c.proto.id]  # plotted on request only
    at.selectbox(key="probe-1:tensor").set_value("scores").run()
    at.selectbox(key="probe-1:tensor:scores:axis0").set_value(2).run()
    assert not problems(at)
    assert len(chart(at, "probe-1:tensor:scores:plot")["data"][0]["z"]) == 4  # [H, T] at layer 2


def test_table_filter_counts_rows_for_the_csv(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="probe-1")
    at.text_input(key="probe-1:table:per_layer:text").set_value("b").run()
    (button,) = [b for b in at.get("download_button") if "per_layer" in b.proto.label]
    assert "(1 of 3 rows)" in button.proto.label
    at.selectbox(key="probe-1:table:per_layer:col").set_value("kind").run()
    at.multiselect(key="probe-1:table:per_layer:values").set_value(["a"]).run()
    (button,) = [b for b in at.get("download_button") if "per_layer" in b.proto.label]
    assert "(0 of 3 rows)" in button.proto.label


def test_filter_table_matches_text_and_values():
    df = pd.DataFrame({"token": ["Paris", "London", "paris"], "layer": [1, 2, 1], "x": [0.1, 0.2, 0.3]})
    assert filter_table(df, "PAR")["token"].tolist() == ["Paris", "paris"]
    assert filter_table(df, "", "layer", [2])["token"].tolist() == ["London"]
    assert filter_table(df, "par", "layer", [2]).empty


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_runs_folder_gets_a_friendly_page(monkeypatch, tmp_path, make):
    root = tmp_path / "runs"
    if make == "empty":
        root.mkdir()
    at = open_app(monkeypatch, root)
    assert not problems(at)
    assert at.info and ("no runs folder" in at.info[0].value.lower() or "no runs in" in at.info[0].value.lower())


def test_corrupt_run_is_marked_broken_and_the_others_still_open(monkeypatch, tmp_path):
    root = copy_runs(tmp_path / "runs")
    (root / "dla-1" / "manifest.json").write_text("{not json")
    (root / "lens-1" / "figures" / "lens_heatmap.json").write_text("{broken")  # not visible to the listing
    at = open_app(monkeypatch, root)
    assert "⚠ dla-1" in {b.label for b in at.button}
    assert at.dataframe[0].value.set_index("run").loc["dla-1", "status"].startswith("broken")
    at = open_app(monkeypatch, root, run="dla-1")
    assert not at.exception and "cannot be opened" in at.error[0].value
    at = open_app(monkeypatch, root, run="lens-1")  # its page redraws the map; the broken file is not needed
    assert not at.exception
    at = open_app(monkeypatch, root, run="sinks-1")
    assert not problems(at) and charts(at)


def test_corrupt_figure_file_shows_one_error_and_the_rest_renders(monkeypatch, tmp_path):
    root = copy_runs(tmp_path / "runs")
    (root / "probe-1" / "figures" / "scores.json").write_text("{broken")
    at = open_app(monkeypatch, root, run="probe-1")
    assert not at.exception
    assert len(at.error) == 1 and "figure scores" in at.error[0].value
    assert at.header[-1].value == "Tensors"


@pytest.mark.parametrize("query", ["../dla-1", "/etc", "..", "dla-1/../../x"])
def test_run_query_parameter_never_reaches_outside_the_listing(monkeypatch, tmp_path, query):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(saved_runs() / "probe-1", root / "probe-1")
    shutil.copytree(saved_runs() / "dla-1", tmp_path / "dla-1")  # exists next to the root, not in it
    at = open_app(monkeypatch, root, run=query)
    assert not problems(at)
    assert at.title[0].value == "steerlens runs"
