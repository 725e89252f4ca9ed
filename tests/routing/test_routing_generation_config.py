"""--generation-config: the continuations from our neutral config, or from the checkpoint's
generation_config as the authors' code generates them (HF `generate(do_sample=False)`)."""

from __future__ import annotations

import pytest
import torch

from interp.routing.baseline import greedy_continuations
from tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["how to bake a cake", "tell me a story", "abc abc abc"]


@pytest.fixture(scope="module")
def penalised():
    model = tiny_model("qwen2")
    model.hf.generation_config.repetition_penalty = 3.0  # as hub checkpoints ship one (Qwen2.5: 1.05)
    return model


def test_the_model_config_generates_as_hf_does_with_the_checkpoints_options(penalised):
    model = penalised
    ours = model.generate(PROMPTS, max_new_tokens=8, sampling="model", stop_at_eos=False)
    neutral = model.generate(PROMPTS, max_new_tokens=8, stop_at_eos=False)
    batch = model._as_batch(PROMPTS, False)
    tok = model.tokenizer
    with torch.no_grad():  # the authors' call: the checkpoint's config, greedy, nothing else set
        reference = model.hf.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                      max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                      pad_token_id=tok.pad_token_id)
    assert torch.equal(ours.new_tokens, reference[:, batch.input_ids.shape[1]:])
    assert not torch.equal(ours.new_tokens, neutral.new_tokens)  # the penalty changes the greedy tokens
    assert model.hf.generation_config.repetition_penalty == 3.0  # the checkpoint's config is left as it was
    with pytest.raises(ValueError, match="sampling must be one of"):
        model.generate(PROMPTS, max_new_tokens=2, sampling="hub")


def test_routing_continuations_follow_the_option(penalised):
    neutral, _ = greedy_continuations(penalised, PROMPTS, chat=True)
    inherited, _ = greedy_continuations(penalised, PROMPTS, chat=True, generation_config="model")
    plain = tiny_model("qwen2")  # no penalty in its config: both options agree
    assert greedy_continuations(plain, PROMPTS, chat=True, generation_config="model")[0] == \
        greedy_continuations(plain, PROMPTS, chat=True)[0] == neutral
    assert inherited != neutral
