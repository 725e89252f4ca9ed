"""Issue 36, misleading items: what each figure holds (points, tick labels, hover templates)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch
from apptest import open_app, problems
from streamlit.testing.v1 import AppTest
from test_app_runs import PROMPTS, copy_runs, saved_runs

from app.axes import decade_label, decades, readable_log_axes
from app.figdata import decode
from app.intervals import count_text, wilson

pytestmark = pytest.mark.usefixtures("one_thread")


def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def chart(at: AppTest, key_part: str) -> dict:
    (found,) = [spec for key, spec in charts(at).items() if key_part in key]
    return found


def test_wilson_matches_statsmodels_and_known_values():
    proportion_confint = pytest.importorskip("statsmodels.stats.proportion").proportion_confint
    for k, n in ((0, 10), (5, 10), (10, 10), (1, 16), (3, 16), (3, 8)):
        assert wilson(k, n) == pytest.approx(proportion_confint(k, n, alpha=0.05, method="wilson"), abs=1e-6)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert count_text(3, 8) == "3/8 = 38% (95% CI 14%-69%)"
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(3, 2)


def test_log_axes_get_one_readable_tick_per_decade():
    import plotly.graph_objects as go

    assert [decade_label(v) for v in (0.1, 1, 10, 100, 1e3, 1e4, 1e6)] == ["0.1", "1", "10", "100", "1k", "10k", "1M"]
    assert decades([3.0, 250.0, 0, None, float("nan")]) == [1.0, 10.0, 100.0, 1000.0]
    fig = go.Figure(go.Scatter(y=[2.0, 40.0, 23_000.0])).update_layout(yaxis_type="log")
    readable_log_axes(fig)
    assert list(fig.layout.yaxis.ticktext) == ["1", "10", "100", "1k", "10k", "100k"]
    own = go.Figure(go.Scatter(y=[1, 10])).update_layout(yaxis={"type": "log", "tickvals": [1, 10]})
    assert list(readable_log_axes(own).layout.yaxis.tickvals) == [1, 10]  # a figure's own ticks are kept


def test_saved_residual_norm_figure_is_drawn_with_decade_ticks(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="sinks-1")
    assert not problems(at)
    axis = chart(at, "fig:resid_norm")["layout"]["yaxis"]
    assert axis["type"] == "log" and axis["autorange"] is False
    allowed = {decade_label(m * 10.0 ** e) for e in range(-3, 7) for m in (1, 2, 5)}
    assert len(axis["ticktext"]) >= 2 and set(axis["ticktext"]) <= allowed, axis["ticktext"]
    ticks = [float(v) for v in axis["tickvals"]]
    assert axis["range"] == pytest.approx([math.log10(ticks[0]), math.log10(ticks[-1])])  # every tick drawn
    values = [v for t in chart(at, "fig:resid_norm")["data"] for v in decode(t["y"])]
    assert ticks[0] <= min(values) and max(values) <= ticks[-1]


def test_a_narrow_log_axis_gets_2_and_5_ticks_inside_its_range():
    import plotly.graph_objects as go

    fig = readable_log_axes(go.Figure(go.Scatter(y=[0.2, 0.9])).update_layout(yaxis_type="log"))
    assert list(fig.layout.yaxis.ticktext) == ["0.1", "0.2", "0.5", "1"]
    assert list(fig.layout.yaxis.range) == pytest.approx([-1.0, 0.0])


@pytest.fixture(scope="module")
def voids_eval_root(tmp_path_factory) -> Path:
    from tiny import tiny_model

    from interp.voids.evaluation import VoidEvalConfig, evaluate_voids

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("veval") / "runs"
    evaluate_voids(tiny_model("llama"), VoidEvalConfig(alphas=[0.5, 1.0], limit=6)).save(root / "veval-1")
    return root


def test_voids_eval_page_shows_both_accuracies_with_counts_and_intervals(monkeypatch, voids_eval_root):
    from interp.runs.results import load_run

    r = load_run(voids_eval_root / "veval-1")
    at = open_app(monkeypatch, voids_eval_root, run="veval-1")
    assert not problems(at)
    trace = chart(at, "veval-1:accuracy")["data"][0]
    assert trace["x"] == ["no skipping", "paper skipping, alpha 0.5", "paper skipping, alpha 1"]
    assert trace["mode"] == "markers+text"  # points: equal accuracies are two visible points, not a 1-point line
    y = decode(trace["y"])
    assert y[0] == pytest.approx(r.accuracy_no_skip) and list(y[1:]) == pytest.approx(r.accuracy_skip)
    n = r.n_questions
    k = round(r.accuracy_no_skip * n)
    assert trace["text"][0] == f"{k}/{n}"
    low, high = wilson(k, n)
    assert decode(trace["error_y"]["arrayminus"])[0] == pytest.approx(y[0] - low)
    assert decode(trace["error_y"]["array"])[0] == pytest.approx(high - y[0])
    assert "Wilson" in trace["hovertemplate"]
    used = chart(at, "veval-1:layers_used")["data"]
    prompt_bars = next(t for t in used if t["name"] == "prompt tokens")
    assert list(decode(prompt_bars["y"])) == pytest.approx([round(v, 1) for v in r.layers_used_prompt])
    metrics = [m.label for m in at.metric]
    assert "no skipping" in metrics and "paper skipping, alpha 0.5" in metrics
    assert not any(key.endswith("fig:accuracy_vs_alpha") for key in charts(at))  # the misleading saved one is replaced


def test_dla_overview_follows_the_prompt_and_sums_to_the_components(monkeypatch):
    from interp.runs.results import load_run

    r = load_run(saved_runs() / "dla-1")
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    at.selectbox(key="dla-1:prompt").set_value(1).run()
    assert not problems(at)
    fig = chart(at, "dla-1:overview")
    assert "prompt 1" in fig["layout"]["title"]["text"]
    heads = next(t for t in fig["data"] if t["name"] == "attention heads")
    expected = r.head_attr[1].double().mean(0).sum(-1) if len(r.positions) > 1 else r.head_attr[1, 0].double().sum(-1)
    assert list(decode(heads["y"]))[1:-1] == pytest.approx(expected.tolist(), abs=1e-5)
    assert fig["data"][0]["x"][0] == "embed" and fig["data"][0]["x"][-1] == "bias"


def test_attention_pattern_and_heads_grid_follow_the_page_prompt(monkeypatch):
    from tiny import tiny_model

    import app.playground

    model = tiny_model("llama")
    monkeypatch.setattr(app.playground, "load_model", lambda spec: (model, threading.Lock()))
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    at.selectbox(key="dla-1:prompt").set_value(1).run()
    assert not any(s.key == "dla-1:dla:pattern_prompt" for s in at.selectbox)  # no second prompt picker
    at.button(key="dla-1:dla:pattern_go").click().run()
    assert not problems(at)
    (layer, head) = at.selectbox(key="dla-1:pattern_head").value
    enlarged = chart(at, "dla-1:dla:pattern")
    assert enlarged["layout"]["title"]["text"].startswith(f"L{layer}H{head} attention, prompt 1")
    grid = chart(at, "dla-1:dla:grid")
    maps = [t for t in grid["data"] if t["type"] == "heatmap"]
    markers = [t for t in grid["data"] if t["type"] == "scatter"]
    assert len(maps) == model.n_heads == len(markers)
    assert [m["customdata"][0] for m in markers] == [[layer, h] for h in range(model.n_heads)]
    rows = len(model.tokenize([PROMPTS[1]]).input_ids[0])
    assert len(decode(maps[0]["z"])) == rows  # the page's prompt 1, not prompt 0
    assert len(grid["layout"]["shapes"]) == 1  # the enlarged head outlined


def test_austeer_bars_carry_wilson_intervals(monkeypatch):
    at = open_app(monkeypatch, saved_runs(), run="austeer-eval-1")
    bar = chart(at, "austeer-eval-1:accuracy")["data"][0]
    n = 2
    for accuracy, text, up, down in zip(decode(bar["y"]), bar["text"], decode(bar["error_y"]["array"]),
                                        decode(bar["error_y"]["arrayminus"])):
        k = round(accuracy * n)
        low, high = wilson(k, n)
        assert text == f"{k}/{n} ({low:.0%}-{high:.0%})"
        assert (accuracy - down, accuracy + up) == pytest.approx((low, high))


def test_secondary_sinks_table_keeps_whitespace_markers(monkeypatch, tmp_path):
    import pandas as pd

    from interp.runs.results import load_run

    r = load_run(saved_runs() / "sinks-1")
    root = copy_runs(tmp_path / "runs")  # a row with a whitespace token, whatever the tiny model found
    r.secondary = pd.DataFrame({"input": ["natural"], "prompt": [0], "position": [3], "token": [" mat\n"],
                                "n_heads_above_eps": [2], "max_alpha": [0.5]})
    r.save(root / "sinks-2")
    at = open_app(monkeypatch, root, run="sinks-2")
    assert not problems(at)
    (table,) = [d.value for d in at.dataframe if "n_heads_above_eps" in d.value.columns]
    assert table["token"].tolist() == ["␣mat⏎"]
    assert not any(k.endswith("table:secondary:df") for k in (d.proto.id for d in at.dataframe))  # shown once


def test_rise_silhouette_is_rounded():
    from app.pages_rise import _number

    assert _number(0.04622109903387343) == "0.046" and _number(None) == "n/a"


def test_damage_is_zero_without_steering_and_grows_with_it():
    from tiny import tiny_model

    from app.damage import damage, residual_norm
    from steering.apply import VectorUse, steering_edits
    from steering.vectors import SteeringVector

    model = tiny_model("llama")
    prompts = ["The cat sat", "Hello world, this is"]
    settings = dict(max_new_tokens=5, return_logits=True)
    plain = model.generate(prompts, **settings)
    same = damage(model, prompts, False, plain, model.generate(prompts, **settings))
    assert all(abs(row["kl"]) < 1e-5 and row["ppl_steered"] == pytest.approx(row["ppl_plain"]) for row in same)
    norm = residual_norm(model, prompts, 1)
    torch.manual_seed(0)
    vector = SteeringVector.from_tensor(torch.randn(1, model.d_model), layers=[1], model=model)
    edits = steering_edits(model, [VectorUse(vector, alpha=20 * norm / vector.norms()[1], layers=[1])])
    far = damage(model, prompts, False, plain, model.generate(prompts, edits=edits, **settings))
    assert all(row["kl"] > 0.01 for row in far)


def test_playground_shows_alpha_in_residual_units_and_damage_next_to_each_generation(monkeypatch, tmp_path,
                                                                                     tiny_llama_folder):
    import shutil

    root = tmp_path / "runs"
    root.mkdir()
    shutil.copy(saved_runs() / "v.safetensors", root / "v.safetensors")
    monkeypatch.setenv("STEERLENS_RUNS", str(root))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "main.py"), default_timeout=180).run()
    at.sidebar.radio(key="view").set_value("playground").run()
    at.text_input(key="pg:spec").set_value(str(tiny_llama_folder))
    at.button(key="pg:load").click().run()
    at.text_area(key="pg:prompts").set_value("Hello there")
    at.number_input(key="pg:max_new").set_value(4)
    at.slider(key="pg:alpha").set_value(30.0).run()
    assert not problems(at)
    (scale,) = [w.value for w in at.warning if "median residual norm" in w.value]  # 30 x ||v|| of norm ~ 10*sqrt(d)
    assert "x** the layer's median residual norm" in scale and "try alpha" in scale
    at.button(key="pg:generate").click().run()
    assert not problems(at)
    lines = [e.value for e in [*at.caption, *at.warning] if e.value.startswith("damage:")]
    assert len(lines) == 1 and "perplexity" in lines[0] and "KL" in lines[0]
    harm = at.session_state["pg:result"]["damage"][0]
    assert harm["kl"] > 0 and harm["ppl_steered"] > 0
