"""Explorer fixes of issue 18: tensor plots, decoded figure data, tour folders, playground vectors, access."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import plotly.graph_objects as go
import pytest
import torch
from apptest import open_app, problems
from streamlit.testing.v1 import AppTest
from test_app_runs import RUN_NAMES, saved_runs

from app.access import AppOptions, app_options, is_loopback, model_refusal
from app.figdata import decode, figure_table
from app.generic import heatmap
from app.runs import scan_runs
from steering.vectors import SteeringVector

MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def spec(at: AppTest, key_part: str) -> dict:
    (found,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if key_part in c.proto.id]
    return found


# ---- 1. "Plot a tensor" drew blank axes: the helper forced a category y axis without labels --------
def test_heatmap_without_labels_keeps_numeric_axes_and_with_labels_uses_categories():
    plain = heatmap([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert plain.layout.yaxis.type is None and plain.layout.xaxis.type is None
    labelled = heatmap([[1.0, 2.0]], x=["1", "2"], y=["L0"])  # numeric-looking token labels stay categories
    assert labelled.layout.yaxis.type == "category" and labelled.layout.xaxis.type == "category"


def test_plot_a_tensor_draws_every_cell(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="probe-1")
    at.selectbox(key="probe-1:tensor").set_value("scores").run()
    assert not problems(at)
    figure = spec(at, "probe-1:tensor:scores:plot")
    z = decode(figure["data"][0]["z"])
    assert len(z) == 4 and len(z[0]) == 5  # [H, T] averaged over layers
    assert figure["layout"]["yaxis"].get("type") != "category"
    scores = torch.tensor(z)
    from interp.runs.results import load_run

    assert torch.allclose(scores, load_run(saved_runs() / "probe-1").scores.mean(0), atol=1e-6)


# ---- 2. the "data" toggle showed plotly's binary encoding ----------------------------------------
def test_figure_table_decodes_binary_arrays_and_names_columns():
    fig = heatmap(torch.arange(6.0).view(2, 3).numpy(), x=["H0", "H1", "H2"], y=["L0", "L1"], x_title="head",
                  y_title="layer", value="logit")
    saved = go.Figure(json.loads(fig.to_json()))  # as a run stores it: {"dtype", "bdata", "shape"}
    assert isinstance(saved.data[0].z, dict) and "bdata" in saved.data[0].z
    table = figure_table(saved)
    assert list(table.columns) == ["layer", "head", "logit"]
    assert table.set_index(["layer", "head"]).loc[(1, 2), "logit"] == 5.0


def test_data_toggle_of_a_saved_figure_shows_numbers(monkeypatch):
    from interp.runs.results import load_run

    at = open_app(monkeypatch, saved_runs(), run="voids-1")  # layer_frequency: a saved figure, drawn as saved
    at.toggle(key="voids-1:fig:layer_frequency:data").set_value(True).run()
    assert not problems(at)
    (table,) = [d.value for d in at.dataframe if {"series", "layer", "active fraction"} <= set(d.value.columns)]
    assert not {"dtype", "bdata", "trace", "x", "y"} & set(table.columns)
    expected = load_run(saved_runs() / "voids-1").per_layer["prompt_active"].tolist()
    assert table[table["series"] == "prompt processing"]["active fraction"].tolist() == pytest.approx(expected)
    assert any("fig-layer_frequency.csv" in b.proto.label for b in at.get("download_button"))  # the CSV is this table


# ---- 3. a folder of runs one level down (the tour's folder) --------------------------------------
def test_runs_nested_one_level_are_listed_and_open(monkeypatch, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(saved_runs(), root / "tour-1")
    names = [e.name for e in scan_runs(root)]
    assert [n for n in names if not n.endswith(".safetensors")] == [f"tour-1/{n}" for n in RUN_NAMES]
    assert "tour-1/v.safetensors" in names and not any(e.broken for e in scan_runs(root))
    at = open_app(monkeypatch, root, run="tour-1/dla-1")
    assert not problems(at)
    assert at.title[0].value == "Direct logit attribution: tour-1/dla-1"


# ---- 4. the playground after a tour: a vector for its model, how to make one, wrong widths refused --
@pytest.fixture(scope="module")
def tour_folder(tiny_llama_folder, tmp_path_factory) -> Path:
    from interp.cli import main

    root = tmp_path_factory.mktemp("runs")
    assert main(["tour", "--quick", "--only", "skills", "--model", str(tiny_llama_folder), "--out",
                 str(root / "tour-x")]) == 0
    return root


def playground(monkeypatch, root: Path, spec_: str, **env) -> AppTest:
    at = open_app(monkeypatch, root, **env)
    at.sidebar.radio(key="view").set_value("playground").run()
    at.text_input(key="pg:spec").set_value(spec_)
    return at.button(key="pg:load").click().run()


def test_tour_leaves_a_vector_the_playground_offers_and_generates_with(monkeypatch, tour_folder, tiny_llama_folder):
    at = playground(monkeypatch, tour_folder, str(tiny_llama_folder))
    assert not problems(at)
    labels = at.selectbox(key="pg:vector:runs").options
    assert labels == ["run tour-x/skills · direction-0.safetensors"]
    at.text_area(key="pg:prompts").set_value("Hello there")
    at.number_input(key="pg:max_new").set_value(6)
    at.slider(key="pg:alpha").set_value(30.0)
    at.button(key="pg:generate").click().run()
    assert not problems(at)
    result = at.session_state["pg:result"]
    assert result["steered"] != result["plain"]


def test_no_vector_says_how_to_make_one_and_builds_one_from_two_lists(monkeypatch, tmp_path, tiny_llama_folder):
    at = playground(monkeypatch, tmp_path, str(tiny_llama_folder))
    assert any("steerlens vector make" in i.value for i in at.info)
    at.radio(key="pg:source").set_value("make").run()
    at.button(key="pg:make:build").click().run()
    assert not problems(at)
    at.text_area(key="pg:prompts").set_value("Hello there")
    at.number_input(key="pg:max_new").set_value(6)
    at.slider(key="pg:alpha").set_value(30.0)
    at.button(key="pg:generate").click().run()
    assert not problems(at)
    result = at.session_state["pg:result"]
    assert result["steered"] != result["plain"]
    (effects,) = [d.value for d in at.dataframe if "promoted" in d.value.columns]
    assert len(effects) == 10 and (effects["logit change (+)"] >= effects["logit change (-)"]).all()
    at.button(key="pg:sweep").click().run()  # alpha x (-1, 0, 0.5, 1, 2) on the first prompt
    assert not problems(at)
    sweep = at.session_state["pg:sweep_result"]
    assert sweep["alphas"] == [-30.0, 0.0, 15.0, 30.0, 60.0]
    assert sweep["texts"][1] == result["plain"][0] and sweep["texts"][3] == result["steered"][0]


def test_word_diff_marks_only_the_changed_words():
    from app.playground_vectors import word_diff

    assert word_diff("the cat sat", "the dog sat <b>") == "the <mark>dog</mark> sat <mark>&lt;b&gt;</mark>"


def test_wrong_width_upload_is_refused_when_it_arrives(monkeypatch, tmp_path, tiny_llama_folder):
    path = SteeringVector.from_tensor(torch.randn(2, 576), layers=[0, 1]).save(tmp_path / "wide.safetensors")
    at = playground(monkeypatch, tmp_path, str(tiny_llama_folder))
    at.radio(key="pg:source").set_value("upload").run()
    at.file_uploader(key="pg:upload").set_value(("wide.safetensors", path.read_bytes(), "x")).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "576 coordinates" in error and "64 at the 'layer' site" in error and "None" not in error
    assert at.button(key="pg:generate").proto.disabled


# ---- security: loopback by default; exposed: only zoo aliases and folders under the runs root ---------
def test_app_command_listens_on_loopback_unless_told(monkeypatch):
    from app.cli_app import command, register
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["app"])
    assert args.address == "127.0.0.1" and not args.allow_any_model
    line = command("runs", 8501)
    assert line[line.index("--server.address") + 1] == "127.0.0.1" and line[-2:] == ["--address", "127.0.0.1"]
    exposed = command("runs", 8501, "0.0.0.0", allow_any_model=True)
    assert exposed[-3:] == ["--address", "0.0.0.0", "--allow-any-model"]


def test_exposed_playground_loads_only_zoo_aliases_and_folders_in_the_runs_root(tmp_path):
    inside = tmp_path / "runs" / "my-model"
    inside.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    exposed = AppOptions(tmp_path / "runs", "0.0.0.0")
    assert model_refusal("smollm2-135m-instruct", exposed) is None
    assert model_refusal(str(inside), exposed) is None
    assert "--allow-any-model" in model_refusal(str(outside), exposed)
    assert model_refusal(str(tmp_path / "runs" / ".." / "elsewhere"), exposed)
    assert model_refusal("/etc", exposed)
    assert model_refusal(str(outside), AppOptions(tmp_path / "runs", "0.0.0.0", allow_any_model=True)) is None
    assert model_refusal(str(outside), AppOptions(tmp_path / "runs", "127.0.0.1")) is None
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("192.168.1.5")
    assert app_options(["--runs", str(tmp_path), "--address", "0.0.0.0"]).exposed


def test_exposed_app_refuses_a_model_outside_the_runs_root(monkeypatch, tmp_path, tiny_llama_folder):
    at = playground(monkeypatch, tmp_path, str(tiny_llama_folder), STEERLENS_ADDRESS="0.0.0.0")
    assert not at.exception
    assert at.error and "--allow-any-model" in at.error[0].value
    assert "pg:loaded" not in at.session_state


# ---- misleading views: token markers, one orientation for layer maps, counts next to rates -----------
def test_tokens_show_whitespace_markers_everywhere():
    from app.tokens import position_labels, visible

    assert visible(" Paris") == "␣Paris" and visible("\n") == "⏎" and visible("") == "∅"
    assert position_labels(["a", "a"]) == ["0:a", "1:a"]  # unique labels: a category axis would merge them


def test_lens_grid_has_no_blank_token_cells_and_hover_lists_the_top_5(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="lens-1")
    trace = spec(at, "lens-1:lens")["data"][0]
    assert all(cell and not cell.isspace() for row in trace["text"] for cell in row)
    assert all("5. " in cell and "target" in cell for row in trace["hovertext"] for cell in row)
    markers = spec(at, "lens-1:lens")["data"][1]  # the click markers show the hover (issue 36)
    assert markers["hovertemplate"] == "%{hovertext}<extra></extra>"
    assert all("5. " in cell for cell in markers["hovertext"])


def test_every_layer_map_has_layer_0_at_the_top(monkeypatch):
    from app.generic import layers_top_down

    saved = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])).update_layout(yaxis_title="layer")
    assert layers_top_down(saved).layout.yaxis.autorange == "reversed"
    for run, key in (("voids-1", "voids-1:map"), ("voids-1", "voids-1:delta"), ("dla-1", "dla-1:heads"),
                     ("sinks-1", "sinks-1:map")):
        at = open_app(monkeypatch, saved_runs(), run=run)
        assert spec(at, key)["layout"]["yaxis"]["autorange"] == "reversed", key


def test_refusal_bars_are_grouped_with_counts_and_austeer_accuracy_shows_n(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="refusal-1")
    rates = spec(at, "refusal-1:rates")
    assert rates["layout"]["barmode"] == "group" and all("/" in t for bar in rates["data"] for t in bar["text"])
    assert not any(c.proto.id.endswith("fig:refusal_rate") for c in at.get("plotly_chart"))  # drawn once
    at = open_app(monkeypatch, saved_runs(), run="austeer-eval-1")
    accuracy = spec(at, "austeer-eval-1:accuracy")
    assert all("/2 (" in t for t in accuracy["data"][0]["text"])  # n_test = 2 in the saved run, with a CI
    assert len([c for c in at.get("plotly_chart") if "units" in c.proto.id]) == 1  # the units scatter once


def test_sink_map_uses_a_fixed_0_1_scale_with_eps_marked(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="sinks-1")
    trace = spec(at, "sinks-1:map")["data"][0]
    assert (trace["zmin"], trace["zmax"]) == (0, 1) and any("eps" in t for t in trace["colorbar"]["ticktext"])


def test_run_zip_holds_the_manifest_and_every_file():
    import io
    import zipfile

    from app.generic import run_zip
    from app.runs import SavedRun

    run = SavedRun(saved_runs() / "dla-1")
    names = zipfile.ZipFile(io.BytesIO(run_zip(run))).namelist()
    assert set(names) == {f"dla-1/{f}" for f in ["manifest.json", *run.manifest["files"]]}


def test_compare_two_runs_of_one_analysis(monkeypatch, tmp_path):
    root = tmp_path / "runs"
    for name in ("dla-1", "lens-1"):
        shutil.copytree(saved_runs() / name, root / name)
    shutil.copytree(saved_runs() / "dla-1", root / "dla-2")
    at = open_app(monkeypatch, root)
    at.toggle(key="compare:on").set_value(True).run()
    at.selectbox(key="compare:a").set_value("dla-1").run()
    assert not problems(at)
    assert at.selectbox(key="compare:b").options == ["dla-2"]  # only runs of the same analysis
    (summary,) = [d.value for d in at.dataframe if "B - A" in d.value.columns and "Sum check (max error)"
                  in d.value["field"].tolist()]
    assert set(summary["B - A"]) <= {"0", "same"}  # the same run twice: no difference, never "None"
    ids = [c.proto.id for c in at.get("plotly_chart")]
    assert any("compare:a:head_heatmap" in i for i in ids) and any("compare:b:head_heatmap" in i for i in ids)


def test_controls_live_in_the_url_so_a_view_can_be_shared(monkeypatch):
    from interp.runs.results import load_run

    monkeypatch.setenv("STEERLENS_RUNS", str(saved_runs()))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["run"] = "dla-1"
    at.query_params["dla-1:prompt"] = "1"  # prompt 1 (the URL holds the choice itself, not its option index)
    at.run()
    assert not problems(at)
    heads = torch.tensor(decode(spec(at, "dla-1:heads")["data"][0]["z"]))
    expected = load_run(saved_runs() / "dla-1").head_attr[1, 0]  # [L, H] of prompt 1
    assert torch.allclose(heads, expected.float(), atol=1e-6)
    at.selectbox(key="dla-1:layer").set_value(0).run()
    assert at.query_params["dla-1:layer"] in ("0", ["0"])  # the new choice is written back


def test_app_refuses_a_missing_runs_folder_a_bad_address_and_a_taken_port(tmp_path, capsys):
    """Each is one line and exit 2 before streamlit starts (found by a newcomer: tracebacks, or
    an empty explorer on a typo'd --runs)."""
    import socket

    from interp.cli import main

    def error(*argv) -> str:
        assert main(["app", *argv]) == 2
        return capsys.readouterr().err.strip()

    assert "does not exist" in error("--runs", str(tmp_path / "nope"))
    for bad in ("not-an-ip", "300.1.1.1"):
        line = error("--runs", str(tmp_path), "--address", bad)
        assert line.startswith("steerlens: error: --address") and "\n" not in line
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        line = error("--runs", str(tmp_path), "--port", str(busy.getsockname()[1]))
    assert "cannot listen on 127.0.0.1" in line and "--port" in line
