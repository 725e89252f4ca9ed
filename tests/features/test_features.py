"""SAE features as steering and attribution (`interp.features`): each checked by an identity
(decoder-row arithmetic, DLA sums, first-order AtP) or a planted mechanism."""

from __future__ import annotations

import pytest
import torch
from sae_fixtures import random_sae
from tiny import tiny_model

from interp.arch.spec import get_module
from interp.dla.directions import token_direction
from interp.engine.edits import Add, Scale
from interp.features.attribution import feature_atp, feature_dla, logit_effect
from interp.features.steer import FeatureEdit, decoder_vector, feature_edits, parse_ablations, parse_feature_spec

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["hello world, again", "hi there", "abc"]


def _attached(family: str, site: str, **kw):
    model = tiny_model(family)
    return model, model.attach_sae(random_sae(model.d_model, site, **kw))


def test_feature_specs_parse_and_refuse():
    assert parse_feature_spec("12:+8") == FeatureEdit(12, "add", 8.0)
    assert parse_feature_spec("12:-2.5") == FeatureEdit(12, "add", -2.5)
    assert parse_feature_spec("3=4") == FeatureEdit(3, "clamp", 4.0)
    assert parse_feature_spec("3*0.5") == FeatureEdit(3, "scale", 0.5)
    assert parse_ablations(["1,2", "7"]) == [FeatureEdit(1, "ablate"), FeatureEdit(2, "ablate"), FeatureEdit(7, "ablate")]
    for bad in ("x:+1", "12", "12:+", "12:nan", "-1:+2"):
        with pytest.raises(ValueError, match="feature spec"):
            parse_feature_spec(bad)
    with pytest.raises(ValueError, match="indices"):
        parse_ablations(["1,a"])
    with pytest.raises(ValueError, match="out of range"):
        feature_edits("blocks.1.hook_resid_post", 96, [FeatureEdit(96, "add", 1.0)])


def test_adding_a_feature_equals_adding_its_decoder_row_and_the_exported_vector():
    from steering.apply import VectorUse, steering_edits

    site = "blocks.1.hook_resid_post"
    model, att = _attached("llama", site)
    f, alpha = 7, 6.0
    steered = model.forward(PROMPTS, edits=feature_edits(site, 96, [FeatureEdit(f, "add", alpha)]))
    by_row = model.forward(PROMPTS, edits=[Add(site, vector=att.sae.W_dec[f].detach(), alpha=alpha)])
    vector = decoder_vector(model, att, f)
    model.detach_sae()
    by_vector = model.forward(PROMPTS, edits=steering_edits(model, [VectorUse(vector, alpha=alpha)]))
    torch.testing.assert_close(steered, by_row, rtol=0, atol=1e-5)
    torch.testing.assert_close(steered, by_vector, rtol=0, atol=1e-5)
    assert (steered - model.forward(PROMPTS)).abs().max() > 1e-2
    assert vector.site == "layer" and vector.layers == [1]


def test_exported_vector_round_trips_through_llama_cpp_gguf(tmp_path):
    from steering.gguf_io import export_gguf
    from steering.vectors import SteeringVector

    model, att = _attached("llama", "blocks.2.hook_resid_pre")
    vector = decoder_vector(model, att, 3)
    assert vector.layers == [1]  # resid_pre of layer 2 is resid_post of layer 1
    back = SteeringVector.load(export_gguf(vector, tmp_path / "f3.gguf"))
    torch.testing.assert_close(back.vectors[1], att.sae.W_dec[3].detach().float(), rtol=0, atol=0)


def test_clamp_and_ablate_set_the_activation():
    site = "blocks.1.hook_resid_post"
    model, _ = _attached("llama", site)
    name = f"{site}.hook_sae_acts_post"
    edits = feature_edits(site, 96, [FeatureEdit(4, "clamp", 3.5), FeatureEdit(9, "ablate"), FeatureEdit(11, "scale", 2.0)],
                          positions="last")
    _, clean = model.run_with_cache(PROMPTS, [name], positions="last")
    _, cache = model.run_with_cache(PROMPTS, [name], positions="last", edits=edits)
    assert torch.all(cache[name][:, 4] == 3.5) and torch.all(cache[name][:, 9] == 0)
    torch.testing.assert_close(cache[name][:, 11], 2 * clean[name][:, 11])


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_logit_effect_tops_are_the_tokens_a_dominant_feature_promotes(family):
    site = "blocks.2.hook_resid_post"  # the last layer: the final norm reads it directly
    model, att = _attached(family, site)
    effect = logit_effect(model, att, 5, k=5)
    huge = model.forward(PROMPTS, edits=feature_edits(site, 96, [FeatureEdit(5, "add", 1e5)]))[:, -1]
    norm_bias = getattr(model.hf.get_output_embeddings(), "bias", None)
    ln_bias = getattr(get_module(model.hf, model.spec.final_norm), "bias", None)
    if ln_bias is not None:  # LayerNorm's bias adds the same logits whatever the feature: not its effect
        huge = huge - ln_bias @ model.hf.get_output_embeddings().weight.T
    assert norm_bias is None
    for row in huge:
        assert [t for t, _, _ in effect.top] == row.topk(5).indices.tolist()
        assert [t for t, _, _ in effect.bottom] == (-row).topk(5).indices.tolist()


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_feature_dla_sums_to_the_site_and_to_the_logit_difference(family):
    model = tiny_model(family)
    site = f"blocks.{model.n_layers - 1}.hook_resid_post"
    att = model.attach_sae(random_sae(model.d_model, site))
    direction = token_direction(model, "a", "b")
    dla = feature_dla(model, PROMPTS, att, direction)
    torch.testing.assert_close(dla.features.sum(-1) + dla.b_dec + dla.error, dla.site_total, rtol=0, atol=1e-5)  # float32 captures
    logits = model.forward(PROMPTS)[:, -1].double()
    ids = model.tokenizer.convert_tokens_to_ids(["a", "b"])
    value = logits[:, ids[0]] - logits[:, ids[1]]
    if family == "gemma2":  # soft-capped logits: compare the pre-cap value
        cap = model.config.final_logit_softcapping
        value = torch.atanh(logits[:, ids[0]] / cap) * cap - torch.atanh(logits[:, ids[1]] / cap) * cap
    torch.testing.assert_close(dla.site_total + dla.bias, value, rtol=0, atol=2e-4)


def test_feature_atp_is_the_first_order_effect_of_ablating_each_feature():
    site = "blocks.1.hook_resid_post"
    model, att = _attached("llama", site)
    direction = token_direction(model, "a", "b")
    scores = feature_atp(model, PROMPTS, att, direction)
    eps = 1e-3
    ids = model.tokenizer.convert_tokens_to_ids(["a", "b"])

    def value(edits=()):
        logits = model.forward(PROMPTS, edits=edits)[:, -1].double()
        return logits[:, ids[0]] - logits[:, ids[1]]
    base = value()
    for f in scores.abs().sum(0).topk(3).indices.tolist():
        moved = value([Scale(f"{site}.hook_sae_acts_post", dims=[f], factor=1 - eps)]) - base
        torch.testing.assert_close(moved / eps, scores[:, f], rtol=5e-2, atol=2e-3)
    corrupt = ["jello world, again", "hi thera", "abd"]
    patched = feature_atp(model, PROMPTS, att, direction, corrupt=corrupt)
    assert patched.shape == scores.shape and not torch.allclose(patched, scores)
    with pytest.raises(ValueError, match="same token lengths"):
        feature_atp(model, PROMPTS, att, direction, corrupt=["x", "y", "z"])
