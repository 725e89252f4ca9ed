"""LAC evaluation (interp.voids.evaluation, interp.voids.mcq) and real layer skipping (interp.engine.skipping):
question files, letter reading, skip plans, identities of real vs paper skipping, CLI, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_model
from void_plants import plant_identities

from interp.cli import main
from interp.engine.skipping import SkipLayers
from interp.voids.evaluation import VoidEvalConfig, evaluate_voids, skip_plan
from interp.voids.mcq import letter_from_text, letter_token_ids, letters_from_logits, load_questions, mc_prompt

PROMPTS = ["hello there", "The quick brown fox"]


# ---- questions and letters ----------------------------------------------------------------
def test_builtin_question_set_is_balanced_and_well_formed():
    questions = load_questions("mcq_basic")
    assert len(questions) == 48
    assert all(len(q["choices"]) == 4 for q in questions)
    assert sorted({q["answer"] for q in questions}) == ["A", "B", "C", "D"]
    assert all(sum(q["answer"] == x for q in questions) == 12 for x in "ABCD")
    assert len(load_questions("mcq_basic", limit=5)) == 5


def test_prompt_format_and_letter_reading():
    record = {"question": "What is 7 + 5?", "choices": ["10", "12", "13", "11"], "answer": "B"}
    text = mc_prompt(record, chat=False)
    assert "Question: What is 7 + 5?\nA. 10\nB. 12\nC. 13\nD. 11\n" in text and text.endswith("Answer:")
    assert mc_prompt(record, chat=True).endswith("Reply with the letter only.")
    model = tiny_model("llama")
    ids = letter_token_ids(model, 4)  # char tokenizer: " A" is two tokens, so only "A" counts
    assert ids == [[model.tokenizer.convert_tokens_to_ids(c)] for c in "ABCD"]
    logits = torch.zeros(2, model.d_vocab)
    logits[0, ids[2][0]] = 5.0
    logits[1, ids[0][0]] = 1.0
    assert letters_from_logits(logits, ids) == ["C", "A"]
    assert letter_from_text(" The answer is B.", 4) == "B"
    assert letter_from_text("none here", 4) is None


@pytest.mark.parametrize("line, message", [
    ('{"question": "q", "choices": ["a", "b"], "answer": "C"}', "answer must be one of AB"),
    ('{"question": "q", "choices": ["a"], "answer": "A"}', "choices must be a list of 2-26"),
    ('{"question": "q", "choices": ["a", "b"]}', "missing required field"),
])
def test_bad_question_files_are_refused(tmp_path, line, message):
    path = tmp_path / "task.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        load_questions(str(path))


def test_unknown_task_names_the_builtin_ones():
    with pytest.raises(ValueError, match="unknown task 'nope'.*mcq_basic"):
        load_questions("nope")


# ---- skip plans and the skipping engine -----------------------------------------------------
def test_skip_plan_by_hand():
    active = torch.ones(2, 3, 4, dtype=torch.bool)  # [b, p, L]
    real = torch.tensor([[False, True, True], [True, True, True]])
    active[..., 2] = False  # void for every token -> not run
    active[real, 3] = torch.tensor([True, False, True, True, True])  # one void real token
    active[0, 0, 1] = False  # void only at a pad position: ignored
    whole, tokens = skip_plan(active, real)
    assert whole == [2]
    assert list(tokens) == [3]
    assert tokens[3].tolist() == [[False, False, True], [False, False, False]]


def test_skipping_a_layer_equals_planting_it_as_an_identity():
    model, planted = tiny_model("llama"), plant_identities(tiny_model("llama"), identity={1}, boost=1.0)
    with SkipLayers(model, whole=[1]) as skipping:
        skipped = model.forward(PROMPTS)
    assert skipping.layer_calls_skipped == 1 and skipping.layer_calls_run == model.n_layers - 1
    assert torch.equal(skipped, planted.forward(PROMPTS))
    mask = torch.ones_like(model.tokenize(PROMPTS).attention_mask, dtype=torch.bool)
    with SkipLayers(model, tokens={1: mask}):
        masked = model.forward(PROMPTS)
    assert torch.allclose(masked, skipped, atol=1e-5)  # every token void == the layer not run


def test_skip_layers_restore_the_model_and_refuse_a_kv_cache():
    model = tiny_model("qwen2")
    plain = model.forward(PROMPTS)
    with SkipLayers(model):
        assert torch.equal(model.forward(PROMPTS), plain)  # an empty plan changes nothing
    with SkipLayers(model, whole=[0]):
        with pytest.raises(ValueError, match="single forward passes without a KV cache"):
            model.generate(PROMPTS, max_new_tokens=2)
    layers = model.hf.model.layers
    assert all("forward" not in layer.__dict__ for layer in layers)
    assert torch.equal(model.forward(PROMPTS), plain)
    with pytest.raises(ValueError, match="cannot skip layer 7"):
        SkipLayers(model, whole=[7])


# ---- evaluation identities ----------------------------------------------------------------------
def test_real_skipping_equals_paper_mode_when_no_layer_is_void():
    model = plant_identities(tiny_model("llama", num_hidden_layers=4), identity=set())
    config = dict(task="mcq_basic", alphas=[0.5, 1.0], limit=4)
    real = evaluate_voids(model, VoidEvalConfig(skip="real", **config))
    paper = evaluate_voids(model, VoidEvalConfig(skip="paper", **config))
    assert real.layers_used_prompt == [100.0, 100.0]  # precondition: nothing is void
    table_r, table_p = real.per_question, paper.per_question
    assert table_r[table_r["mode"] == "real"]["predicted"].tolist() == \
        table_p[table_p["mode"] == "paper"]["predicted"].tolist()
    assert real.accuracy_skip == paper.accuracy_skip == [real.accuracy_no_skip] * 2
    assert all(c["layer_calls_skipped_frac"] == 0.0 for c in real.compute)


def test_real_skipping_removes_planted_identity_layers_and_keeps_answers():
    model = plant_identities(tiny_model("llama", num_hidden_layers=6), identity={2, 4})
    result = evaluate_voids(model, VoidEvalConfig(skip="real", alphas=[0.8], limit=3), batch_size=1)
    compute = result.compute[0]
    assert compute["layer_calls_skipped_frac"] == pytest.approx(2 / 6)  # exactly the identity layers
    assert compute["skip_pass_seconds"] > 0 and compute["net_seconds_with_detection"] > compute["skip_pass_seconds"]
    table = result.per_question
    assert table[table["mode"] == "real"]["predicted"].tolist() == table[table["mode"] == "no_skip"]["predicted"].tolist()
    assert result.per_layer_prompt[0, [2, 4]].tolist() == [0.0, 0.0]
    assert result.per_layer_answer[0, [2, 4]].tolist() == [0.0, 0.0]
    assert result.summary()["answer_final_layer_active"] == {"0.8": 1.0}


def test_generate_answers_record_the_response_phase():
    model = tiny_model("llama")
    result = evaluate_voids(model, VoidEvalConfig(answer="generate", alphas=[0.8], limit=2, max_new_tokens=3))
    summary = result.summary()
    assert summary["layers_used_pct"]["0.8"]["response"] is not None
    assert len(summary["per_layer_active"]["0.8"]["response"]) == model.n_layers
    assert 0.0 <= summary["accuracy"]["0.8"]["skip"] <= 1.0


# ---- CLI and bad input ----------------------------------------------------------------------------
def test_cli_voids_eval_json(tiny_llama_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["voids", "eval", "--model", str(tiny_llama_folder), "--task", "mcq_basic", "--alphas", "0.5,1.0",
                 "--skip", "real", "--limit", "2", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["accuracy"]) == {"0.5", "1"}
    assert set(printed["accuracy"]["0.5"]) == {"no_skip", "skip"}
    assert set(printed["layers_used_pct"]["1"]) >= {"prompt", "response"}
    assert "layer_calls_skipped_frac" in printed["compute"]["0.5"]
    assert (out / "figures" / "accuracy_vs_alpha.html").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--alphas", "0,0.5"], "--alphas must all be positive"),
    (["--skip", "real", "--answer", "generate"], "use --answer logits"),
    (["--task", "no-such-task"], "unknown task"),
])
def test_cli_eval_bad_input_fails_before_loading(argv, message, capsys):
    assert main(["voids", "eval", "--model", "no-such-model", *argv]) == 2
    assert message in capsys.readouterr().err
