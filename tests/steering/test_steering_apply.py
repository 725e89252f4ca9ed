"""Steering vectors applied through the engine (steering/apply.py) and the CLI spec syntax."""

import pytest
import torch
from tiny import tiny_model

from interp.arch.spec import unembed_weight
from interp.engine.edits import Add
from steering import SteeringVector, VectorUse, ablation_edits, parse_vector_spec, steering_edits

PROMPTS = ["The cat sat", "Hello world, how are"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _unembed_vector(model, token: int) -> SteeringVector:
    direction = unembed_weight(model.spec, model.hf)[token].detach().clone()  # [d_model]
    return SteeringVector.from_tensor(direction, layers=[model.n_layers - 1], model=model)


def test_alpha_zero_gives_bit_identical_generations(model):
    v = SteeringVector.from_tensor(torch.randn(2, 64), layers=[0, 2], model=model)
    plain = model.generate(PROMPTS, max_new_tokens=6, return_logits=True)
    edits = steering_edits(model, [VectorUse(v, alpha=0.0)])
    assert len(edits) == 2
    steered = model.generate(PROMPTS, edits=edits, max_new_tokens=6, return_logits=True)
    assert torch.equal(plain.sequences, steered.sequences)
    assert torch.equal(plain.logits, steered.logits)


def test_unembedding_direction_at_last_layer_makes_that_token_the_argmax(model):
    token = 77
    plain = model.forward(PROMPTS)[:, -1]  # [b, vocab]
    assert (plain.argmax(-1) != token).all()
    edits = steering_edits(model, [VectorUse(_unembed_vector(model, token), alpha=200.0)])
    assert (model.forward(PROMPTS, edits=edits)[:, -1].argmax(-1) == token).all()
    out = model.generate(PROMPTS, edits=edits, max_new_tokens=4)
    assert (out.new_tokens == token).all()


@pytest.mark.parametrize("use_cache", [True, False])
def test_prompt_only_and_generated_only_positions(model, use_cache):
    token, steps = 77, 5
    vector = _unembed_vector(model, token)
    plain = model.generate(PROMPTS, max_new_tokens=steps, use_cache=use_cache)

    def run(positions):
        edits = steering_edits(model, [VectorUse(vector, alpha=200.0, positions=positions)])
        return model.generate(PROMPTS, edits=edits, max_new_tokens=steps, use_cache=use_cache).new_tokens

    # prompt only: the prefill's last position picks the token, later steps are unsteered
    prompt_only = run("prompt")
    assert (prompt_only[:, 0] == token).all()
    continued = model.generate([p + model.tokenizer.decode([token]) for p in PROMPTS], max_new_tokens=steps - 1,
                               use_cache=use_cache)
    assert torch.equal(prompt_only[:, 1:], continued.new_tokens)
    # generated only: the first token is the unsteered one, every later step is steered
    generated_only = run("generated")
    assert torch.equal(generated_only[:, 0], plain.new_tokens[:, 0])
    assert (generated_only[:, 1:] == token).all()
    assert (run("all") == token).all()


def test_relative_alpha_scales_with_the_residual_norm(model):
    v = SteeringVector.from_tensor(torch.randn(64), layers=[1], model=model)
    site = "blocks.1.hook_resid_post"
    _, plain = model.run_with_cache(PROMPTS[:1], [site])
    _, steered = model.run_with_cache(PROMPTS[:1], [site], edits=steering_edits(
        model, [VectorUse(v, alpha=0.5, relative=True)]))
    delta = steered[site][0] - plain[site][0]  # [p, d]
    assert torch.allclose(delta.norm(dim=-1), 0.5 * plain[site][0].norm(dim=-1), rtol=1e-4)


def test_several_vectors_at_once_equal_the_hand_written_edits(model):
    a = SteeringVector.from_tensor(torch.randn(64), layers=[0], model=model)
    b = SteeringVector.from_tensor(torch.randn(64), layers=[2], model=model, site="ffn")
    edits = steering_edits(model, [VectorUse(a, alpha=2.0), VectorUse(b, alpha=-1.5)])
    manual = [Add("blocks.0.hook_resid_post", vector=a.vectors[0], alpha=2.0),
              Add("blocks.2.hook_mlp_out", vector=b.vectors[2], alpha=-1.5)]
    assert torch.equal(model.forward(PROMPTS, edits=edits), model.forward(PROMPTS, edits=manual))
    assert not torch.equal(model.forward(PROMPTS, edits=edits), model.forward(PROMPTS))


def test_one_layer_vector_applies_at_the_layers_asked_for(model):
    v = SteeringVector.from_tensor(torch.randn(64), layers=[1], model=model)
    edits = steering_edits(model, [VectorUse(v, layers=[0, 2])])
    assert [e.site for e in edits] == ["blocks.0.hook_resid_post", "blocks.2.hook_resid_post"]
    two = SteeringVector.from_tensor(torch.randn(2, 64), layers=[0, 1], model=model)
    with pytest.raises(ValueError, match="no direction for layers \\[2\\]"):
        steering_edits(model, [VectorUse(two, layers=[2])])


def test_ablation_removes_the_direction_from_every_residual(model):
    direction = torch.randn(64)
    sites = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    _, plain = model.run_with_cache(PROMPTS, sites)
    _, ablated = model.run_with_cache(PROMPTS, sites, edits=ablation_edits(model, direction))
    unit = direction / direction.norm()
    mask = plain.attention_mask.bool()
    for site in sites:
        before = (plain[site] @ unit)[mask].abs().max()
        after = (ablated[site] @ unit)[mask].abs().max()
        assert before > 0.01 and after < 1e-4 * before.clamp_min(1.0)


def test_ablation_of_a_multi_layer_vector_needs_a_layer(model):
    v = SteeringVector.from_tensor(torch.randn(2, 64), layers=[0, 1], model=model)
    with pytest.raises(ValueError, match="say which direction"):
        ablation_edits(model, v)
    assert len(ablation_edits(model, v, layer=1)) == 1 + 2 * model.n_layers


def test_scale_mask_multiplies_only_the_selected_coordinates(model):
    mask = torch.zeros(64)
    mask[[3, 10]] = torch.tensor([1.0, -0.5])
    v = SteeringVector({1: mask}, site="ffn", kind="scale", method="austeer")
    site = "blocks.1.hook_mlp_out"
    _, plain = model.run_with_cache(PROMPTS[:1], [site])
    _, steered = model.run_with_cache(PROMPTS[:1], [site], edits=steering_edits(model, [VectorUse(v, alpha=4.0)]))
    x, y = plain[site][0], steered[site][0]  # [p, 64]
    assert torch.allclose(y[:, 3], 5.0 * x[:, 3]) and torch.allclose(y[:, 10], -1.0 * x[:, 10])
    others = [i for i in range(64) if i not in (3, 10)]
    assert torch.equal(y[:, others], x[:, others])


def test_bad_alpha_and_positions_are_refused(model):
    v = SteeringVector.from_tensor(torch.randn(64), layers=[1], model=model)
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        steering_edits(model, [VectorUse(v, alpha=float("nan"))])
    with pytest.raises(ValueError, match="positions must be one of"):
        steering_edits(model, [VectorUse(v, positions="middle")])


@pytest.mark.parametrize("spec, expected", [
    ("v.safetensors", ("v.safetensors", None, 1.0)),
    ("v.safetensors:4", ("v.safetensors", None, 4.0)),
    ("dir/v.safetensors@8,10:-2.5", ("dir/v.safetensors", [8, 10], -2.5)),
    ("v.safetensors@3-5", ("v.safetensors", [3, 4, 5], 1.0)),
])
def test_vector_spec_syntax(spec, expected):
    path, layers, alpha = parse_vector_spec(spec)
    assert (str(path), layers, alpha) == expected


@pytest.mark.parametrize("spec, message", [
    ("v.safetensors:strong", "is not a number"),
    ("v.safetensors@x:2", "bad layers"),
    ("v.safetensors@5-3", "bad layer range"),
    ("v.safetensors:inf", "must be finite"),
])
def test_bad_vector_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_vector_spec(spec)
