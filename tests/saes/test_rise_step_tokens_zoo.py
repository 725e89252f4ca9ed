"""Steering at step ends fires at exactly the tokens `saes.traces` calls step ends, on a real
tokenizer that writes the separator "\\n\\n" sometimes as one token and sometimes as "\\n" twice
(SmolLM2-135M-Instruct: one token before a space, two before most words). Before token
sequences, `OnTokens` on the separator's own tokens missed every split one, so RISE steering
and the confidence dose-response on this model acted at almost no step end."""

import pytest
import torch

import interp
from saes.steer import separator_tokens, step_edit
from saes.traces import format_prompt, split_steps, step_end_tokens, token_at_char

pytestmark = pytest.mark.zoo
SMOL = "smollm2-135m-instruct"
RESPONSE = ("80 * 4 = 320\n\n320 + 24 = 344\n\n Wait, let me check: 80 * 4 is 320.\n\n"
            "So 320 + 24 = 344.\n\nThe answer is 344.")


@pytest.fixture(scope="module")
def smol():
    from zoo_models import require

    require(SMOL)
    return interp.load(SMOL, device="cpu", dtype="float32")


def test_the_split_separator_is_found_and_steered_at_every_step_end(smol):
    tok = smol.tokenizer
    ids, sequences, trigger = separator_tokens(tok, "\n\n")
    newline = tok.convert_tokens_to_ids("Ċ")
    assert trigger == "separator" and [newline, newline] in sequences and ids
    prompt = format_prompt(smol, "What is 80 * 4 + 24?", chat=False)
    steps = split_steps(prompt, RESPONSE)
    text_ids, ends = step_end_tokens(tok, prompt + RESPONSE, steps)
    ends = ends[:-1]  # the last step has no separator after it
    edit = step_edit(torch.ones(smol.d_model), 15, 0.5, "add", ids, sequences)
    fired = edit.hits(torch.tensor([text_ids]), None)[0]
    response_start = token_at_char(tok, prompt + RESPONSE, len(prompt))
    assert fired[response_start:].nonzero().flatten().add(response_start).tolist() == ends
    merged = step_edit(torch.ones(smol.d_model), 15, 0.5, "add", ids).hits(torch.tensor([text_ids]), None)[0]
    assert int(merged[ends].sum()) < len(ends)  # the separator's own tokens alone miss the split ones
