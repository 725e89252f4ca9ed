"""The experts page in Streamlit's AppTest, on a scan of the planted MoE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from interp.experts.planted import BEHAVIOUR_TOKEN, planted_model
    from interp.experts.scan import ExpertsConfig, experts_scan

    root = tmp_path_factory.mktemp("runs")
    config = ExpertsConfig(behaviour_token=BEHAVIOUR_TOKEN, candidates=3, top_n=1, random_seeds=1, permutations=50)
    experts_scan(planted_model(), ["ab#", "x@"], ["abc", "xy"], config).save(root / "experts-1")
    return root


def test_experts_page_shows_ranking_map_and_layer(monkeypatch, runs):
    monkeypatch.setenv("STEERLENS_RUNS", str(runs))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["run"] = "experts-1"
    at.run()
    assert not at.exception and not at.error
    ranking = [d.value for d in at.dataframe if "effect" in d.value.columns][0]
    assert (ranking.loc[0, "layer"], ranking.loc[0, "expert"]) == (1, 5)
    at.selectbox(key="experts-1:score").set_value("risk_diff").run()
    at.selectbox(key="experts-1:layer").set_value(2).run()
    assert not at.exception and not at.error
    specs = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    (freq,) = [s for k, s in specs.items() if "experts-1:freq" in k]
    assert "Layer 2" in freq["layout"]["title"]["text"]


def test_playground_expert_toggles_steer_the_planted_moe(monkeypatch, tmp_path):
    from app import playground as pg
    from app.pages_experts import expert_controls
    from interp.experts.planted import planted_model

    folder = tmp_path / "planted"
    model = planted_model()
    model.hf.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    monkeypatch.setattr(pg, "EXTRA_CONTROLS", [expert_controls])  # registered once per process otherwise
    monkeypatch.setenv("STEERLENS_RUNS", str(tmp_path))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["view"] = "playground"
    at.run()
    at.text_input(key="pg:spec").set_value(str(folder))
    at.button(key="pg:load").click().run()
    at.text_input(key="pg:experts_on").set_value("1:9").run()
    assert at.error and "expert out of range" in at.error[0].value
    at.text_input(key="pg:experts_on").set_value("1:5").run()
    at.text_area(key="pg:prompts").set_value("abc\nxyz")
    at.number_input(key="pg:max_new").set_value(3)
    at.button(key="pg:generate").click().run()
    assert not at.exception and not at.error
    result = at.session_state["pg:result"]
    assert all("!" not in t for t in result["plain"]) and all(t.replace(" ", "") == "!!!" for t in result["steered"])


def test_clicking_a_cell_of_the_expert_map_picks_its_layer(monkeypatch, runs):
    monkeypatch.setenv("STEERLENS_RUNS", str(runs))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["run"] = "experts-1"
    at.run()
    layers = at.selectbox(key="experts-1:layer").options
    at.session_state["experts-1:map"] = {"selection": {"points": [{"customdata": [len(layers) - 1, 0, 0.0]}],
                                                       "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not at.exception and not at.error and not at.warning
    assert str(at.selectbox(key="experts-1:layer").value) == layers[-1]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "experts-1:freq" in c.proto.id]
    assert f"Layer {layers[-1]}" in specs[0]["layout"]["title"]["text"]


def test_experts_page_shows_the_warning_when_the_target_prompts_show_no_behaviour(monkeypatch, runs):
    """Target and other prompts swapped: the behaviour is no stronger on the target prompts."""
    from interp.experts.planted import BEHAVIOUR_TOKEN, planted_model
    from interp.experts.scan import ExpertsConfig, experts_scan

    config = ExpertsConfig(behaviour_token=BEHAVIOUR_TOKEN, candidates=3, top_n=1, random_seeds=1, permutations=50)
    result = experts_scan(planted_model(), ["abc", "xy"], ["ab#", "x@"], config)
    result.save(runs / "experts-swapped")
    (line,) = result.summary()["warnings"]
    monkeypatch.setenv("STEERLENS_RUNS", str(runs))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["run"] = "experts-swapped"
    at.run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning] == [line[:1].upper() + line[1:]]
