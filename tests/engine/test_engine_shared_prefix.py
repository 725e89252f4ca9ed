"""Captures with `shared_prefix=True` (the prompts' common beginning run once) equal whole passes."""

from __future__ import annotations

import functools

import pytest
import torch
from tiny import tiny_model

from interp.engine.edits import Add, Patch, ProjectOut, Scale, Set, Zero
from interp.engine.resume import StartAt
from interp.engine.shared_prefix import after_shared, common_prefix_length

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["The cat sat on the mat", "Hi", "A much longer prompt than the others here", "Short one"]


def _sites(model):
    return [f"blocks.{l}.attn.hook_z" for l in range(model.n_layers)] + [
        f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)] + ["ln_final.hook_scale"]


def _edits(model):
    v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(0))
    return [[], [Zero("blocks.1.attn.hook_z", heads=[0])], [ProjectOut("blocks.1.attn.hook_z", heads=[1],
                                                                     direction=torch.ones(model.d_head))],
            [Add("blocks.1.hook_resid_post", vector=v, alpha=3.0), Scale("blocks.2.hook_resid_pre", factor=0.5)]]


def _same(a_logits, a, b_logits, b, sites):
    if b_logits is not None:
        torch.testing.assert_close(a_logits, b_logits, atol=1e-5, rtol=1e-5)
    for name in sites:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "qwen2_moe"])
def test_shared_prefix_equals_the_whole_pass(family):
    """Chat prompts share the template's header: captures at the last token and the last k
    logit columns equal whole passes, with edits, in one batch and in length-sorted chunks."""
    model = tiny_model(family, **({"sliding_window": 128} if family == "gemma2" else {}))
    sites = _sites(model)
    batch = model.tokenize(PROMPTS, chat=True)
    assert common_prefix_length(batch) >= 5  # "<s><user>" at least
    for edits in _edits(model):
        for logits in ("last", 3, None):
            want = model.run_with_cache(batch, sites, positions="last", edits=edits, logits=logits)
            for size in (1, 3, 8):
                got = model.run_with_cache(batch, sites, positions="last", edits=edits, logits=logits,
                                           batch_size=size, shared_prefix=True)
                _same(*got, *want, sites)


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen2_moe"])
def test_shared_prefix_after_a_start_layer_equals_the_whole_edited_pass(family):
    model = tiny_model(family)
    sites = _sites(model)
    batch = model.tokenize(PROMPTS, chat=True)
    _, clean = model.run_with_cache(batch, sites + ["blocks.1.hook_resid_pre"], positions="all", logits=None)
    for layer in (1, 2):
        edits = [Zero(f"blocks.{layer}.attn.hook_z", heads=[2])]
        want = model.run_with_cache(batch, sites, positions="last", edits=edits, logits=2)
        for size in (1, 8):
            got = model.run_with_cache(batch, sites, positions="last", edits=edits, logits=2, batch_size=size,
                                       start=StartAt(1, clean), shared_prefix=True)
            _same(*got, *want, sites)


def _forward_shapes(model, call) -> list[tuple[int, ...]]:
    """The input_ids shape of every HF forward pass that `call()` makes."""
    seen, real = [], model.hf.forward

    @functools.wraps(real)
    def forward(*args, input_ids, **kwargs):
        seen.append(tuple(input_ids.shape))
        return real(*args, input_ids=input_ids, **kwargs)

    model.hf.forward = forward
    try:
        call()
    finally:
        model.hf.forward = real
    return seen


def test_rows_run_only_their_tokens_after_the_prefix():
    model = tiny_model("llama")
    batch = model.tokenize(PROMPTS, chat=True)
    shared = common_prefix_length(batch)
    seen = _forward_shapes(model, lambda: model.run_with_cache(batch, ["blocks.0.attn.hook_z"], positions="last",
                                                               shared_prefix=True))
    assert seen == [(1, shared), (len(PROMPTS), batch.input_ids.shape[1] - shared)]


def test_one_prompt_equal_lengths_and_nothing_shared():
    model = tiny_model("llama")
    sites = _sites(model)
    for prompts, chat in ((["Hello there"], True), (["abcd", "abce", "abcf"], False), (["xyz", "abc"], False)):
        batch = model.tokenize(prompts, chat=chat)
        want = model.run_with_cache(batch, sites, positions="last", logits="last")
        _same(*model.run_with_cache(batch, sites, positions="last", logits="last", shared_prefix=True), *want, sites)
    assert common_prefix_length(model.tokenize(["xyz", "abc"])) == 1  # BOS only
    one = model.tokenize(["Hello there"])
    assert common_prefix_length(one) == one.input_ids.shape[1] - 1  # one row keeps its last token
    assert common_prefix_length(one, keep=4) == one.input_ids.shape[1] - 4


def test_tokens_after_the_prefix_are_left_padded():
    model = tiny_model("llama")
    batch = model.tokenize(["ab", "abcd", "abc"])  # <s> a b ... shared: 3 tokens, capped by the shortest
    length = common_prefix_length(batch)
    assert length == 2  # "<s>a": "ab" keeps its last token
    tail = after_shared(batch, length, 0)
    assert tail.attention_mask.sum(-1).tolist() == [1, 3, 2]
    assert tail.input_ids[1, -3:].tolist() == batch.input_ids[1, -3:].tolist()
    assert tail.input_ids[0, :2].tolist() == [0, 0] and tail.input_ids[0, -1] == batch.input_ids[0, -1]


