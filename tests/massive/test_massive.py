"""Massive activations (interp.massive) on tiny models with planted massive values, and perplexity."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.cli import main
from interp.massive.activations import MassiveConfig, massive_activations, run_massive
from interp.metrics.perplexity import perplexity, sample_texts, token_nll
from interp.runs.results import load_run

PROMPTS = ["hello there world", "abc", "a somewhat longer prompt to pad the others"]
PPL_TEXTS = ["some text to score", "more text here", "and a third line of it"]


@pytest.fixture(scope="module")
def mlp_bias_plant():
    """GPT-2: layer 1's MLP output bias writes 5000 into dim 5 at every token."""
    model = tiny_model("gpt2")
    with torch.no_grad():
        model.hf.transformer.h[1].mlp.c_proj.bias[5] = 5000.0
    return model


@pytest.fixture(scope="module")
def neuron_plant():
    """Llama with MLP biases: neuron 17 of layer 2 is constant (silu(10) * 1) and writes
    300 per unit into dim 9, i.e. about 3000 at every token from layer 2 on."""
    model = tiny_model("llama", mlp_bias=True)
    mlp = model.hf.model.layers[2].mlp
    with torch.no_grad():
        mlp.gate_proj.weight[17] = 0.0
        mlp.gate_proj.bias[17] = 10.0
        mlp.up_proj.weight[17] = 0.0
        mlp.up_proj.bias[17] = 1.0
        mlp.down_proj.weight[9, 17] = 300.0
    return model


def test_planted_mlp_constant_is_found_at_its_layer_dim_and_sublayer(mlp_bias_plant):
    result = massive_activations(mlp_bias_plant, PROMPTS)
    assert result.first_massive_layer == 1
    assert result.massive_dims == [5]
    assert result.is_massive() == [False, True, True]
    assert result.origin[0]["layer"] == 1 and result.origin[0]["sublayer"] == "mlp"
    assert result.origin[0]["bias_write"] == pytest.approx(5000.0, rel=1e-4)
    top = result.top[result.top["layer"] == 1]
    assert set(top["dim"]) == {5} and (top["value"] > 4900).all()


def test_planted_neuron_is_named_as_the_top_neuron(neuron_plant):
    result = massive_activations(neuron_plant, PROMPTS)
    assert result.first_massive_layer == 2
    assert result.massive_dims == [9]
    assert result.origin[0]["layer"] == 2 and result.origin[0]["sublayer"] == "mlp"
    assert result.origin[0]["top_neurons"][0]["neuron"] == 17
    assert result.origin[0]["top_neurons"][0]["write"] == pytest.approx(3000.0, rel=1e-3)
    tokens = result.layer_tokens[2]  # every token carries the constant
    assert {t["position"] for t in tokens} == set(range(max(len(p) for p in PROMPTS) + 1))


def test_planted_attention_bias_is_named_as_an_attention_origin():
    model = tiny_model("gpt2")
    with torch.no_grad():
        model.hf.transformer.h[0].attn.c_proj.bias[11] = -4000.0
    result = massive_activations(model, PROMPTS)
    assert result.first_massive_layer == 0 and result.massive_dims == [11]
    assert result.origin[0]["layer"] == 0 and result.origin[0]["sublayer"] == "attn"
    assert result.groups[0]["dim_means"][0] == pytest.approx(-4000.0, rel=1e-3)


def test_dims_appearing_at_different_layers_form_separate_groups():
    model = tiny_model("gpt2")
    with torch.no_grad():
        model.hf.transformer.h[0].mlp.c_proj.bias[5] = 3000.0
        model.hf.transformer.h[2].attn.c_proj.bias[20] = -4000.0
    result = massive_activations(model, PROMPTS, intervene=True, ppl_texts=PPL_TEXTS)
    assert [(g["first_layer"], g["dims"]) for g in result.groups] == [(0, [5]), (2, [20])]
    assert [(o["layer"], o["sublayer"]) for o in result.origin] == [(0, "mlp"), (2, "attn")]
    assert result.massive_dims == [5, 20] and result.first_massive_layer == 0
    assert result.ppl["edits"] == [{"layer": 0, "dims": [5]}, {"layer": 2, "dims": [20]}]


