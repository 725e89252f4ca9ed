"""The routing explorer page in Streamlit's AppTest, on a small run of a tiny model."""

import pytest
import torch
from test_app_pages import chart, open_app, problems
from tiny import tiny_model

from interp.routing.config import RoutingConfig
from interp.routing.pairs import load_pairs
from interp.routing.pipeline import run_routing


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    config = RoutingConfig(n=8, steps=["interchange", "modulate"], method="exact", permutations=200, bootstrap=20,
                           gen_tokens=3, modulate_n=2, alpha_max=5.0)
    return root, run_routing(tiny_model("llama"), load_pairs(), config, out=root / "routing-1")


def test_routing_page_shows_heatmaps_per_pair_scores_and_dose_response(monkeypatch, runs):
    root, result = runs
    at = open_app(monkeypatch, root, run="routing-1")
    assert not problems(at)
    gate = result.gate
    assert any(m.value.startswith(f"**Gate: L{gate[0]}H{gate[1]}**") for m in at.markdown)
    assert chart(at, "routing-1:necessity")["data"][0]["z"]
    assert chart(at, "routing-1:dose")["data"]
    screen = result.step("interchange")
    first = chart(at, "routing-1:pairs")["data"][0]["y"]
    index = [tuple(h) for h in screen.heads].index(gate)
    assert torch.allclose(torch.tensor(first), screen.necessity[index].float(), atol=1e-6)
    other = (index + 1) % len(screen.heads)
    at.selectbox(key="routing-1:head").set_value(other).run()
    assert not problems(at)
    assert torch.allclose(torch.tensor(chart(at, "routing-1:pairs")["data"][0]["y"]),
                          screen.necessity[other].float(), atol=1e-6)


def test_clicking_a_cell_of_the_necessity_map_picks_that_head(monkeypatch, runs):
    root, result = runs
    heads = [tuple(h) for h in result.step("interchange").heads]
    other = next(h for h in heads if h != tuple(result.gate))
    at = open_app(monkeypatch, root, run="routing-1")
    at.session_state["routing-1:necessity"] = {"selection": {"points": [{"customdata": [*other, 0.0]}],
                                                             "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not problems(at) and not at.warning
    assert at.selectbox(key="routing-1:head").value == heads.index(other)
    assert chart(at, "routing-1:pairs")["layout"]["title"]["text"].startswith(f"L{other[0]}H{other[1]}")
