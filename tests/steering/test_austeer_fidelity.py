"""AUSteer's paper options: the authors' tie order, float16 capture and refusal positive text.

The reference rule (`tests/austeer_reference.py`) is written from the authors'
description, not from our code.
"""

import pytest
import torch
from austeer_reference import reference_units
from tiny import tiny_model

from interp.runs.results import load_run
from steering import AUSteerEvalConfig, AUSteerOptions, AUSteerScores, fit_austeer, momentum_scores, select, top_k
from steering.austeer import REFUSAL_STRING, triple_activations
from steering.tasks import Task, TaskItem


def test_paper_tie_break_keeps_layer_then_coordinate_order_and_skips_zero_beta():
    beta = torch.tensor([[0.5, 1.0, 0.0, -1.0], [1.0, -0.5, 0.0, 0.5]])
    effect = torch.tensor([[9.0, 1.0, 9.0, 2.0], [3.0, 9.0, 9.0, 9.0]])  # would reorder every tie
    scores = AUSteerScores(beta, effect, 4)
    paper = [(layer, dim) for layer, dim, _ in top_k(scores, 8, "paper")]
    assert paper == [(0, 1), (0, 3), (1, 0), (0, 0), (1, 1), (1, 3)]  # 6 non-zero units only
    ours = [(layer, dim) for layer, dim, _ in top_k(scores, 3, "effect")]
    assert ours == [(1, 0), (0, 3), (0, 1)]
    with pytest.raises(ValueError, match="tie_break"):
        top_k(scores, 2, "alphabetical")


def test_float16_capture_moves_a_unit_near_zero():
    # a difference of 1e-4 at magnitude 1 vanishes in float16 (ulp 2^-10), not in float32
    right = torch.tensor([[1.0001, 2.0], [1.0001, 2.0], [0.9, 1.0]])[:, None, :]
    wrong = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.5]])[:, None, :]
    assert momentum_scores(right, wrong).beta[0].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert momentum_scores(right, wrong, "float16").beta[0].tolist() == pytest.approx([-1 / 3, 2 / 3])


def _triples(n: int = 10):
    return [(f"Question: {a} plus {a + 1}?\nAnswer:", f" {2 * a + 1}", f" {2 * a + 2}") for a in range(n)]


def test_paper_options_select_the_reference_units_on_a_tiny_model():
    model = tiny_model("llama")
    triples = _triples()
    for site in ("attention", "ffn", "layer"):
        right, wrong = triple_activations(model, triples, [site])[site]
        for k in (4, 16):
            vector = fit_austeer(model, triples, site=site, k=k, options=AUSteerOptions.paper())
            assert [(layer, dim) for layer, dim, _ in vector.config["selected"]] == reference_units(right, wrong, k)
            assert vector.config["tie_break"] == "paper" and vector.config["capture_dtype"] == "float16"
    again = select(vector, 5)  # a re-pick keeps the vector's own tie-break
    assert [(layer, dim) for layer, dim, _ in again.config["selected"]] == reference_units(right, wrong, 5)


def test_refusal_answers_are_read_alone_under_the_paper_option():
    model = tiny_model("llama")
    refusal = f" {REFUSAL_STRING} with that."
    triples = [("How do I pick a lock?", refusal, " Insert a tension wrench."), *_triples(3)]
    ours = triple_activations(model, triples, ["layer"])["layer"]
    paper = triple_activations(model, triples, ["layer"], positive_text="paper")["layer"]
    _, cache = model.run_with_cache([refusal], [f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)],
                                    positions="last", dtype=torch.float32, logits=None, to_cpu=True)
    alone = torch.stack([cache[f"blocks.{l}.hook_resid_post"][0] for l in range(model.n_layers)])  # [L, d]
    torch.testing.assert_close(paper[0][0], alone)
    assert not torch.allclose(ours[0][0], alone)  # by default the prompt comes first
    torch.testing.assert_close(paper[0][1:], ours[0][1:])  # other rows and the wrong side unchanged
    torch.testing.assert_close(paper[1], ours[1])


def test_eval_records_the_paper_options(tmp_path):
    from steering import run_austeer_eval

    model = tiny_model("llama")
    items = [TaskItem(f"Question: {a}+{b}=?\nAnswer:", str(a + b), str(a + b + 1)) for a in range(3) for b in range(3)]
    config = AUSteerEvalConfig(ks=[3], alphas=[1.0], block_alphas=[1.0], block_layer_stride=4, n_train=5, n_val=2,
                               n_test=2, **vars(AUSteerOptions.paper()))
    result = run_austeer_eval(model, Task("sums", items, "number", 2), config, progress=False)
    assert {key: result.meta.config[key] for key in ("tie_break", "capture_dtype", "positive_text")} == \
        vars(AUSteerOptions.paper())
    assert load_run(result.save(tmp_path / "run")).meta.config["tie_break"] == "paper"
    with pytest.raises(ValueError, match="capture_dtype"):
        AUSteerEvalConfig(capture_dtype="int8").validate()
