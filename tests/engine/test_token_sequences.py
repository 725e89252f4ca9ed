"""`OnTokens(sequences=...)` fires at the last token of each occurrence of an id sequence, in one
pass and across the KV-cached passes of `generate` (interp.engine.token_history), where a
separator such as "\\n\\n" may arrive one token at a time."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_model

from interp.engine.edits import Add
from interp.engine.token_edits import OnTokens

pytestmark = pytest.mark.usefixtures("one_thread")
SITE, READ = "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _vector(model):
    return torch.randn(model.d_model, generator=torch.Generator().manual_seed(0))


def test_a_sequence_fires_at_its_last_token_only(model):
    prompts = ["xab yb ab", "b a ab"]
    a, b = model.tokenizer.convert_tokens_to_ids(["a", "b"])
    edit = OnTokens(SITE, edit=Add(SITE, vector=_vector(model), alpha=3.0), sequences=[[a, b]])
    batch = model.tokenize(prompts)
    ids = batch.input_ids
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, 1:] = (ids[:, :-1] == a) & (ids[:, 1:] == b)  # "ab" ends here; a lone "b" does not count
    assert mask.sum() == 3 and ((ids == b) & ~mask).any()
    _, ours = model.run_with_cache(prompts, [READ], edits=[edit])
    _, masked = model.run_with_cache(prompts, [READ], edits=[Add(SITE, vector=_vector(model), alpha=3.0,
                                                                 positions=mask)])
    _, plain = model.run_with_cache(prompts, [READ])
    real = batch.attention_mask.bool()
    torch.testing.assert_close(ours[READ][real], masked[READ][real])
    assert not torch.allclose(ours[READ][real], plain[READ][real])


@pytest.mark.parametrize("length", [2, 3])
def test_a_sequence_spanning_generation_steps_matches_uncached(model, length):
    """The sequence is the prompt's last token and the first length - 1 greedy tokens, so its
    last token is fed at step `length` with the rest only in the KV cache."""
    prompts = ["hello there", "abc"]
    kwargs = dict(max_new_tokens=5, stop_at_eos=False, return_logits=True)
    plain = model.generate(prompts, **kwargs)
    rows = [[int(plain.sequences[r, plain.sequences.shape[1] - 6])] + plain.new_tokens[r, :length - 1].tolist()
            for r in range(len(prompts))]
    edit = OnTokens(SITE, edit=Add(SITE, vector=_vector(model), alpha=6.0), sequences=rows)
    cached = model.generate(prompts, edits=[edit], **kwargs)
    uncached = model.generate(prompts, edits=[edit], use_cache=False, **kwargs)
    steps = length - 1  # logits of the steps before the fire are the unsteered ones
    torch.testing.assert_close(cached.logits[:, :steps], plain.logits[:, :steps])
    assert not torch.allclose(cached.logits[:, steps], plain.logits[:, steps])
    torch.testing.assert_close(cached.logits, uncached.logits, atol=1e-4, rtol=1e-4)


def test_a_sequence_never_matches_over_left_padding(model):
    """A sequence holding the pad id (SmolLM2's pad is also its end-of-sequence id) matches a
    row's own tokens only: the row alone equals the row in a padded batch."""
    tok = model.tokenizer
    edit = OnTokens(SITE, edit=Add(SITE, vector=_vector(model), alpha=6.0),
                    sequences=[[tok.pad_token_id, tok.bos_token_id]])
    prompts = ["hello there", "ab"]
    _, batch = model.run_with_cache(prompts, [READ], "last", edits=[edit], batch_size=2)
    _, alone = model.run_with_cache(prompts, [READ], "last", edits=[edit], batch_size=1)
    torch.testing.assert_close(batch[READ], alone[READ], atol=1e-5, rtol=1e-5)


def test_sequences_are_refused_where_a_prefix_runs_in_another_pass(model):
    """Shared-prefix passes and forward_from_layer(prefix=...) cannot match a sequence across
    the prefix, so they refuse one, nested in another OnTokens too."""
    from interp.engine.partial import forward_from_layer
    from interp.engine.prefix import prefix_kv
    from interp.engine.tokens import pad_rows

    tok = model.tokenizer
    inner = OnTokens(SITE, edit=Add(SITE, vector=_vector(model)), sequences=[tok.convert_tokens_to_ids(list("ta"))])
    nested = OnTokens(SITE, edit=inner, token_ids=tok.convert_tokens_to_ids(["a"]))
    prompts = ["beta alpha", "theta a"]
    with pytest.raises(ValueError, match="shared_prefix=False"):
        model.run_with_cache(prompts, [READ], "last", edits=[nested], chat=True, shared_prefix=True)
    with pytest.raises(ValueError, match="shared_prefix=False"):
        model.generate(prompts, edits=[nested], chat=True, max_new_tokens=2, shared_prefix=True)
    ids = model.tokenize(["abcdef"]).input_ids[0]
    tail = pad_rows([ids[4:]], [""], False, 0)
    with pytest.raises(ValueError, match="without a prefix"):
        forward_from_layer(model, tail, 0, None, [inner], prefix=prefix_kv(model, [ids[:4]]).cache([0], 4))


def test_bad_sequences_are_refused(model):
    inner = Add(SITE, vector=_vector(model))
    assert not OnTokens(SITE, edit=inner).hits(torch.tensor([[1, 2]])).any()  # no tokens: fires nowhere
    with pytest.raises(ValueError, match=r"list of token-id lists, e.g. \[\[198, 198\]\]"):
        OnTokens(SITE, edit=inner, sequences=[5, 6])
    with pytest.raises(ValueError, match="list of token-id lists"):
        OnTokens(SITE, edit=inner, sequences="ab")
    with pytest.raises(ValueError, match=r"1 to 17 token ids long; got \[\]"):
        OnTokens(SITE, edit=inner, sequences=[[]])
    with pytest.raises(ValueError, match="1 to 17"):
        OnTokens(SITE, edit=inner, sequences=[list(range(18))])
