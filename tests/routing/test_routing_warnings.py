"""`behaviour_warnings`: a run where the behaviour is absent says so instead of naming a gate silently."""

from types import SimpleNamespace

import torch

from interp.routing.summary import behaviour_warnings


def fake_result(gap=None, harmful_rates=None, openings=None):
    steps = {}
    if openings is not None:
        steps["baseline"] = SimpleNamespace(harmful_refusal=openings)
    if gap is not None:
        steps["interchange"] = SimpleNamespace(baseline_delta=torch.tensor(gap))
    if harmful_rates is not None:
        steps["modulate"] = SimpleNamespace(baseline={m: {"harmful": r, "benign": 0.0} for m, r in harmful_rates.items()})
    return SimpleNamespace(has=lambda name: name in steps, step=lambda name: steps[name])


def test_no_warning_when_refusal_is_present():
    assert behaviour_warnings(fake_result([2.0, 3.5, -0.1, 1.0], {"rules": 0.75, "substring": 0.7})) == []
    assert behaviour_warnings(fake_result()) == []  # nothing ran that could tell


def test_a_non_positive_or_inconsistent_gap_is_reported():
    (line,) = behaviour_warnings(fake_result([-0.2, 0.1, -0.3, 0.0]))
    assert "mean NLL gap -0.100 nats" in line and "positive in 25% of pairs" in line and "not a refusal gate" in line
    (line,) = behaviour_warnings(fake_result([5.0, -0.1, -0.1, -0.1]))  # mean > 0, carried by one pair
    assert "positive in 25% of pairs" in line


def test_no_refusal_at_alpha_0_is_reported_under_every_mode():
    (line,) = behaviour_warnings(fake_result(harmful_rates={"rules": 0.0, "substring": 0.05}))
    assert "refuses only 0% (rules), 5% (substring) of the harmful prompts" in line
    assert behaviour_warnings(fake_result(harmful_rates={"rules": 0.0, "substring": 0.2})) == []  # one mode sees it


def test_the_baselines_refusal_of_the_harmful_prompts_decides_when_recorded():
    (line,) = behaviour_warnings(fake_result([2.0, 3.0], openings={"rules": 0.0, "substring": 0.0}))
    assert "refuses only 0% (rules), 0% (substring) of the harmful prompts (greedy openings)" in line
    # the openings take precedence over the dose-response's alpha-0 rates
    assert behaviour_warnings(fake_result(harmful_rates={"rules": 0.0}, openings={"rules": 0.8})) == []
