"""Generation in chunks: automatic batch size backs off on a (simulated) out-of-memory error."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.engine.edits import Add, Patch
from interp.engine.batching import run_batched

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota kappa lambda"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _oom_above(model, monkeypatch, limit: int) -> list[int]:
    """Make the HF generate raise CUDA's out-of-memory error for batches above `limit`."""
    tried: list[int] = []
    real = model.hf.generate

    def generate(*args, input_ids, **kwargs):
        tried.append(int(input_ids.shape[0]))
        if input_ids.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(model.hf, "generate", generate)
    return tried


def test_generation_backs_off_on_out_of_memory_and_matches_one_batch(model, monkeypatch):
    v = torch.randn(model.d_model)
    edits = [Add("blocks.1.hook_resid_post", vector=v, alpha=2.0, positions="last+generated")]
    whole = model.generate(PROMPTS, edits=edits, max_new_tokens=5, return_logits=True, stop_at_eos=False)
    tried = _oom_above(model, monkeypatch, 2)
    out = model.generate(PROMPTS, edits=edits, max_new_tokens=5, return_logits=True, stop_at_eos=False,
                         batch_size=4)
    assert tried == [4, 2, 2, 1]  # 4 runs out of memory, then halves and keeps 2
    assert out.texts == whole.texts and out.prompts == PROMPTS
    assert torch.equal(out.sequences, whole.sequences) and out.prompt_len == whole.prompt_len
    torch.testing.assert_close(out.logits, whole.logits, atol=1e-4, rtol=1e-4)


def test_one_prompt_and_equal_lengths(model):
    one = model.generate(["gamma"], max_new_tokens=4)
    assert model.generate(["gamma"], max_new_tokens=4, batch_size=1).texts == one.texts
    same = ["abcd", "efgh", "ijkl"]
    whole = model.generate(same, max_new_tokens=4)
    assert torch.equal(model.generate(same, max_new_tokens=4, batch_size=2).sequences, whole.sequences)


def test_patch_rows_line_up_across_chunks(model):
    site = "blocks.0.hook_resid_post"
    donors = ["zz top", "yy", "xx wyv", "ww", "vv uu tt"]
    _, cache = model.run_with_cache(donors, sites=[site])
    edit = Patch(site, donor=cache[site], donor_mask=cache.attention_mask, positions="prompt", align="right")
    whole = model.generate(PROMPTS, edits=[edit], max_new_tokens=4)
    assert model.generate(PROMPTS, edits=[edit], max_new_tokens=4, batch_size=2).texts == whole.texts


def test_add_with_one_alpha_per_row_equals_each_alpha_alone(model):
    """A strength sweep as one batch: row r steered by alpha[r] gives what a generation with
    that one alpha gives, for one prompt and for length-sorted chunks (rows are the caller's)."""
    site, v = "blocks.1.hook_resid_post", torch.randn(model.d_model)
    alphas = torch.tensor([0.0, 3.0, -2.0, 6.0, 1.5])
    swept = model.generate(PROMPTS, edits=[Add(site, vector=v, alpha=alphas)], max_new_tokens=4,
                           return_logits=True, stop_at_eos=False, batch_size=2)
    for r, prompt in enumerate(PROMPTS):
        alone = model.generate([prompt], edits=[Add(site, vector=v, alpha=float(alphas[r]))], max_new_tokens=4,
                               return_logits=True, stop_at_eos=False)
        assert swept.texts[r] == alone.texts[0]
        torch.testing.assert_close(swept.logits[r], alone.logits[0], atol=1e-4, rtol=1e-4)
    relative = Add(site, vector=v, alpha=alphas[:1], relative=True)
    with_one = model.generate(["gamma"], edits=[relative], max_new_tokens=3, return_logits=True, stop_at_eos=False)
    scalar = model.generate(["gamma"], edits=[Add(site, vector=v, alpha=0.0, relative=True)], max_new_tokens=3,
                            return_logits=True, stop_at_eos=False)
    torch.testing.assert_close(with_one.logits, scalar.logits)
    with pytest.raises(ValueError, match="per-row alphas.*one alpha per prompt"):
        model.generate(PROMPTS, edits=[Add(site, vector=v, alpha=alphas[:3])], max_new_tokens=2)
    with pytest.raises(ValueError, match="one per row"):
        Add(site, vector=v, alpha=torch.zeros(2, 2))


def test_out_of_memory_at_batch_one_propagates():
    def always(rows):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        run_batched([3, 2], always, 2)


def test_store_capture_backs_off_once_and_keeps_the_smaller_size(model, tmp_path, monkeypatch):
    from interp.engine.store import capture_to_store

    site = "blocks.1.hook_resid_post"
    prompts = PROMPTS + ["iota kappa", "lambda mu nu", "xi"]
    want, _, _ = capture_to_store(model, prompts, [site], tmp_path / "ref", batch_size=4, progress=False).load(site)
    seen: list[int] = []
    real = model.hf.forward

    def forward(*args, input_ids, **kwargs):
        seen.append(int(input_ids.shape[0]))
        if input_ids.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(*args, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(model.hf, "forward", forward)
    store = capture_to_store(model, prompts, [site], tmp_path / "s", batch_size=4, progress=False)
    assert seen == [4, 2, 2, 2, 2]  # one failure; the second shard starts at the size that fitted
    assert len(store.index["shards"]) == 2 and store.index["batch_size"] == 4  # the plan is unchanged
    got, _, _ = store.load(site)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
