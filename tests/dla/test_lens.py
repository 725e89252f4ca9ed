"""Logit lens: last layer equals the model, norm recomputed per layer, ranks, rows, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_model
from transformers import AutoConfig

from interp.cli import main
from interp.dla.directions import single_token_id
from interp.dla.lens import LensConfig, LensResult, logit_lens
from interp.runs.results import load_run

PROMPTS = ["The cat sat on the mat.", "Hi!"]


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])
def test_last_layer_lens_is_the_models_own_distribution(family):
    result = logit_lens(tiny_model(family), PROMPTS, positions="last", top_k=3)
    assert result.final_layer_check < 1e-5
    assert result.layer_labels[0] == "embed" and len(result.layer_labels) == tiny_model(family).n_layers + 1


def test_each_layer_recomputes_the_final_norm_on_its_own_residual():
    model = tiny_model("gemma3")  # RMSNorm with (1 + w)
    result = logit_lens(model, PROMPTS[:1], positions="last", top_k=4)
    _, cache = model.run_with_cache(PROMPTS[:1], ["blocks.0.hook_resid_post"], positions="last")
    x = cache["blocks.0.hook_resid_post"].double()  # [1, d_model]
    norm = model.hf.model.norm
    normed = x / (x.pow(2).mean(-1, keepdim=True) + norm.eps).sqrt() * (1 + norm.weight.double())
    probs = torch.softmax(normed @ model.hf.lm_head.weight.double().T, -1)[0]
    top = probs.topk(4)
    assert result.top_ids[0, 1].tolist() == top.indices.tolist()
    torch.testing.assert_close(result.top_probs[0, 1].double(), top.values, rtol=1e-4, atol=1e-6)


def test_target_rank_and_probability_agree_with_the_distribution():
    model = tiny_model("llama")
    result = logit_lens(model, PROMPTS, "e", top_k=model.d_vocab)  # full ranking kept
    target = single_token_id(model, "e")
    where = (result.top_ids == target).float().argmax(-1)  # position of the target in the full ranking
    assert torch.equal(where, result.target_rank)
    torch.testing.assert_close(result.top_probs.gather(-1, where[..., None])[..., 0], result.target_prob)


def test_all_positions_give_one_row_per_real_token():
    model = tiny_model("qwen2")
    result = logit_lens(model, PROMPTS, top_k=2)
    lengths = model.tokenize(PROMPTS).lengths
    assert result.row_prompt == [i for i, n in enumerate(lengths) for _ in range(n)]
    assert result.row_position == [p for n in lengths for p in range(n)]
    assert "".join(result.row_token[lengths[0] - 3:lengths[0]]) == "at."
    assert result.last_rows() == [lengths[0] - 1, lengths[0] + lengths[1] - 1]


def test_summary_figures_and_round_trip(tmp_path):
    result = logit_lens(tiny_model("gpt2"), PROMPTS, "a")
    summary = result.summary()
    assert [e["layer"] for e in summary["layers"]] == result.layer_labels
    assert all(len(e["top"]) == 5 and "target_rank" in e for e in summary["layers"])
    assert set(result.figures()) == {"lens_heatmap", "target_rank"}
    again = load_run(result.save(tmp_path / "run"))
    assert isinstance(again, LensResult) and again.summary()["layers"] == summary["layers"]


def test_bad_lens_input_is_refused(tmp_path, capsys):
    model = tiny_model("llama")
    with pytest.raises(ValueError, match="not a single token"):
        logit_lens(model, PROMPTS, " Paris")
    with pytest.raises(ValueError, match="either --target or --target-id"):
        LensConfig(target="a", target_id=3).validate()
    with pytest.raises(ValueError, match="empty prompt"):
        logit_lens(model, ["fine", ""])
    assert main(["lens", "--model", "nowhere-model", "--prompt", ""]) == 2
    assert "--prompt is empty" in capsys.readouterr().err


def test_cli_lens_prints_layers(tmp_path, capsys, tiny_llama_folder):
    folder = tiny_llama_folder
    n_layers = AutoConfig.from_pretrained(folder).num_hidden_layers
    assert main(["lens", "--model", str(folder), "--prompt", "The cat", "--target", "a", "--json",
                 "--out", str(tmp_path / "run")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["layers"]) == n_layers + 1 and len(printed["layers"][0]["top"]) == 5
    assert (tmp_path / "run" / "figures" / "lens_heatmap.html").is_file()
