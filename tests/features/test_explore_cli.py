"""Feature dashboards (`interp.features.explore`) against the activations they summarise, and
the `steerlens sae ...` / `generate --sae` command line against the Python API."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from sae_fixtures import random_sae
from tiny import tiny_model

from interp.cli import main
from interp.features.explore import FeaturesConfig, FeaturesResult, explore_features
from interp.features.steer import FeatureEdit, feature_edits
from interp.runs.results import load_run

pytestmark = pytest.mark.usefixtures("one_thread")
SITE = "blocks.1.hook_resid_post"
PROMPTS = ["hello world, again", "hi there", "abc", "the cat sat on the mat", "zzz yyy", "a b c d e f g"]


def test_dashboards_equal_the_activations_they_summarise(tmp_path):
    model = tiny_model("llama")
    att = model.attach_sae(random_sae(64, SITE))
    config = FeaturesConfig(top_k=4, window=3, bins=5, logit_k=3, features="0-9,40", chunk=4,
                            skip_first=0)
    result = explore_features(model, PROMPTS, att, config)
    _, cache = model.run_with_cache(PROMPTS, [f"{SITE}.hook_sae_acts_post"])
    real = cache.attention_mask.bool()
    acts = cache[f"{SITE}.hook_sae_acts_post"]  # [N, P, d_sae]
    assert result.features == list(range(10)) + [40]
    assert result.n_tokens == int(real.sum())
    for row, f in enumerate(result.features):
        values = acts[..., f][real]
        firing = values[values > 0].sort(descending=True).values
        n = min(4, len(firing))
        torch.testing.assert_close(result.top_value[row, :n], firing[:n], rtol=0, atol=1e-6)
        assert int(result.hist_counts[row].sum()) == len(firing)
        torch.testing.assert_close(result.density[row], torch.tensor(len(firing) / values.numel()))
        for j in range(n):
            p, pos = int(result.top_prompt[row, j]), int(result.top_pos[row, j])
            tokens = cache.input_ids[p][real[p]]
            assert int(result.window_tokens[row, j, 3]) == int(tokens[pos])  # the centre: window = 3 before
            torch.testing.assert_close(result.window_acts[row, j, 3], acts[p][real[p]][pos, f], rtol=0, atol=1e-6)
            if pos >= 1:
                assert int(result.window_tokens[row, j, 2]) == int(tokens[pos - 1])
    result.save(tmp_path / "run")
    back = load_run(tmp_path / "run")
    assert isinstance(back, FeaturesResult) and torch.equal(back.top_value, result.top_value)
    vector = back.steering_vector(40)
    torch.testing.assert_close(vector.vectors[1], att.sae.W_dec[40].detach(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="out of range"):
        FeaturesConfig(features="0-200").feature_ids(96)
    skipped = explore_features(model, PROMPTS, att, dataclasses.replace(config, skip_first=1))
    assert skipped.n_tokens == result.n_tokens - len(PROMPTS) and not (skipped.top_pos == 0).any()


@pytest.fixture
def sae_folder(tmp_path):
    folder = tmp_path / "sae"
    random_sae(64, SITE).save_model(folder)
    return folder


def test_generate_with_feature_options_equals_the_api(tiny_llama_folder, sae_folder, capsys):
    import interp

    base = ["generate", "--model", str(tiny_llama_folder), "--prompt", "hello", "--max-new-tokens", "6", "--json",
            "--sae", str(sae_folder)]
    assert main([*base, "--feature", "3:+40", "--ablate-feature", "5,6", "--compare"]) == 0
    record = json.loads(capsys.readouterr().out)
    model = interp.load(str(tiny_llama_folder))
    model.attach_sae(sae_folder)
    edits = feature_edits(SITE, 96, [FeatureEdit(3, "add", 40.0), FeatureEdit(5, "ablate"), FeatureEdit(6, "ablate")])
    expected = model.generate(["hello"], edits=edits, max_new_tokens=6)
    assert record["steered"] == expected.texts[0]
    assert record["steered"] != record["unsteered"]
    assert main([*base[:-2], "--feature", "3:+1"]) == 2  # --feature needs --sae
    assert "need --sae" in capsys.readouterr().err
    assert main([*base, "--feature", "96:+1"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_sae_commands_write_runs_and_vectors(tiny_llama_folder, sae_folder, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    common = ["--model", str(tiny_llama_folder), "--sae", str(sae_folder)]
    assert main(["sae", "features", *common, "--prompts", str(prompts), "--top-k", "3", "--out",
                 str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["features"] == 96 and summary["tokens_read"] > 0
    assert isinstance(load_run(tmp_path / "run"), FeaturesResult)
    assert main(["sae", "logits", *common, "--feature", "2", "--k", "4", "--json"]) == 0
    logits = json.loads(capsys.readouterr().out)
    assert len(logits["top"]) == 4 and logits["top"][0]["logit"] >= logits["top"][-1]["logit"]
    out = tmp_path / "f2.safetensors"
    assert main(["sae", "export-vector", *common, "--feature", "2", "--out", str(out), "--gguf",
                 str(tmp_path / "f2.gguf")]) == 0
    from steering.vectors import SteeringVector

    assert SteeringVector.load(out).layers == [1] and (tmp_path / "f2.gguf").is_file()
    assert main(["sae", "logits", *common, "--feature", "500"]) == 2
    assert "out of range" in capsys.readouterr().err
