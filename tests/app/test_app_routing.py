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
    assert not problems(at)
    assert at.selectbox(key="routing-1:head").value == heads.index(other)
    assert chart(at, "routing-1:pairs")["layout"]["title"]["text"].startswith(f"L{other[0]}H{other[1]}")


# ---- issue 18, third round: warnings, the head picker in the URL, heads only AtP estimated ----------
@pytest.fixture(scope="module")
def atp_run(runs):
    root, _ = runs
    config = RoutingConfig(n=8, steps=["interchange"], method="atp+exact", verify=2, verify_random=0,
                           permutations=100, bootstrap=5, gen_tokens=2)
    return run_routing(tiny_model("llama"), load_pairs(), config, out=root / "routing-atp")


def test_routing_page_shows_the_runs_warnings_at_the_top(monkeypatch, runs):
    root, result = runs
    lines = result.summary()["warnings"]
    assert lines  # a tiny random model: the behaviour is absent
    at = open_app(monkeypatch, root, run="routing-1")
    assert not problems(at)
    shown = [w.value for w in at.warning]
    assert all(any(line[1:] in s for s in shown) for line in lines)


def test_clicked_head_goes_to_the_url_and_maps_fit_and_read(monkeypatch, runs):
    root, result = runs
    heads = [tuple(h) for h in result.step("interchange").heads]
    other = next(h for h in heads if h != tuple(result.gate))
    at = open_app(monkeypatch, root, run="routing-1")
    at.session_state["routing-1:sufficiency"] = {"selection": {"points": [{"customdata": [*other, 0.0]}],
                                                               "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not problems(at)
    name = f"L{other[0]}H{other[1]}"  # the head itself, not its index among the picker's options
    assert at.query_params["routing-1:head"] in (name, [name])
    for which in ("necessity", "sufficiency"):
        spec = chart(at, f"routing-1:{which}")
        assert len(spec["layout"]["title"]["text"]) <= 30  # fits a half-width column
        assert spec["data"][0]["textfont"]["size"] >= 11


def test_a_head_only_estimated_by_atp_says_so_and_draws_no_pairs(monkeypatch, runs, atp_run):
    root, _ = runs
    screen = atp_run.step("interchange")
    index = next(i for i, e in enumerate(screen.exact.tolist()) if not e)
    layer, head = screen.heads[index]
    at = open_app(monkeypatch, root, run="routing-atp")
    at.session_state["routing-atp:necessity"] = {"selection": {"points": [{"customdata": [layer, head, None]}],
                                                               "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not problems(at)
    assert at.selectbox(key="routing-atp:head").value == index
    (line,) = [m.value for m in at.info if m.value.startswith(f"L{layer}H{head} was not measured exactly")]
    assert "% necessity); rerun with a larger --verify or --method exact" in line
    assert not any("routing-atp:pairs" in c.proto.id for c in at.get("plotly_chart"))
    cells = next(t for t in chart(at, "routing-atp:necessity")["data"] if t.get("name") == "cells")
    hover = cells["hovertext"][[list(c[:2]) for c in cells["customdata"]].index([layer, head])]
    assert "blank: AtP estimate only" in hover
    assert any("blank: fast estimate only" in c.value for c in at.caption)


def test_the_gate_line_gives_the_family_wise_p_and_a_missed_gate_is_warned_about(monkeypatch, runs, atp_run):
    root, result = runs
    at = open_app(monkeypatch, root, run="routing-1")
    (line,) = [m.value for m in at.markdown if m.value.startswith("**Gate:")]
    screen = result.step("interchange")
    assert f"family-wise p = {screen.gate_p_family():.3g} over the {len(screen.heads)} heads" in line
    # the same run, as if the fast estimate had ranked the gate outside its top --verify
    from interp.routing.result import RoutingResult

    copy = RoutingResult.load(root / "routing-atp")
    hidden = copy.step("interchange")
    hidden.fast_top = [h for h in hidden.heads if h != hidden.gate()][:2]
    copy.put("interchange", hidden)
    copy.save(root / "routing-missed", overwrite=True)
    at = open_app(monkeypatch, root, run="routing-missed")
    assert not problems(at)
    gate = hidden.gate()
    assert any(f"exact gate L{gate[0]}H{gate[1]} was not in the AtP screen's top 2" in w.value for w in at.warning)


def test_a_shared_link_names_the_head_and_opens_on_it(monkeypatch, runs):
    from apptest import MAIN
    from streamlit.testing.v1 import AppTest

    root, result = runs
    heads = [tuple(h) for h in result.step("interchange").heads]
    other = next(h for h in reversed(heads) if h != tuple(result.gate))
    monkeypatch.setenv("STEERLENS_RUNS", str(root))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["run"] = "routing-1"
    at.query_params["routing-1:head"] = f"L{other[0]}H{other[1]}"
    at.run()
    assert not problems(at)
    assert at.selectbox(key="routing-1:head").value == heads.index(other)


def test_a_run_interrupted_before_its_first_step_opens_without_errors(monkeypatch, tmp_path):
    import interp.routing.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(pipeline._Context, "baseline", interrupted)
    config = RoutingConfig(n=8, steps=["screen"], permutations=200, bootstrap=20)
    with pytest.raises(KeyboardInterrupt):  # the run is saved (no steps yet) so --resume can continue it
        run_routing(tiny_model("llama"), load_pairs(), config, out=tmp_path / "routing-1")
    at = open_app(monkeypatch, tmp_path, run="routing-1")
    assert not problems(at)
    assert any("no finished step yet" in i.value and "--resume" in i.value for i in at.info)
