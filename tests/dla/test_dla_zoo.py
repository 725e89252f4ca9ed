"""DLA and logit lens on the offline SmolLM2-135M-Instruct (zoo): identity, CLI == API, saved figures."""

from __future__ import annotations

import json

import pytest

import interp
from interp.cli import main
from interp.dla.attribution import dla
from interp.dla.lens import logit_lens

pytestmark = pytest.mark.zoo
ALIAS = "smollm2-135m-instruct"
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def model():
    from zoo_models import require

    require(ALIAS)
    return interp.load(ALIAS)


def test_smollm2_paris_vs_london_identity_and_cli_equals_api(model, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPT + "\n")
    out = tmp_path / "dla"
    assert main(["dla", "--model", ALIAS, "--prompts", str(prompts), "--target", " Paris", "--contrast", " London",
                 "--neurons", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = dla(model, [PROMPT], " Paris", " London", neurons=True)
    value = api.hf_value.abs().max().item()
    assert api.model_value.item() > 0  # the model prefers Paris
    assert api.sum_check <= 1e-4 * value
    assert printed["sum_check"] == pytest.approx(api.sum_check, abs=1e-9)
    assert printed["top"] == api.summary()["top"]
    assert printed["top_neurons"] == api.summary()["top_neurons"]
    for name in ("head_heatmap", "layer_bars", "top_neurons"):
        assert (out / "figures" / f"{name}.html").is_file()


def test_smollm2_lens_ends_on_paris(model):
    result = logit_lens(model, PROMPT, " Paris")
    assert result.final_layer_check < 1e-3
    assert result.summary()["target_rank_by_layer"][-1] == 0
