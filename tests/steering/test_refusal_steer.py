"""Refusal steering on a tiny model: the settings run, the direction is the mean difference
the steering uses, the run directory round-trips (zoo numbers: tests/test_steering_zoo.py)."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.metrics.refusal import refusal_pairs
from interp.runs.results import load_run
from steering import RefusalSteerConfig, run_refusal_steer
from steering.contrast import ContrastConfig, make_vector


def test_refusal_steer_settings_direction_and_round_trip(tmp_path):
    model = tiny_model("llama")
    config = RefusalSteerConfig(layer=1, alphas=[1.0, 4.0], max_new_tokens=2, n_test=3)
    result = run_refusal_steer(model, config)
    settings = [(r.prompts, r.condition, r.alpha, r.n) for r in result.table.itertuples()]
    assert settings == [("benign", "baseline", 0.0, 3), ("benign", "add", 1.0, 3), ("benign", "add", 4.0, 3),
                        ("harmful", "baseline", 0.0, 3), ("harmful", "ablate", 0.0, 3)]
    assert result.responses.groupby(["prompts", "condition", "alpha"]).size().eq(3).all()
    harmful = {p["harmful"] for p in refusal_pairs("test")[:3]}
    assert set(result.responses[result.responses["prompts"] == "harmful"]["prompt"]) == harmful
    train = refusal_pairs("train")
    expected = make_vector(model, [p["harmful"] for p in train], [p["benign"] for p in train],
                           ContrastConfig(layers=[1]), chat=True).vectors[1]
    torch.testing.assert_close(result.direction, expected.float())
    assert result.direction_norm == pytest.approx(float(expected.norm()))
    again = load_run(result.save(tmp_path / "refusal"))
    torch.testing.assert_close(again.direction, result.direction)
    assert again.responses.equals(result.responses)


@pytest.mark.parametrize("bad, message", [({"n_test": 0}, "n_test must be >= 1"), ({"layer": -1}, "layer must be")])
def test_bad_config_is_refused_before_work(bad, message):
    with pytest.raises(ValueError, match=message):
        run_refusal_steer(tiny_model("llama"), RefusalSteerConfig(**bad))
