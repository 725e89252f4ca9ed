"""AUSteer scores, selection, a planted task, the tasks and the evaluation harness."""

import random
import string

import pytest
import torch
from tiny import tiny_model

from interp.arch.spec import down_proj_weight, get_module, o_proj_weight
from interp.runs.results import load_run
from steering import (
    AUSteerEvalConfig,
    SteeringVector,
    fit_austeer,
    get_task,
    momentum_scores,
    run_austeer_eval,
    select,
    task_accuracy,
    top_k,
)
from steering.tasks import Task, TaskItem


def test_beta_follows_the_momentum_ratio_rule():
    # momentum per triple for 4 coordinates: 3/4 positive, 3/4 negative, 2 up 2 down, all zero
    m = torch.tensor([[1.0, -1.0, 1.0, 0.0], [2.0, -2.0, 1.0, 0.0], [1.0, -1.0, -1.0, 0.0], [-1.0, 1.0, -1.0, 0.0]])
    scores = momentum_scores(m[:, None, :], torch.zeros(4, 1, 4))
    assert scores.beta[0].tolist() == [0.75, -0.75, 0.5, 0.0]


def test_ties_in_beta_are_broken_by_the_standardised_momentum():
    right = torch.tensor([[1.0, 5.0], [1.2, 5.1], [0.9, 4.9]])[:, None, :]  # both coordinates always up
    noisy = torch.tensor([[0.5, 0.0], [0.0, 0.0], [0.1, 0.0]])[:, None, :]
    scores = momentum_scores(right, noisy)
    assert scores.beta.tolist() == [[1.0, 1.0]]
    assert [dim for _, dim, _ in top_k(scores, 2)] == [1, 0]  # dim 1 moves consistently further


def _planted_model(coordinate: int, strength: float = 0.03):
    """Tiny llama where embedding dim `coordinate` is +strength for upper-case letters and
    -strength for lower-case ones, and no layer writes to that dim: the residual's value
    there is decisive (right answers upper case, wrong ones lower case) and nothing else is."""
    model = tiny_model("llama", seed=3)
    vocab = model.tokenizer.get_vocab()
    embed = model.hf.get_input_embeddings().weight
    with torch.no_grad():
        for char in string.ascii_letters:
            embed[vocab[char], coordinate] = strength if char.isupper() else -strength
        for layer in range(model.n_layers):
            o_proj_weight(model.spec, model.hf, layer)[coordinate] = 0.0  # views of the weights
            down_proj_weight(model.spec, model.hf, layer)[coordinate] = 0.0
    assert float(get_module(model.hf, f"{model.spec.layers}.0.{model.spec.attn}.{model.spec.o_proj}").weight[
        coordinate].abs().sum()) == 0.0
    return model


def _planted_triples(n: int = 64):
    rng = random.Random(0)
    return [("".join(rng.choices(string.digits + "+-=", k=rng.randint(3, 8))),
             rng.choice(string.ascii_uppercase), rng.choice(string.ascii_lowercase)) for _ in range(n)]


def test_planted_coordinate_is_selected_first():
    coordinate = 13
    model = _planted_model(coordinate)
    vector = fit_austeer(model, _planted_triples(), site="layer", k=3)
    selected = vector.config["selected"]
    assert [dim for _, dim, _ in selected] == [coordinate] * 3  # the same dim at every layer's output
    assert all(beta == 1.0 for _, _, beta in selected)
    beta = vector.extras["beta"]  # [L, d_model]
    others = torch.cat([beta[:, :coordinate], beta[:, coordinate + 1:]], 1)
    assert others.abs().max() < 0.9  # nothing else is consistent


def test_select_reuses_the_saved_scores_for_another_k(tmp_path):
    model = tiny_model("llama")
    vector = fit_austeer(model, _planted_triples(12), site="attention", k=4)
    assert vector.kind == "scale" and vector.width == model.n_heads * model.d_head
    assert sum(int((v != 0).sum()) for v in vector.vectors.values()) == 4
    vector.save(tmp_path / "au.safetensors")
    again = select(SteeringVector.load(tmp_path / "au.safetensors"), 10)
    assert again.config["k"] == 10 and again.config["selected"][:4] == vector.config["selected"]
    with pytest.raises(ValueError, match="no AUSteer scores"):
        select(SteeringVector.from_tensor(torch.ones(64), layers=[0]), 2)


def test_tasks_have_disjoint_splits_and_right_answers():
    task = get_task("arithmetic")
    split = task.split(100, 20, 50, seed=1)
    prompts = [set(i.prompt for i in split[name]) for name in ("train", "val", "test")]
    assert not (prompts[0] & prompts[1] or prompts[0] & prompts[2] or prompts[1] & prompts[2])
    item = next(i for i in task.items if "buys" in i.prompt)
    numbers = [int(w) for w in item.prompt.replace(".", " ").split() if w.isdigit()]
    assert int(item.answer) == sum(numbers) and item.wrong != item.answer
    yesno = get_task("yesno")
    assert sum(i.answer == "yes" for i in yesno.items) == sum(i.answer == "no" for i in yesno.items)
    assert yesno.is_correct(" Yes, it is.", TaskItem("q", "yes", "no"))
    assert task.is_correct(" 12 apples", TaskItem("q", "12", "11")) and not task.is_correct(" none", item)
    with pytest.raises(ValueError, match="asked for"):
        task.split(1000, 0, 0)


class _Oracle:
    """Stands in for a model: answers each prompt from a lookup (right or wrong)."""

    def __init__(self, items, right: bool):
        self.answers = {i.prompt: (i.answer if right else i.wrong) for i in items}

    def generate(self, prompts, **kwargs):
        return type("G", (), {"texts": [" " + self.answers[p] for p in prompts]})()


def test_task_accuracy_scores_in_prompt_order():
    task = get_task("compare")
    items = task.items[:9]
    assert task_accuracy(_Oracle(items, True), task, items, batch_size=4)[0] == 1.0
    accuracy, texts = task_accuracy(_Oracle(items, False), task, items, batch_size=4)
    assert accuracy == 0.0 and texts == [" " + i.wrong for i in items]


def test_eval_harness_runs_and_saves(tmp_path):
    model = tiny_model("llama")
    items = [TaskItem(f"Question: {a}+{b}=?\nAnswer:", str(a + b), str(a + b + 1)) for a in range(3) for b in range(3)]
    task = Task("tiny-sums", items, "number", max_new_tokens=2)
    config = AUSteerEvalConfig(ks=[2, 5], alphas=[1.0], block_alphas=[1.0], block_layer_stride=2,
                               n_train=4, n_val=2, n_test=3)
    result = run_austeer_eval(model, task, config, progress=False)
    table = result.table
    assert list(table.method) == ["none", "block-mean-diff", "austeer", "austeer"]
    assert list(table.n_coordinates) == [0, model.d_model, 2, 5]
    assert table.test_accuracy.between(0, 1).all() and len(result.sweep) == 2 + 2
    back = load_run(result.save(tmp_path / "run"))
    assert back.table.equals(table) and torch.equal(back.beta, result.beta)
