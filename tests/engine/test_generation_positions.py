"""Every edit kind at every position spec during `generate`, in the cases that once broke:
one prompt and equal-length batches (no padding, so no 2-D attention mask reaches the
model), padded batches, with the KV cache on and off.

Identities pinned here:
- KV-cached generation equals uncached generation (tokens, and step logits to 1e-5);
- a padded batch equals its prompts generated one at a time (tokens, step logits);
- `positions="generated"` steers a single prompt; `"prompt"` never touches a generated
  token, `"generated"` never touches a prompt token (checked by capturing the site).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tiny import tiny_model

from interp.sinks.attention_edits import move_to_first_token, zero_heads, zerotuning
from interp.engine.edits import Add, Fn, Patch, ProjectOut, Scale, Set, Zero
from steering import SteeringVector
from steering.apply import VectorUse, steering_edits

BATCHES = {
    "one": ["Once upon a time"],
    "equal": ["Hello there", "Good morning"],  # same length, so no padding
    "padded": ["Hi", "Once upon a time", "Hello there, friend"],
}
POSITIONS = ["all", "prompt", "generated", "last", "last+generated", [0], [1, -1]]
KINDS = ["add", "add_relative", "scale", "set", "zero_heads", "project_out", "patch_left",
         "patch_right", "fn", "austeer", "zerotuning", "zero_pattern", "move_to_first"]
STEPS = 3


@pytest.fixture(scope="module", params=["llama", "gpt2"])  # GQA with rotary; MHA with learned positions
def model(request):
    return tiny_model(request.param)


def _rand(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _donor(model, rows: int):
    """Layer-1 residuals of a donor batch with other lengths than any recipient."""
    donors = ["Far away, long ago", "Yes", "The quick brown fox", "Zz"][:rows]
    _, cache = model.run_with_cache(donors, sites=["blocks.1.hook_resid_post"], logits=None)
    return cache["blocks.1.hook_resid_post"], cache.attention_mask


def make_edits(model, kind: str, positions, rows: int, only_row: int | None = None):
    """Edits of one kind at `positions` for a batch of `rows` prompts (`only_row`: the same
    edits for that row generated alone, e.g. its own donor row)."""
    site, d = "blocks.1.hook_resid_post", model.d_model
    if kind == "add":
        return [Add(site, positions=positions, vector=_rand(d, scale=3.0))]
    if kind == "add_relative":
        return [Add(site, positions=positions, vector=_rand(d, seed=1), alpha=0.8, relative=True)]
    if kind == "scale":
        return [Scale(site, positions=positions, factor=1.0 + _rand(d, seed=2))]
    if kind == "set":
        return [Set(site, positions=positions, value=_rand(d, seed=3, scale=2.0))]
    if kind == "zero_heads":
        return [Zero("blocks.1.attn.hook_z", positions=positions, heads=[1, 3])]
    if kind == "project_out":
        return [ProjectOut(site, positions=positions, direction=_rand(d, seed=4))]
    if kind in ("patch_left", "patch_right"):
        donor, mask = _donor(model, rows)
        if only_row is not None:
            donor, mask = donor[only_row : only_row + 1], mask[only_row : only_row + 1]
        return [Patch(site, positions=positions, donor=donor, donor_mask=mask, align=kind.split("_")[1])]
    if kind == "fn":
        return [Fn(site, positions=positions, fn=lambda x, hook: 0.5 * x + x.roll(1, dims=-1))]
    if kind == "austeer":  # a scale mask on a few units of the MLP output, as AUSteer fits
        mask = torch.zeros(d)
        mask[[3, 10, 40]] = torch.tensor([1.0, -0.5, 2.0])
        vector = SteeringVector({1: mask}, site="ffn", kind="scale", method="austeer")
        if isinstance(positions, str):
            return steering_edits(model, [VectorUse(vector, alpha=4.0, positions=positions)])
        return [replace(e, positions=positions) for e in steering_edits(model, [VectorUse(vector, alpha=4.0)])]
    if kind == "zerotuning":
        return zerotuning({1: [0, 2], 2: None}, gamma=0.3, positions=positions)
    if kind == "zero_pattern":
        return zero_heads({1: [1]}, positions=positions)
    if kind == "move_to_first":
        return move_to_first_token({2: [0, 3]}, positions=positions)
    raise AssertionError(kind)


def _generate(model, prompts, edits, use_cache=True):
    return model.generate(prompts, edits=edits, max_new_tokens=STEPS, return_logits=True,
                          stop_at_eos=False, use_cache=use_cache)


@pytest.mark.parametrize("batch", list(BATCHES))
@pytest.mark.parametrize("kind", KINDS)
def test_kv_cached_equals_uncached(model, batch, kind):
    prompts = BATCHES[batch]
    for positions in POSITIONS:
        edits = make_edits(model, kind, positions, len(prompts))
        cached = _generate(model, prompts, edits)
        uncached = _generate(model, prompts, edits, use_cache=False)
        assert torch.equal(cached.sequences, uncached.sequences), (kind, positions)
        torch.testing.assert_close(cached.logits, uncached.logits, rtol=1e-5, atol=1e-5,
                                   msg=lambda m, k=kind, p=positions: f"{k} at {p}: {m}")


@pytest.mark.parametrize("kind", KINDS)
def test_padded_batch_equals_one_prompt_at_a_time(model, kind):
    prompts = BATCHES["padded"]
    for positions in POSITIONS:
        together = _generate(model, prompts, make_edits(model, kind, positions, len(prompts)))
        for row, prompt in enumerate(prompts):
            alone = _generate(model, [prompt], make_edits(model, kind, positions, len(prompts), only_row=row))
            assert torch.equal(together.new_tokens[row], alone.new_tokens[0]), (kind, positions, row)
            torch.testing.assert_close(together.logits[row], alone.logits[0], rtol=1e-4, atol=1e-4,
                                       msg=lambda m, k=kind, p=positions, r=row: f"{k} at {p}, row {r}: {m}")


@pytest.mark.parametrize("batch", list(BATCHES))
def test_generated_steering_changes_a_single_prompt_from_the_second_token(model, batch):
    prompts = BATCHES[batch]
    plain = _generate(model, prompts, [])
    steer = [Add("blocks.1.hook_resid_post", positions="generated", vector=_rand(model.d_model, scale=8.0))]
    steered = _generate(model, prompts, steer)
    step_change = (plain.logits - steered.logits).abs().amax(-1)  # [b, T]
    # the first new token is predicted at the last prompt position, which "generated" leaves alone
    assert torch.equal(step_change[:, 0], torch.zeros_like(step_change[:, 0]))
    assert (step_change[:, 1:] > 1e-2).all(), step_change
    from_last = [Add(e.site, positions="last+generated", vector=e.vector) for e in steer]
    assert ((plain.logits - _generate(model, prompts, from_last).logits).abs().amax(-1) > 1e-2).all()


@pytest.mark.parametrize("batch", list(BATCHES))
@pytest.mark.parametrize("use_cache", [True, False])
def test_prompt_and_generated_edits_touch_only_their_tokens(model, batch, use_cache):
    """Capture the site (after the edit) at every pass, and compare each position with the
    unedited value on the same tokens: only the positions the spec names may differ."""
    prompts, site = BATCHES[batch], "blocks.1.hook_resid_post"
    prompt_mask = model.tokenize(prompts).attention_mask
    n_prompt = prompt_mask.shape[1]
    vector = _rand(model.d_model, scale=5.0)
    cases = (("none", None), ("prompt", slice(0, n_prompt)), ("generated", slice(n_prompt, None)),
             ("last", slice(n_prompt - 1, n_prompt)), ("last+generated", slice(n_prompt - 1, None)))
    for positions, touched in cases:
        seen: list[tuple[int, torch.Tensor]] = []
        edits = [] if touched is None else [Add(site, positions=positions, vector=vector)]
        gen = model.generate(prompts, edits=edits, max_new_tokens=STEPS, stop_at_eos=False, use_cache=use_cache,
                             hooks=[(site, lambda x, hook, seen=seen: seen.append((hook.state.offset, x.clone())))])
        latest = {}
        for offset, x in seen:  # with the cache off, later passes recompute earlier positions
            for p in range(x.shape[1]):
                latest[offset + p] = x[:, p]
        edited = torch.stack([latest[p] for p in sorted(latest)], 1)  # [b, P + T - 1, d]
        delta = (edited - _replay(model, gen.sequences, site, prompt_mask)).abs().amax(-1)
        real = torch.cat([prompt_mask.bool(), torch.ones(len(prompts), STEPS - 1, dtype=torch.bool)], 1)
        expect = torch.zeros_like(real)
        if touched is not None:
            expect[:, touched] = True
        expect &= real
        assert (delta[expect] > 1e-2).all(), (positions, delta)
        assert (delta[~expect & real] < 1e-4).all(), (positions, delta)


def _replay(model, sequences: torch.Tensor, site: str, prompt_mask: torch.Tensor) -> torch.Tensor:
    """The site's unedited value over a finished sequence (all but its last token)."""
    from interp.engine.model import TokenBatch

    ids = sequences[:, :-1]
    mask = torch.cat([prompt_mask, torch.ones(ids.shape[0], ids.shape[1] - prompt_mask.shape[1],
                                              dtype=prompt_mask.dtype)], 1)
    _, cache = model.run_with_cache(TokenBatch(ids, mask, ["?"] * ids.shape[0]), sites=[site], logits=None)
    return cache[site]


