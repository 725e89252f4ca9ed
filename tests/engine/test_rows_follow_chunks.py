"""Every positions form and per-row value follows its rows through every way the engine splits a batch.

Forms: one alpha per row, a bool mask [rows, W] over the whole batch's padded layout, a
list of position indices, the word "last+generated", and `OnTokens` on tokens and on token
sequences. Paths: chunks of one,
length-sorted chunks of two, `batch_size="auto"` halving on a (simulated) out-of-memory
error, shared-prefix passes, and generate's chunks (plain, halving, shared prefix). Each
result must equal the same edit run over all prompts in one batch; where a path cannot keep
a form exact it must refuse it (ValueError) before any pass.
"""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.engine.edits import Add
from interp.engine.token_edits import OnTokens

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["alpha beta", "gam", "delta epsilon zeta", "eta a", "theta iota kappa lambda", "mu"]
SITE, READ = "blocks.1.hook_resid_post", "blocks.2.hook_resid_post"
FORMS = ("alpha_rows", "bool_mask", "indices", "words", "on_tokens", "on_sequences")
RUN_PATHS = ("chunks_of_one", "sorted_chunks", "auto_halving", "shared_prefix")
GEN_PATHS = ("gen_chunks", "gen_auto_halving", "gen_shared_prefix")
REFUSED = {("alpha_rows", "shared_prefix"), ("bool_mask", "shared_prefix"), ("indices", "shared_prefix"),
           ("words", "shared_prefix"), ("bool_mask", "gen_shared_prefix"), ("indices", "gen_shared_prefix"),
           ("on_sequences", "shared_prefix"), ("on_sequences", "gen_shared_prefix")}


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _edits(model, form: str) -> list:
    v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(3))
    if form == "alpha_rows":
        alpha = torch.tensor([0.0, 3.0, -2.0, 5.0, 1.0, 4.0])
        return [Add(SITE, vector=v, alpha=alpha, positions="last+generated")]
    if form == "bool_mask":  # one real token per row, in the whole batch's left-padded layout
        batch = model.tokenize(PROMPTS, chat=True)
        lengths = batch.attention_mask.sum(-1)
        pads = batch.input_ids.shape[1] - lengths
        mask = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
        for r in range(len(PROMPTS)):
            mask[r, pads[r] + (3 * r + 2) % int(lengths[r])] = True
        return [Add(SITE, vector=v, alpha=6.0, positions=mask)]
    if form == "indices":
        return [Add(SITE, vector=v, alpha=4.0, positions=[1, -2])]
    if form == "words":
        return [Add(SITE, vector=v, alpha=4.0, positions="last+generated")]
    ids = model.tokenizer.convert_tokens_to_ids(["a", "e"])
    if form == "on_tokens":
        return [OnTokens(SITE, edit=Add(SITE, vector=v, alpha=4.0), token_ids=ids)]
    pairs = [model.tokenizer.convert_tokens_to_ids(list(pair)) for pair in ("ta", "mu")]
    return [OnTokens(SITE, edit=Add(SITE, vector=v, alpha=4.0), sequences=pairs)]


def _oom_above(monkeypatch, model, limit: int, generate: bool) -> list[int]:
    """Batches above `limit` rows raise CUDA's out-of-memory error (HF generate, or the model's forward)."""
    tried: list[int] = []
    name = "generate" if generate else "forward"
    real = getattr(model.hf, name)

    def fake(*args, **kwargs):
        rows = int(kwargs["input_ids"].shape[0])
        tried.append(rows)
        if rows > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(model.hf, name, fake)
    return tried


