"""RISE core: step segmentation and step-end tokens, collection, sae-lens training, resume."""

from __future__ import annotations

import json

import pytest
import torch
from synthetic import SITE, sparse_dictionary, write_store
from tiny import tiny_model
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from saes.collect import CollectConfig, collect, load_steps
from saes.traces import INSTRUCTION, extract_answer, make_problems, split_steps, step_end_tokens
from saes.train import TrainConfig, load_sae, train_layer

pytestmark = pytest.mark.usefixtures("one_thread")

RESPONSES = [
    ("What is 2+3?", "2 plus 3.\n\nWait, let me check: 5.\n\nThe answer is 5", 5),
    ("What is 4*2?", "4 times 2 is 8.\n\nAlternatively, 4+4=8.\n\nThe answer is 8", 8),
    ("What is 9-1?", "9 minus 1.\n\n\nThat is 8.\n\nThe answer is 7", 8),
]


def word_tokenizer(merge: bool) -> PreTrainedTokenizerFast:
    """Word-level tokenizer whose pieces merge '\\n\\n' with the punctuation before it
    (`merge`), or split it into two '\\n' tokens."""
    pieces = [".\n\n", ":\n\n", "\n\n", "\n", " ", ".", ":", ",", "+", "=", "<", ">", "/"]
    words = "2 3 5 4 8 9 1 7 plus times is minus That The answer Wait let me check Alternatively user assistant s".split()
    vocab = {w: i for i, w in enumerate(["<unk>", *pieces, *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex((r"[.:]?\n\n|" if merge else "") + r"\n|[A-Za-z]+|\d|[^\sA-Za-z\d]| "), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<unk>")


def test_split_steps_spans_and_end_chars():
    prompt = "Q?\n"
    steps = split_steps(prompt, "a b.\n\n  c\n\nd", "\n\n")
    full = prompt + "a b.\n\n  c\n\nd"
    assert [s.text for s in steps] == ["a b.", "c", "d"]
    assert [full[s.start:s.end] for s in steps] == ["a b.", "c", "d"]
    assert [full[s.end_char] for s in steps] == ["\n", "\n", "d"]
    assert full[steps[0].end_char - 1] == "\n"  # the separator's last character
    assert len(split_steps("", "no separator here")) == 1


@pytest.mark.parametrize("kind", ["merging", "splitting", "char_chat"])
def test_step_end_tokens(kind):
    if kind in ("merging", "splitting"):
        tok, prompt, special = word_tokenizer(kind == "merging"), "", False
    else:  # character tokenizer (splits "\n\n") behind a chat template with special tokens
        tok = tiny_model().tokenizer
        prompt, special = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True,
                                                  tokenize=False), False
    response = "2 plus 3.\n\nWait: 5.\n\nThe answer is 5"
    steps = split_steps(prompt, response)
    ids, ends = step_end_tokens(tok, prompt + response, steps, add_special_tokens=special)
    text = prompt + response
    offsets = tok(text, add_special_tokens=special, return_offsets_mapping=True)["offset_mapping"]
    pieces = [text[a:b] for a, b in offsets]
    for step, end in zip(steps, ends):
        assert offsets[end][0] <= step.end_char < offsets[end][1]
    if kind == "merging":
        assert pieces[ends[0]] == ".\n\n" and pieces[ends[1]] == ".\n\n"
    elif kind == "splitting":
        assert pieces[ends[0]] == "\n" and pieces[ends[0] - 1] == "\n" and pieces[ends[0] - 2] == "."
    else:  # the tiny tokenizer keeps "\n\n" as one piece after a chat template's special tokens
        assert pieces[ends[0]] == "\n\n" and pieces[ends[0] - 1] == "."
    assert pieces[ends[2]] == "5" and ends[2] == len(ids) - 1
    assert ends == sorted(ends)


def test_problems_and_answers():
    problems = make_problems(6, seed=3)
    assert len(problems) == 6 and all(isinstance(p.answer, int) for p in problems)
    assert make_problems(6, seed=3) == problems
    assert extract_answer("so 3 + 4 = 7.\n\nThe answer is 1,204.") == 1204
    assert extract_answer("no number") is None


def _problems_file(tmp_path, rows=RESPONSES):
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(json.dumps({"question": q, "response": r, "answer": a}) for q, r, a in rows))
    return path


def test_collect_captures_step_ends(tmp_path):
    model = tiny_model("qwen2")
    collect(model, CollectConfig(layers=[1, 2]), tmp_path / "run", problems_file=str(_problems_file(tmp_path)),
            chat=True, progress=False, batch_size=2)
    acts, steps = load_steps(tmp_path / "run", "blocks.2.hook_resid_post")
    assert acts.shape == (9, model.d_model) and len(steps) == 9
    assert [s["label"] for s in steps[:3]] == ["other", "reflection", "other"]
    assert steps[4]["label"] == "backtracking" and steps[-1]["text"] == "The answer is 7"
    # the same vectors as a plain forward over one trace, unpadded
    text = model.chat_prompt(RESPONSES[2][0] + "\n\n" + INSTRUCTION) + RESPONSES[2][1]
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    batch = model.tokenize([text], formatted=True)
    _, cache = model.run_with_cache(batch, ["blocks.2.hook_resid_post"], logits=None)
    assert batch.input_ids[0].tolist() == ids
    own = cache["blocks.2.hook_resid_post"][0]
    for row, step in zip(acts[-3:], steps[-3:]):
        torch.testing.assert_close(row, own[-len(ids):][step["position"]], atol=1e-4, rtol=1e-4)


def test_collect_bad_input(tmp_path):
    model = tiny_model()
    with pytest.raises(ValueError, match="out of range"):
        collect(model, CollectConfig(layers=[7]), tmp_path / "a", progress=False)
    flat = _problems_file(tmp_path, [("q", "one step only", 1)])
    with pytest.raises(ValueError, match="separator"):
        collect(model, CollectConfig(), tmp_path / "b", problems_file=str(flat), progress=False)
    assert not (tmp_path / "b").exists()


def test_synthetic_dictionary_recovered(tmp_path):
    dictionary, samples = sparse_dictionary()
    write_store(tmp_path / "store", samples)
    config = TrainConfig(architecture="standard", d_sae=96, batch_size=256, steps=500, lr=3e-3, l1_coefficient=1.0, checkpoints=0)
    sae = load_sae(train_layer(tmp_path / "store", SITE, tmp_path / "sae", config, progress=False))
    dec = sae.W_dec.detach()
    assert torch.allclose(dec.norm(dim=1), torch.ones(96), atol=1e-5)  # unit-norm columns
    best = (dictionary @ dec.T).max(1).values
    assert (best > 0.9).float().mean() > 0.8


def test_resume_equals_uninterrupted_and_sae_lens_reloads(tmp_path):
    from sae_lens import SAE

    _, samples = sparse_dictionary(n=512)
    write_store(tmp_path / "store", samples)
    config = TrainConfig(architecture="standard", d_sae=48, batch_size=32, steps=30, lr=1e-3, checkpoints=2)
    whole = load_sae(train_layer(tmp_path / "store", SITE, tmp_path / "whole", config, seed=5, progress=False))
    train_layer(tmp_path / "store", SITE, tmp_path / "cut", config, seed=5, stop_after=18, progress=False)
    assert not (tmp_path / "cut" / "cfg.json").exists()
    with pytest.raises(ValueError, match="--resume"):
        train_layer(tmp_path / "store", SITE, tmp_path / "cut", config, seed=5, progress=False)
    other = TrainConfig(d_sae=48, batch_size=32, steps=400, lr=1e-3, checkpoints=2, architecture="topk")
    with pytest.raises(ValueError, match="resume it with --architecture standard --steps 30 "):
        train_layer(tmp_path / "store", SITE, tmp_path / "cut", other, seed=5, resume=True, progress=False)
    resumed = load_sae(train_layer(tmp_path / "store", SITE, tmp_path / "cut", config, seed=5, resume=True,
                                   progress=False))
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        torch.testing.assert_close(getattr(whole, name), getattr(resumed, name), atol=0, rtol=0)
    again = SAE.load_from_disk(tmp_path / "whole")
    x = samples[:64]
    torch.testing.assert_close(again(x), whole(x), atol=0, rtol=0)
    record = json.loads((tmp_path / "whole" / "training.json").read_text())
    assert record["curve"] and 0 <= record["throughput"]["wait_fraction"] < 1
