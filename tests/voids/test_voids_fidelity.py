"""The voids options that reproduce the authors' code (manishemirani/void_in_language_models,
lac.py; docs/fidelity/voids.md): norms in the model's dtype, the chat template whenever the
tokenizer has one, the response-row count, and maps of the skipping run."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.voids.maps import VoidConfig, run_voids
from interp.voids.rule import VoidTracker, lac_active, norm_deltas

PROMPTS = ["hello there", "The quick brown fox", "abc"]


def _sites(model) -> list[str]:
    return ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]


def _paper_rule_bf16(hidden: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """lac.py by hand in bf16: [b, p] hidden norms per layer, delta against the previous norm,
    threshold (max - min of the earlier deltas) * alpha, layer 0 against its own delta
    (batch 1), void iff delta < threshold. hidden: L + 1 tensors [b, p, d] bf16."""
    previous = torch.linalg.norm(hidden[0], dim=-1)
    deltas, active = [], []
    for h in hidden[1:]:
        norm = torch.linalg.norm(h, dim=-1)
        delta = norm - previous
        earlier = torch.stack(deltas) if deltas else delta[None]
        threshold = (earlier.max(0).values - earlier.min(0).values) * alpha
        active.append(~torch.less(delta, threshold))
        deltas.append(delta)
        previous = norm
    return torch.stack(active, -1)


def test_model_dtype_norms_follow_the_paper_rule_in_bf16():
    model = tiny_model("llama")
    model.hf.to(torch.bfloat16)
    alpha = 0.8
    for prompt in PROMPTS[:2]:  # batch 1, as the paper runs
        _, cache = model.run_with_cache([prompt], _sites(model), logits=None, dtype=torch.bfloat16)
        hidden = [cache[s] for s in _sites(model)]
        assert hidden[0].dtype == torch.bfloat16
        tracker = VoidTracker(model.n_layers, alpha, layer0="sign", norm_dtype="model")
        model.forward([prompt], hooks=tracker.hooks())
        record = tracker.passes[0]
        assert torch.equal(record.active, _paper_rule_bf16(hidden, alpha))
        bf16_norms = torch.stack([torch.linalg.norm(h, dim=-1) for h in hidden], -1).float()
        assert torch.equal(record.norms, bf16_norms)  # the norms are the bf16 ones, stored as float32
        ours = VoidTracker(model.n_layers, alpha, layer0="sign")
        model.forward([prompt], hooks=ours.hooks())
        assert not torch.equal(ours.passes[0].norms, bf16_norms)  # float32 norms of the same states differ
    with pytest.raises(ValueError, match="norm_dtype"):
        VoidTracker(2, 0.8, norm_dtype="float8")


def test_paper_template_applies_the_chat_template_whenever_there_is_one():
    model = tiny_model("llama")
    plain = run_voids(model, PROMPTS[:1], VoidConfig(max_new_tokens=2))
    chat = run_voids(model, PROMPTS[:1], VoidConfig(max_new_tokens=2), chat=True)
    paper = run_voids(model, PROMPTS[:1], VoidConfig(max_new_tokens=2, template="paper"))
    assert paper.prompt_tokens == chat.prompt_tokens != plain.prompt_tokens
    assert torch.equal(paper.prompt_active, chat.prompt_active)
    assert paper.meta.config["chat"] is True and plain.meta.config["chat"] is False
    assert paper.summary()["chat_template"] is True and paper.summary()["norm_dtype"] == "float32"
    template, model.tokenizer.chat_template = model.tokenizer.chat_template, None  # the tokenizer may be shared
    try:  # no template: the paper option changes nothing
        again = run_voids(model, PROMPTS[:1], VoidConfig(max_new_tokens=2, template="paper"))
    finally:
        model.tokenizer.chat_template = template
    assert again.prompt_tokens == plain.prompt_tokens and again.meta.config["chat"] is False


def test_max_new_tokens_n_plus_one_gives_the_papers_n_response_rows():
    model = tiny_model("llama")
    n = 4  # the paper's max_seq_length: n decode steps after the prefill
    result = run_voids(model, PROMPTS, VoidConfig(max_new_tokens=n + 1))
    new = model.generate(PROMPTS, max_new_tokens=n + 1).new_tokens  # [b, n + 1]
    eos = model.tokenizer.eos_token_id
    for row in range(len(PROMPTS)):
        ids = new[row].tolist()
        ended = ids.index(eos) if eos in ids else len(ids)  # a step after EOS is dropped
        assert int(result.response_mask[row].sum()) == min(n, ended)
    assert int(result.response_mask.sum(1).max()) == n


def test_skip_paper_maps_are_those_of_the_skipping_run():
    model = tiny_model("llama")
    alpha, steps = 1.5, 5
    paper = run_voids(model, PROMPTS, VoidConfig(alpha=alpha, max_new_tokens=steps, skip="paper"))
    plain = run_voids(model, PROMPTS, VoidConfig(alpha=alpha, max_new_tokens=steps))
    assert paper.generated != plain.generated  # skipping changes the text, hence the response maps
    detector = VoidTracker(model.n_layers, alpha)
    for row, prompt in enumerate(PROMPTS):
        batch = model.tokenize([prompt])
        skipper = VoidTracker(model.n_layers, alpha, paper_skip=True)
        gen = model.generate(batch, hooks=skipper.hooks(), max_new_tokens=steps)
        n_rows = int(paper.response_mask[row].sum())
        # the residual stream is that of the plain model on the skipping run's tokens
        ids = torch.cat([batch.input_ids, gen.new_tokens[:, :n_rows]], 1)
        detector.reset()
        model.forward(type(batch)(ids, torch.ones_like(ids), [prompt]), hooks=detector.hooks())
        norms = detector.passes[0].norms[0, batch.input_ids.shape[1]:]  # [n_rows, L + 1]
        assert torch.equal(paper.response_active[row, :n_rows], lac_active(norm_deltas(norms), alpha))


def test_eval_decides_in_the_model_dtype_and_records_the_template():
    from interp.voids.evaluation import VoidEvalConfig, evaluate_voids
    from interp.voids.mcq import load_questions, mc_prompt

    model = tiny_model("llama")
    model.hf.to(torch.bfloat16)
    config = VoidEvalConfig(alphas=[0.8], limit=2, norm_dtype="model", template="paper", layer0="sign")
    result = evaluate_voids(model, config, batch_size=1)
    assert result.meta.config["chat"] is True and result.meta.config["norm_dtype"] == "model"
    active = []
    for question in load_questions(config.task, config.limit):
        tracker = VoidTracker(model.n_layers, 0.8, layer0="sign", norm_dtype="model")
        model.forward(model.tokenize([mc_prompt(question, True)], chat=True), hooks=tracker.hooks())
        active.append(tracker.passes[0].active[0])  # [P, L], batch 1: no pads
    torch.testing.assert_close(result.per_layer_prompt[0], torch.cat(active).float().mean(0))