@pytest.mark.parametrize("path", RUN_PATHS)
@pytest.mark.parametrize("form", FORMS)
def test_run_with_cache_rows_follow_chunks(model, monkeypatch, form, path):
    edits = _edits(model, form)
    positions = "last" if path == "shared_prefix" else "all"
    kwargs = dict(sites=[READ], positions=positions, edits=edits, chat=True)
    if (form, path) in REFUSED:
        with pytest.raises(ValueError, match="shared_prefix"):
            model.run_with_cache(PROMPTS, **kwargs, shared_prefix=True)
        return
    logits, whole = model.run_with_cache(PROMPTS, **kwargs, batch_size=len(PROMPTS))
    _, plain = model.run_with_cache(PROMPTS, sites=[READ], positions=positions, chat=True, batch_size=len(PROMPTS))
    assert not torch.allclose(whole[READ], plain[READ])  # the edit changes something: the test can fail
    if path == "chunks_of_one":
        out, cache = model.run_with_cache(PROMPTS, **kwargs, batch_size=1)
    elif path == "sorted_chunks":
        out, cache = model.run_with_cache(PROMPTS, **kwargs, batch_size=4)
    elif path == "auto_halving":
        tried = _oom_above(monkeypatch, model, 2, generate=False)
        out, cache = model.run_with_cache(PROMPTS, **kwargs, batch_size="auto")
        assert tried[0] == len(PROMPTS) and tried[-3:] == [2, 2, 2]  # halved until chunks fit
    else:
        out, cache = model.run_with_cache(PROMPTS, **kwargs, shared_prefix=True)
    real = whole.attention_mask.bool() if positions == "all" else slice(None)
    torch.testing.assert_close(cache[READ][real], whole[READ][real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out, logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("path", GEN_PATHS)
@pytest.mark.parametrize("form", FORMS)
def test_generate_rows_follow_chunks(model, monkeypatch, form, path):
    edits = _edits(model, form)
    kwargs = dict(edits=edits, chat=True, max_new_tokens=4, stop_at_eos=False, return_logits=True)
    if (form, path) in REFUSED:
        with pytest.raises(ValueError, match="shared_prefix"):
            model.generate(PROMPTS, **kwargs, shared_prefix=True)
        return
    whole = model.generate(PROMPTS, **kwargs)
    plain = model.generate(PROMPTS, **{**kwargs, "edits": []})
    assert not torch.allclose(whole.logits, plain.logits)
    if path == "gen_chunks":
        out = model.generate(PROMPTS, **kwargs, batch_size=2)
    elif path == "gen_auto_halving":
        tried = _oom_above(monkeypatch, model, 2, generate=True)
        out = model.generate(PROMPTS, **kwargs, batch_size="auto")
        assert tried[0] == len(PROMPTS) and tried[-3:] == [2, 2, 2]  # halved until chunks fit
    else:
        out = model.generate(PROMPTS, **kwargs, shared_prefix=True)
    assert torch.equal(out.sequences, whole.sequences)
    torch.testing.assert_close(out.logits, whole.logits, atol=1e-4, rtol=1e-4)


def test_mask_that_does_not_cover_the_batch_is_refused_before_any_pass(model):
    v = torch.ones(model.d_model)
    width = model.tokenize(PROMPTS).input_ids.shape[1]
    narrow = Add(SITE, vector=v, positions=torch.ones(len(PROMPTS), width - 1, dtype=torch.bool))
    few_rows = Add(SITE, vector=v, positions=torch.ones(2, width, dtype=torch.bool))
    few_alphas = Add(SITE, vector=v, alpha=torch.ones(2))
    for edit, words in ((narrow, "columns"), (few_rows, "positions mask"), (few_alphas, "per-row alphas")):
        with pytest.raises(ValueError, match=words):
            model.run_with_cache(PROMPTS, sites=[READ], edits=[edit], batch_size=1)
        with pytest.raises(ValueError, match=words):
            model.generate(PROMPTS, edits=[edit], batch_size=2, max_new_tokens=2)


def test_the_reported_case_one_real_token_per_row_at_batch_one_and_nine_prompts(model):
    """The bug report: a [rows, P] mask marking one real token per row raised 'expanded size' once
    the batch was split (batch_size=1, or 9 prompts at the CPU default of 8)."""
    texts = [f"prompt {'x' * (i % 4)} number {i}" for i in range(9)]
    batch = model.tokenize(texts)
    mask = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
    mask[torch.arange(9), batch.input_ids.shape[1] - 3] = True  # the third token from the end of each row
    edit = Add(SITE, vector=torch.ones(model.d_model), alpha=6.0, positions=mask)
    one, whole = model.run_with_cache(texts, sites=[READ], edits=[edit], batch_size=9)
    for size in (1, None):
        logits, cache = model.run_with_cache(texts, sites=[READ], edits=[edit], batch_size=size)
        torch.testing.assert_close(logits, one, atol=1e-4, rtol=1e-4)
        real = whole.attention_mask.bool()
        torch.testing.assert_close(cache[READ][real], whole[READ][real], atol=1e-4, rtol=1e-4)
    two = model.tokenize(texts[:2])
    mask = torch.zeros_like(two.attention_mask, dtype=torch.bool)
    mask[:, -3] = True
    edit = Add(SITE, vector=torch.ones(model.d_model), alpha=6.0, positions=mask)
    kwargs = dict(edits=[edit], max_new_tokens=3, stop_at_eos=False, return_logits=True)
    split, together = model.generate(texts[:2], **kwargs, batch_size=1), model.generate(texts[:2], **kwargs)
    assert torch.equal(split.sequences, together.sequences)
    torch.testing.assert_close(split.logits, together.logits, atol=1e-4, rtol=1e-4)
