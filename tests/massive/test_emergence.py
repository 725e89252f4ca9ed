"""Emergence fit f(t) = A exp(-lambda x) log(x) + K, x = gamma t + t0 (interp.massive.emergence)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.massive.emergence import emergence_curve, fit_emergence, fit_emergence_layers, run_emergence
from interp.runs.results import load_run

STEPS = np.linspace(0, 10000, 25)


@pytest.mark.parametrize("true", [
    {"A": 50.0, "lam": 0.3, "gamma": 0.002, "t0": 1.5, "K": 2.0},
    {"A": 120.0, "lam": 0.08, "gamma": 0.004, "t0": 2.0, "K": -5.0},
])
def test_fit_recovers_known_parameters(true):
    fit = fit_emergence(STEPS, emergence_curve(STEPS, **true))
    for name, value in true.items():
        assert getattr(fit, name) == pytest.approx(value, rel=1e-3), name
    assert fit.r2 > 0.99999 and fit.lam > 0


def test_fit_of_a_noisy_curve_has_high_r2():
    rng = np.random.default_rng(0)
    clean = emergence_curve(STEPS, 50.0, 0.3, 0.002, 1.5, 2.0)
    fit = fit_emergence(STEPS, clean + rng.normal(0, 0.01 * np.abs(clean).max(), clean.shape))
    assert fit.r2 > 0.99 and fit.lam > 0 and fit.gamma > 0 and fit.t0 > 0
    assert np.abs(fit.predict(STEPS) - clean).max() < 0.05 * np.abs(clean).max()


def test_a_nearly_degenerate_curve_is_still_reproduced():
    # A slow decay is fitted by several parameter sets; the curve itself must come back.
    clean = emergence_curve(STEPS, 800.0, 1.2, 0.01, 1.2, 10.0)
    fit = fit_emergence(STEPS, clean)
    assert fit.r2 > 0.9999
    assert np.abs(fit.predict(STEPS) - clean).max() < 1e-2 * np.abs(clean).max()


def test_too_few_checkpoints_are_refused():
    with pytest.raises(ValueError, match="at least 5"):
        fit_emergence([0, 1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="same length"):
        fit_emergence([0, 1, 2, 3, 4], [1, 2, 3])


def test_fit_per_layer_table():
    ratios = np.stack([emergence_curve(STEPS, 50.0, 0.3, 0.002, 1.5, 2.0),
                       emergence_curve(STEPS, 120.0, 0.08, 0.004, 2.0, -5.0)], 1)  # [n, L=2]
    table = fit_emergence_layers(STEPS, ratios)
    assert table["layer"].tolist() == [0, 1]
    assert table.loc[1, "lam"] == pytest.approx(0.08, rel=1e-3)


def test_run_emergence_on_checkpoints_with_a_growing_planted_value(tmp_path):
    steps = [0, 1000, 2500, 4000, 6000, 8000, 10000]
    planted = emergence_curve(np.array(steps, dtype=float), 2000.0, 0.3, 0.002, 1.5, 100.0)
    checkpoints = []
    for step, value in zip(steps, planted):
        model = tiny_model("gpt2")
        with torch.no_grad():
            model.hf.transformer.h[1].mlp.c_proj.bias[5] = float(value)
        checkpoints.append((step, model))
    result = run_emergence(checkpoints, ["hello there world", "another prompt"], tokens=16)
    assert result.ratios.shape == (7, 3)
    # the ratio of layer 1 follows the planted value (the median barely moves)
    assert np.corrcoef(result.ratios[:, 1].numpy(), planted)[0, 1] > 0.999
    assert result.fits.loc[1, "r2"] > 0.999
    # layer 0 comes before the planted bias, so its ratio is flat: R^2 is undefined (null), not 1 or NaN
    assert result.summary()["fits"][0]["r2"] is None and result.summary()["n_undefined_r2"] >= 1
    again = load_run(result.save(tmp_path / "run"))
    assert again.summary() == result.summary()


def test_cli_emergence_fits_checkpoint_folders(tmp_path, capsys):
    import json

    from interp.cli import main

    steps = [0, 2000, 4000, 7000, 10000]
    planted = emergence_curve(np.array(steps, dtype=float), 2000.0, 0.3, 0.002, 1.5, 100.0)
    lines = []
    for step, value in zip(steps, planted):
        model = tiny_model("gpt2")
        with torch.no_grad():
            model.hf.transformer.h[1].mlp.c_proj.bias[5] = float(value)
        folder = tmp_path / f"ckpt-{step}"
        save_tiny(model, folder)
        lines.append(json.dumps({"step": step, "model": str(folder)}))
    (tmp_path / "ckpts.jsonl").write_text("\n".join(lines) + "\n")
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello there world\nanother prompt\n")
    code = main(["emergence", "--checkpoints", str(tmp_path / "ckpts.jsonl"), "--prompts", str(prompts),
                 "--tokens", "16", "--out", str(tmp_path / "run"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_checkpoints"] == 5 and len(summary["fits"]) == 3
    assert summary["fits"][1]["r2"] > 0.99


def test_cli_emergence_refuses_too_few_checkpoints(tmp_path, capsys):
    from interp.cli import main

    path = tmp_path / "ckpts.jsonl"
    path.write_text('{"step": 0, "model": "a"}\n{"step": 1, "model": "b"}\n')
    assert main(["emergence", "--checkpoints", str(path)]) == 2
    assert "at least 5 checkpoints" in capsys.readouterr().err


def test_r2_of_a_flat_series_is_undefined():
    import math

    assert math.isnan(fit_emergence([0, 1, 2, 3, 4], [7.0] * 5).r2)
    assert math.isnan(fit_emergence([0, 1, 2, 3, 4], [7.0, 7.0 + 1e-13, 7.0, 7.0, 7.0]).r2)  # rounding noise
    assert fit_emergence([0, 1, 2, 3, 4], [7.0, 7.5, 8.0, 8.2, 8.3]).r2 > 0.9