def test_neuron_writes_through_a_post_mlp_norm_add_up_to_the_mlp_write():
    model = tiny_model("gemma3")  # Gemma: RMS norm after the MLP, weight applied as (1 + w)
    with torch.no_grad():
        model.hf.model.layers[1].post_feedforward_layernorm.weight[7] = 3000.0
    result = massive_activations(model, PROMPTS, ratio_threshold=100.0)
    origin = next(o for o in result.origin if 7 in o["dims"])
    assert origin["layer"] == 1 and origin["sublayer"] == "mlp"
    assert origin["neurons_write_total"] == pytest.approx(origin["write"], rel=1e-4)


def test_thresholds_are_configurable(mlp_bias_plant):
    strict = massive_activations(mlp_bias_plant, PROMPTS, abs_threshold=1e5)
    assert strict.first_massive_layer is None and strict.origin is None
    assert "no layer passes" in strict.notes[0]
    ratio_only = massive_activations(mlp_bias_plant, PROMPTS, abs_threshold=0.0, ratio_threshold=1.0)
    assert ratio_only.first_massive_layer == 0  # every entry of layer 0 passes a ratio of 1


def test_statistics_do_not_depend_on_padding(neuron_plant):
    config = MassiveConfig()
    together = run_massive(neuron_plant, PROMPTS, config, batch_size=3)
    alone = run_massive(neuron_plant, PROMPTS, config, batch_size=1)
    torch.testing.assert_close(together.median_abs, alone.median_abs)
    torch.testing.assert_close(together.max_abs, alone.max_abs)
    assert together.layer_tokens == alone.layer_tokens


def test_zeroing_hurts_and_mean_setting_preserves_perplexity(neuron_plant):
    result = massive_activations(neuron_plant, PROMPTS, intervene=True, ppl_texts=PPL_TEXTS)
    ppl = result.ppl
    assert ppl["edits"] == [{"layer": 2, "dims": [9]}] and ppl["massive_tokens"] > 0
    assert ppl["mean"] == pytest.approx(ppl["original"], rel=1e-3)  # the planted value is a constant
    assert abs(math.log(ppl["zero"] / ppl["original"])) > 0.01


def test_result_round_trip_and_figures(mlp_bias_plant, tmp_path):
    result = massive_activations(mlp_bias_plant, PROMPTS, intervene=True, ppl_texts=PPL_TEXTS)
    assert set(result.figures()) == {"massive_bars", "per_sequence", "origin", "ppl_table"}
    again = load_run(result.save(tmp_path / "run"))
    assert again.summary() == result.summary()
    assert (tmp_path / "run" / "figures" / "massive_bars.html").is_file()


def test_perplexity_excludes_pads_and_matches_a_hand_computation(neuron_plant):
    one = perplexity(neuron_plant, PPL_TEXTS, batch_size=1)
    batched = perplexity(neuron_plant, PPL_TEXTS, batch_size=3)
    assert one.ppl == pytest.approx(batched.ppl, rel=1e-5)
    batch = neuron_plant.tokenize(PPL_TEXTS[:1])
    logits = neuron_plant.forward(batch)[0]
    ids = batch.input_ids[0]
    manual = -torch.log_softmax(logits[:-1], -1).gather(1, ids[1:, None]).mean()
    nll, mask = token_nll(neuron_plant, batch)
    assert nll[mask].mean().item() == pytest.approx(manual.item(), rel=1e-5)


def test_shipped_ppl_sample_is_readable():
    texts = sample_texts()
    assert len(texts) == 12 and all(len(t) > 200 for t in texts)


def test_cli_massive_json(tmp_path, neuron_plant, capsys):
    folder = tmp_path / "model"
    save_tiny(neuron_plant, folder)
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    code = main(["massive", "--model", str(folder), "--prompts", str(prompts), "--out", str(tmp_path / "run"),
                 "--intervene", "--ppl-tokens", "32", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["first_massive_layer"] == 2
    assert summary["origin"][0]["sublayer"] == "mlp"
    assert set(summary["ppl"]) >= {"original", "zero", "mean"}
    assert set(summary["layers"][0]) >= {"layer", "max_abs", "median_abs", "ratio", "dims", "tokens", "is_massive"}


def test_cli_massive_refuses_ppl_file_without_intervene(capsys):
    code = main(["massive", "--model", "does-not-matter", "--ppl-file", "x.txt"])
    assert code == 2
    assert "only used with --intervene" in capsys.readouterr().err
