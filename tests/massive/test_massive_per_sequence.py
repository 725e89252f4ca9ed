"""The paper's per-sequence statistic of massive activations (locuslab/massive-activations,
main_llm.py --exp2): each prompt's own top-3 |h| and median |h| per layer, averaged over
prompts, next to our pooled statistics (docs/fidelity/massive.md)."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.cli import main
from interp.massive.activations import MassiveConfig, run_massive
from interp.massive.per_sequence import per_sequence_stats

PROMPTS = ["hello there world", "abc", "a somewhat longer prompt to pad the others"]


def _by_hand(model, prompts: list[str], top: int) -> tuple[list[list[float]], list[float]]:
    """Each prompt alone (no padding): sorted |h| of layer l's [T, d] output as Python floats,
    its `top` largest and the lower middle value, then the plain mean over prompts."""
    sites = [f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)]
    tops = [[0.0] * top for _ in sites]
    medians = [0.0] * len(sites)
    for prompt in prompts:
        _, cache = model.run_with_cache([prompt], sites, logits=None, dtype=torch.float32)
        for l, site in enumerate(sites):
            values = sorted(abs(float(v)) for v in cache[site][0].flatten())
            for rank in range(top):
                tops[l][rank] += values[-1 - rank] / len(prompts)
            medians[l] += values[(len(values) - 1) // 2] / len(prompts)
    return tops, medians


def test_per_sequence_statistic_matches_a_hand_computation():
    model = tiny_model("llama")
    result = run_massive(model, PROMPTS, MassiveConfig(seq_top=3), batch_size=3)
    tops, medians = _by_hand(model, PROMPTS, 3)
    assert result.seq_top.dtype == torch.float64 and result.seq_top.shape == (model.n_layers, 3)
    torch.testing.assert_close(result.seq_top, torch.tensor(tops, dtype=torch.float64), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(result.seq_median, torch.tensor(medians, dtype=torch.float64), rtol=1e-6, atol=1e-9)
    assert (result.max_abs.double() >= result.seq_top[:, 0] - 1e-9).all()  # a mean of maxima never exceeds the max
    layer = result.summary()["layers"][2]
    assert layer["seq_top"] == pytest.approx(tops[2]) and layer["seq_median"] == pytest.approx(medians[2])
    assert "per_sequence" in result.figures()


def test_pooled_and_per_sequence_differ_when_one_token_repeats():
    # the same large entry in every prompt fills the pooled top-3; per prompt only rank 1 holds it
    resid = [torch.zeros(1, 4, 2) for _ in range(3)]
    for i, r in enumerate(resid):
        r[0, 0, 0] = 100.0
        r[0, 1, 1] = 10.0 * (i + 1)
        r[0, 2, 0] = 1.0
    top, median = per_sequence_stats(resid, 3)
    assert top[0].tolist() == [100.0, 20.0, 1.0]
    assert median[0].item() == 0.0  # the lower middle of 8 entries, 5 of them zero
    pooled = torch.cat([r.abs() for r in resid], 1).flatten(1).topk(3).values[0].tolist()
    assert pooled == [100.0, 100.0, 100.0]
    with pytest.raises(ValueError, match="top must be"):
        per_sequence_stats(resid, 0)


def test_cli_reports_the_per_sequence_statistic(tmp_path, capsys):
    model = tiny_model("llama")
    folder = tmp_path / "model"
    save_tiny(model, folder)
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    assert main(["massive", "--model", str(folder), "--prompts", str(prompts), "--seq-top", "2",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert all(len(layer["seq_top"]) == 2 and "seq_median" in layer for layer in summary["layers"])