def test_what_a_shared_prefix_cannot_keep_exact_is_refused_before_any_pass():
    model = tiny_model("llama")
    batch = model.tokenize(PROMPTS, chat=True)
    z = ["blocks.0.attn.hook_z"]
    bad = [
        (dict(positions="all"), "positions='last' only"),
        (dict(positions="last", logits="all"), "last logit columns"),
        (dict(positions="last", sites=["blocks.0.attn.hook_pattern"]), "key axis"),
        (dict(positions="last", edits=[Zero("blocks.0.attn.hook_z", positions="last")]), "act alike"),
        (dict(positions="last", edits=[Set("blocks.0.hook_resid_post", value=1.0)]), "Set"),
        (dict(positions="last", edits=[Add("blocks.0.hook_resid_post", vector=torch.ones(model.d_model),
                                           alpha=torch.ones(4))]), "Add"),
        (dict(positions="last", edits=[Patch("blocks.0.hook_resid_post", donor=torch.zeros(4, 3, model.d_model))]),
         "Patch"),
    ]
    calls = []
    real = model.hf.forward
    model.hf.forward = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        for kwargs, match in bad:
            sites = kwargs.pop("sites", z)
            with pytest.raises(ValueError, match=match):
                model.run_with_cache(batch, sites, shared_prefix=True, **kwargs)
    finally:
        model.hf.forward = real
    assert not calls


def test_a_narrow_sliding_window_falls_back_to_whole_passes():
    model = tiny_model("gemma2")  # sliding window 8, narrower than the chat prompts
    sites = _sites(model)
    batch = model.tokenize(PROMPTS, chat=True)
    want = model.run_with_cache(batch, sites, positions="last", logits="last")
    _same(*model.run_with_cache(batch, sites, positions="last", logits="last", shared_prefix=True), *want, sites)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "qwen2_moe"])
def test_generation_after_a_shared_prefix_equals_plain_generation(family):
    """Greedy tokens, per-step logits and prefill captures equal plain generation, with
    per-row edits after the prompt, alike edits everywhere, one prompt, equal lengths and
    length-sorted chunks."""
    model = tiny_model(family, **({"sliding_window": 128} if family == "gemma2" else {}))
    v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(1))
    per_row = Set("blocks.1.attn.hook_z", positions="last+generated", heads=[1],
                  value=torch.randn(len(PROMPTS), 1, model.n_heads, model.d_head))
    edit_sets = [[], [Add("blocks.1.hook_resid_post", vector=v, alpha=torch.tensor([0.0, 2.0, 4.0, -3.0]),
                          positions="last+generated")],
                 [Zero("blocks.1.attn.hook_z", heads=[1]), Add("blocks.0.hook_resid_post", vector=v, alpha=1.5)],
                 [per_row]]
    site = "blocks.1.hook_resid_post"
    for edits in edit_sets:
        kwargs = dict(chat=True, max_new_tokens=5, return_logits=True, stop_at_eos=False, edits=edits, capture=[site])
        want = model.generate(PROMPTS, **kwargs)
        for extra in ({}, {"batch_size": 3} if per_row not in edits else {}):
            got = model.generate(PROMPTS, shared_prefix=True, **kwargs, **extra)
            assert got.texts == want.texts and torch.equal(got.sequences, want.sequences)
            assert got.prompt_len == want.prompt_len
            torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(got.cache[site], want.cache[site], atol=1e-5, rtol=1e-5)
    for prompts in (["Hello there"], ["abcd", "efgh", "ijkl"]):
        want = model.generate(prompts, chat=True, max_new_tokens=4, return_logits=True, stop_at_eos=False)
        got = model.generate(prompts, chat=True, max_new_tokens=4, return_logits=True, stop_at_eos=False,
                             shared_prefix=True)
        assert torch.equal(got.sequences, want.sequences)
        torch.testing.assert_close(got.logits, want.logits, atol=1e-5, rtol=1e-5)


def test_generation_prefills_only_the_tokens_after_the_prefix():
    model = tiny_model("llama")
    batch = model.tokenize(PROMPTS, chat=True)
    shared = common_prefix_length(batch)
    seen = _forward_shapes(model, lambda: model.generate(PROMPTS, chat=True, max_new_tokens=3, stop_at_eos=False,
                                                         shared_prefix=True))
    assert seen[:2] == [(1, shared), (len(PROMPTS), batch.input_ids.shape[1] - shared)]
    assert seen[2:] == [(len(PROMPTS), 1)] * 2


def test_generation_refuses_what_a_shared_prefix_cannot_keep_exact():
    model = tiny_model("llama")
    v = torch.ones(model.d_model)
    bad = [
        (dict(use_cache=False), "use_cache"),
        (dict(capture=["blocks.0.attn.hook_pattern"]), "key axis"),
        (dict(edits=[Zero("blocks.0.attn.hook_z", positions=[0, 1])]), "position words"),
        (dict(edits=[Patch("blocks.0.hook_resid_post", donor=torch.zeros(4, 3, model.d_model), positions="last")]),
         "Patch"),
        (dict(edits=[Add("blocks.0.hook_resid_post", vector=v, alpha=torch.ones(4))]), "act alike"),
        (dict(edits=[Set("blocks.0.hook_resid_post", value=1.0, positions="prompt")]), "act alike"),
        (dict(hooks=[("blocks.0.hook_resid_post", lambda x, hook: x)]), r"hooks= \(blocks.0.hook_resid_post\)"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            model.generate(PROMPTS, chat=True, max_new_tokens=2, shared_prefix=True, **kwargs)