def test_sequence_tracking_fails_loudly_on_an_unexpected_pass():
    from interp.engine.hooks import GenerationPlan, SequenceTrackingError

    plan = GenerationPlan(prompt_len=5, pad_left=torch.zeros(2, dtype=torch.long))
    assert plan.locate(2, 5, None) == 0 and plan.locate(2, 1, 6) == 5 and plan.locate(2, 7, 7) == 0
    with pytest.raises(SequenceTrackingError, match="transformers"):
        plan.locate(2, 3, None)
    with pytest.raises(SequenceTrackingError, match="attention mask"):
        GenerationPlan(4, torch.zeros(1, dtype=torch.long)).locate(1, 4, 9)


@pytest.mark.parametrize("batch", list(BATCHES))
def test_sampling_with_a_seed_is_the_same_with_and_without_the_cache(model, batch):
    prompts = BATCHES[batch]
    edits = make_edits(model, "add", "last+generated", len(prompts))

    def sample(use_cache, edits):
        return model.generate(prompts, edits=edits, max_new_tokens=6, temperature=0.9, seed=3,
                              stop_at_eos=False, use_cache=use_cache, return_logits=True)

    cached, uncached = sample(True, edits), sample(False, edits)
    assert torch.equal(cached.sequences, uncached.sequences)
    torch.testing.assert_close(cached.logits, uncached.logits, rtol=1e-5, atol=1e-5)
    assert not torch.equal(sample(True, []).logits, cached.logits)  # the edit did act
