"""Sampling is plain softmax(logits / T) unless the user opts into the checkpoint's knobs.

The reference is a hand-written loop: full forward pass, logits of the last position,
EOS masked (stop_at_eos=False), optional repetition penalty / top-k / top-p as a checkpoint
would ask for, then `torch.multinomial` after `torch.manual_seed(seed)`, the global
generator `generate` seeds and transformers samples from.
"""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model
from transformers import GenerationConfig

from interp.engine.sampling import NEUTRAL, describe

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPT, T, STEPS = "hello there", 1.3, 8
SHIPPED = dict(top_k=5, top_p=0.8, repetition_penalty=1.7)


@pytest.fixture
def model():
    return tiny_model("llama")


def _by_hand(model, seed: int, top_k: int = 0, top_p: float = 1.0, penalty: float = 1.0) -> list[int]:
    ids = model.tokenize([PROMPT]).input_ids  # [1, P]
    eos = model.tokenizer.eos_token_id
    torch.manual_seed(seed)
    out = []
    for _ in range(STEPS):
        logits = model.hf(input_ids=ids).logits[:, -1].float()  # [1, V]
        if penalty != 1.0:  # CTRL's repetition penalty over every token seen so far
            seen = logits.gather(1, ids)
            logits = logits.scatter(1, ids, torch.where(seen < 0, seen * penalty, seen / penalty))
        logits[:, eos] = -float("inf")
        logits = logits / T
        if top_k:
            logits[logits < logits.topk(top_k).values[:, -1:]] = -float("inf")
        if top_p < 1.0:  # drop the least likely tokens whose total mass stays within 1 - top_p
            ascending, order = logits.sort(-1)
            drop = ascending.softmax(-1).cumsum(-1) <= 1 - top_p
            drop[:, -1] = False
            logits[0, order[0, drop[0]]] = -float("inf")
        token = torch.multinomial(logits.softmax(-1), 1)  # [1, 1]
        out.append(int(token))
        ids = torch.cat([ids, token], 1)
    return out


def _sampled(model, seed: int, **kwargs) -> list[int]:
    gen = model.generate([PROMPT], temperature=T, seed=seed, max_new_tokens=STEPS, stop_at_eos=False, **kwargs)
    return gen.new_tokens[0].tolist()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_sampling_equals_plain_multinomial_over_the_whole_vocabulary(model, seed):
    with torch.inference_mode():
        expected = _by_hand(model, seed)
        truncated = _by_hand(model, seed, top_k=5)
    assert _sampled(model, seed) == expected
    assert expected != truncated or seed != 0  # the reference can tell a top-k cut apart


def test_checkpoint_knobs_are_ignored_by_default_and_honoured_on_request(model):
    model.hf.generation_config = GenerationConfig(**SHIPPED, no_repeat_ngram_size=2, min_p=0.05,
                                                  suppress_tokens=[5, 6], bos_token_id=1, eos_token_id=2)
    with torch.inference_mode():
        plain = [_by_hand(model, seed) for seed in range(3)]
    assert [_sampled(model, seed) for seed in range(3)] == plain
    model.hf.generation_config = GenerationConfig(**SHIPPED, bos_token_id=1, eos_token_id=2)
    with torch.inference_mode():
        shaped = [_by_hand(model, seed, SHIPPED["top_k"], SHIPPED["top_p"], SHIPPED["repetition_penalty"])
                  for seed in range(3)]
    assert shaped != plain
    assert [_sampled(model, seed, sampling="model") for seed in range(3)] == shaped
    assert model.hf.generation_config.top_k == 5  # the checkpoint's config is left as it was
    assert "top_k=5" in describe("model", T, None, model.hf.generation_config)


def test_every_neutral_knob_exists_in_this_transformers_and_bad_options_are_refused(model):
    known = vars(GenerationConfig())
    assert NEUTRAL["top_k"] == 0 and all(k in known for k in NEUTRAL)
    with pytest.raises(ValueError, match="sampling must be one of"):
        model.generate([PROMPT], sampling="checkpoint")
    with pytest.raises(ValueError, match="top_p"):
        model.generate([PROMPT], temperature=1.0, top_p=0.0)
    assert "neutral" in describe("neutral", 0.0, None) and "top-k" in describe("neutral", 1.0, 0.9)
