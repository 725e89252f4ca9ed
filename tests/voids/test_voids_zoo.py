"""LAC void detection on the offline zoo models: decode steps agree with one full pass,
skipping a layer for every token equals not running it, and the eval runs end to end."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.engine.skipping import SkipLayers
from interp.voids.evaluation import VoidEvalConfig, evaluate_voids
from interp.voids.rule import VoidTracker, lac_active, norm_deltas
from interp.voids.maps import VoidConfig, run_voids

pytestmark = pytest.mark.zoo
ALIASES = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]
PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module", params=ALIASES)
def model(request):
    from zoo_models import require

    require(request.param)
    return interp.load(request.param)


def test_decode_step_decisions_match_one_full_pass(model):
    chat = model.info.get("spec") != "gemma-3-270m"
    result = run_voids(model, [PROMPT], VoidConfig(alpha=0.8, max_new_tokens=8), chat=chat)
    used = result.layers_used_pct()
    assert 0 < used["prompt"] <= 100 and 0 < used["response"] <= 100
    assert result.prompt_active[result.prompt_mask][:, 0].all()  # layer 0 is never void by default
    batch = model.tokenize([PROMPT], chat=chat)
    steps = int(result.response_mask[0].sum())
    gen = model.generate(batch, max_new_tokens=8)
    ids = torch.cat([batch.input_ids, gen.new_tokens[:, :steps]], 1)
    tracker = VoidTracker(model.n_layers, 0.8)
    model.forward(type(batch)(ids, torch.ones_like(ids), [PROMPT]), hooks=tracker.hooks())
    full = tracker.passes[0].norms[0, batch.input_ids.shape[1]:]  # [steps, L + 1]
    cached = result.response_norms[0, :steps]
    assert torch.allclose(cached, full, rtol=1e-3, atol=1e-2)
    deltas = norm_deltas(full)
    margin = (deltas - 0.8 * _ranges(deltas)).abs() > 1e-2  # decisions far from the threshold
    assert torch.equal(result.response_active[0, :steps][margin], lac_active(deltas, 0.8)[margin])


def _ranges(deltas: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(deltas)
    for layer in range(1, deltas.shape[-1]):
        out[..., layer] = deltas[..., :layer].amax(-1) - deltas[..., :layer].amin(-1)
    return out


def test_skipping_every_token_of_a_layer_equals_not_running_it(model):
    layer = model.n_layers // 2
    batch = model.tokenize([PROMPT, "Hello"])
    every = torch.ones_like(batch.attention_mask, dtype=torch.bool)
    with SkipLayers(model, whole=[layer]) as skipping:
        whole = model.forward(batch)
    with SkipLayers(model, tokens={layer: every}):
        masked = model.forward(batch)
    real = batch.attention_mask.bool()
    assert skipping.layer_calls_skipped == 1
    assert torch.allclose(whole[real], masked[real], rtol=1e-4, atol=1e-3)


def test_eval_runs_and_reports_compute(model):
    chat = model.info.get("spec") != "gemma-3-270m"
    result = evaluate_voids(model, VoidEvalConfig(skip="real", alphas=[0.8], limit=4), chat=chat)
    summary = result.summary()
    assert 0.0 <= summary["accuracy"]["0.8"]["skip"] <= 1.0
    assert 0 <= summary["compute"]["0.8"]["layer_calls_skipped_frac"] < 1
    assert len(summary["per_layer_active"]["0.8"]["prompt"]) == model.n_layers
