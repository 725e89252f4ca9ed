"""Attention sinks and massive activations on the offline zoo models (slow; `-m zoo`).

Checks the direction of the papers' findings, not fixed numbers: trained models sink
on the first token in many heads, on natural text and on random tokens (Gu et al.), and
where massive activations exist, zeroing them hurts perplexity far more than setting
them to their mean (Sun et al.).
"""

from __future__ import annotations

import pytest

import interp
from interp.sinks.attention_edits import zerotuning
from interp.massive.activations import massive_activations
from interp.sinks.measure import default_prompts, sinks

pytestmark = pytest.mark.zoo
ALIASES = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]


def _load(alias: str):
    from zoo_models import require

    require(alias)
    return interp.load(alias, attn_implementation="eager")


@pytest.fixture(scope="module", params=ALIASES)
def model(request):
    return _load(request.param)


def test_trained_models_sink_on_the_first_token(model):
    result = sinks(model, default_prompts()[:4], tokens=32, n_random=2)
    assert result.sink_rate() > 30.0
    assert max(result.first_token_share_by_layer()) > 0.5
    assert result.sink_rate("random") > 30.0  # random tokens sink too (Gu et al.)


def test_zerotuning_gamma_zero_removes_the_sink_in_the_edited_heads(model):
    edits = zerotuning({l: None for l in range(model.n_layers)}, gamma=0.0)
    result = sinks(model, default_prompts()[:2], tokens=16, random_tokens=False, edits=edits)
    assert result.first_token_share_by_layer() == pytest.approx([0.0] * model.n_layers, abs=1e-6)


def test_zeroing_massive_activations_hurts_more_than_mean_setting(model):
    result = massive_activations(model, default_prompts()[:8], intervene=True, ppl_tokens=64)
    if result.first_massive_layer is None:
        pytest.skip(f"no massive activations by the default criterion (max ratio {result.summary()['max_ratio']:.0f})")
    ppl = result.ppl
    assert ppl["zero"] > ppl["original"]
    assert ppl["zero"] - ppl["original"] > 3 * abs(ppl["mean"] - ppl["original"])
    assert all(o["sublayer"] in ("attn", "mlp") for o in result.origin)
