"""Skill bases (steering.skills): pooling, the PCA basis, naming, vectors, selection, steering.

Planted structures on synthetic activations and a tiny random llama (character tokenizer,
3 layers, d_model 64, BOS "<s>" added by the tokenizer, context 256 tokens).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from tiny import tiny_model

from interp.engine.edits import Add
from steering.apply import VectorUse, steering_edits
from steering.skills import (SkillFitConfig, corpus_from_records, fit_skills, pass_at_k, pool_to_store,
                             pooled_batch, select)
from steering.skills.basis import fit_basis
from steering.skills.naming import apply_namer, describe_directions
from steering.skills.pooling import iter_pooled


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def planted_corpus(n: int = 24) -> list[dict]:
    """Two kinds of text (arithmetic vs prose words) of varied lengths, with a category."""
    records = []
    for i in range(n):
        if i % 2:
            text = " ".join(["apple river song"] * (1 + i % 4)) + f" story {i}"
        else:
            text = " ".join([f"{i} plus {i + 3} equals {2 * i + 3}"] * (1 + i % 3))
        records.append({"id": f"t{i}", "text": text, "category": "prose" if i % 2 else "math"})
    return records


@pytest.fixture(scope="module")
def basis(model):
    return fit_skills(model, corpus_from_records(planted_corpus()), SkillFitConfig(k=3, layers="all"), progress=False)


def _chunks(rows: np.ndarray, size: int):
    def chunks():
        for start in range(0, len(rows), size):
            yield np.arange(start, min(start + size, len(rows))), rows[start:start + size]
    return chunks


# ---- basis ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["full", "incremental"])
def test_planted_low_rank_subspace_is_recovered(method):
    rng = np.random.default_rng(0)
    planted = np.linalg.qr(rng.normal(size=(200, 3)))[0].T  # [3, 200] orthonormal
    rows = (rng.normal(size=(500, 3)) * [10.0, 6.0, 3.0]) @ planted + 0.01 * rng.normal(size=(500, 200)) + 4.0
    basis = fit_basis(_chunks(rows, 64), len(rows), 3, method)
    assert np.degrees(subspace_angles(basis.components.T, planted.T)).max() < 0.5
    assert basis.orthonormality_error() < 1e-10
    assert basis.variance_ratio.sum() > 0.99 and np.all(np.diff(basis.variance) < 0)


def test_incremental_and_full_pca_agree_on_a_small_corpus(model, tmp_path):
    corpus = corpus_from_records(planted_corpus(32))
    full = fit_skills(model, corpus, SkillFitConfig(k=2, layers="all", pca="full"), store=tmp_path / "s",
                      progress=False)
    inc = fit_skills(model, corpus, SkillFitConfig(k=2, layers="all", pca="incremental", pca_chunk=8),
                     store=tmp_path / "s", resume=True, progress=False)
    assert (full.pca_method, inc.pca_method) == ("full", "incremental")
    angles = subspace_angles(full.components.double().T.numpy(), inc.components.double().T.numpy())
    assert np.degrees(angles).max() < 1.0
    assert torch.allclose(full.variance_ratio, inc.variance_ratio, atol=1e-3)
    for k in range(2):  # same sign convention, so the same pole is "+"
        assert float(full.components[k] @ inc.components[k]) > 0.99
        assert full.directions[k]["top_ids"][:3] == inc.directions[k]["top_ids"][:3]


def test_corpus_smaller_than_k_is_refused_before_pooling(model, tmp_path):
    corpus = corpus_from_records(planted_corpus(4))
    with pytest.raises(ValueError, match="--k 12 is more than the 3 directions a corpus of 4 texts spans"):
        fit_skills(model, corpus, SkillFitConfig(k=12), store=tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()


def test_default_k_is_clamped_to_the_corpus_with_a_note(model, tmp_path, capsys):
    corpus = corpus_from_records(planted_corpus(4))
    result = fit_skills(model, corpus, SkillFitConfig(), store=tmp_path / "store", progress=False)
    assert result.k == 3
    assert "note: using --k 3 (default --k 10 > 3 directions a corpus of 4 texts spans" in capsys.readouterr().err


# ---- pooling ----------------------------------------------------------------------------------
def test_padded_batch_pools_like_single_prompts(model):
    texts = ["a", "hello there", "a much longer text with many more characters in it"]
    together, n_tokens, _ = pooled_batch(model, texts, [0, 1, 2])
    for i, text in enumerate(texts):
        alone, n_alone, _ = pooled_batch(model, [text], [0, 1, 2])
        assert torch.allclose(together[i], alone[0], atol=1e-5)
        assert int(n_tokens[i]) == int(n_alone[0]) == len(text)  # BOS not counted


def test_pooling_is_the_mean_over_real_tokens_without_bos(model):
    text = "mean me"
    _, cache = model.run_with_cache([text], ["blocks.1.hook_resid_post"], positions="all")
    assert int(cache.input_ids[0, 0]) == model.tokenizer.bos_token_id
    expected = cache["blocks.1.hook_resid_post"][0, 1:].mean(0)  # skip BOS
    pooled, _, _ = pooled_batch(model, [text, "a longer neighbour text"], [1])
    assert torch.allclose(pooled[0], expected, atol=1e-5)
    assert not torch.allclose(pooled[0], cache["blocks.1.hook_resid_post"][0].mean(0), atol=1e-4)


def test_pooling_leaves_out_the_first_token_also_without_a_bos():
    """SmolLM2 adds no BOS: its first text token is the sink with massive activations."""
    model = tiny_model("llama", bos="never")
    text = "mean me"
    _, cache = model.run_with_cache([text], ["blocks.1.hook_resid_post"], positions="all")
    assert int(cache.input_ids[0, 0]) != model.tokenizer.bos_token_id
    expected = cache["blocks.1.hook_resid_post"][0, 1:].mean(0)
    pooled, _, _ = pooled_batch(model, [text, "a longer neighbour"], [1])
    assert torch.allclose(pooled[0], expected, atol=1e-5)


def test_layers_are_concatenated_in_order_and_inner_drops_first_and_last(model, basis):
    pooled, _, _ = pooled_batch(model, ["abc"], [0, 2])
    assert pooled.shape == (1, 2 * model.d_model)
    assert torch.allclose(pooled[0, model.d_model:], pooled_batch(model, ["abc"], [2])[0][0])
    from steering.skills import resolve_layers

    assert resolve_layers(model, "inner") == [1] and resolve_layers(model, "all") == [0, 1, 2]
    with pytest.raises(ValueError, match="layer 7 out of range"):
        resolve_layers(model, "1,7")


def test_texts_longer_than_the_context_are_cut_to_their_first_tokens(model):
    long = "x" * 300 + " tail that is cut"  # 318 tokens + BOS > context 256
    pooled, n_tokens, cut = pooled_batch(model, [long], [1])
    assert int(cut[0]) == len(long) + 1 - 256 and int(n_tokens[0]) == 255
    head = long[:255]  # character tokens: BOS + the first 255 characters
    assert torch.allclose(pooled[0], pooled_batch(model, [head], [1])[0][0], atol=1e-5)
    _, _, cut_short = pooled_batch(model, [long], [1], max_tokens=20)
    assert int(cut_short[0]) == len(long) + 1 - 20


def test_store_resumes_finished_batches(model, tmp_path, monkeypatch):
    import steering.skills.pooling as pooling

    texts = [f"text number {i}" for i in range(10)]
    reference = pool_to_store(model, texts, [1], tmp_path / "ref", batch_size=4, progress=False)
    calls = {"n": 0}
    real = pooling.pooled_batch

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pooling, "pooled_batch", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        pool_to_store(model, texts, [1], tmp_path / "s", batch_size=4, progress=False)
    with pytest.raises(ValueError, match="pass --resume"):
        pool_to_store(model, texts, [1], tmp_path / "s", batch_size=4, progress=False)
    calls["n"] = 10
    store = pool_to_store(model, texts, [1], tmp_path / "s", batch_size=4, resume=True, progress=False)
    assert calls["n"] == 12 and store.complete  # 2 batches left of 3
    got = np.concatenate([r for _, r in sorted(iter_pooled(store), key=lambda c: c[0][0])])
    index = np.concatenate([i for i, _ in iter_pooled(store)])
    want = dict(zip(np.concatenate([i for i, _ in iter_pooled(reference)]),
                    np.concatenate([r for _, r in iter_pooled(reference)])))
    assert len(index) == 10 and all(np.allclose(want[i], r, atol=1e-6) for i, r in zip(index, got[np.argsort(index)]))
    with pytest.raises(ValueError, match="different capture"):
        pool_to_store(model, texts[:-1], [1], tmp_path / "s", resume=True, progress=False)


# ---- naming -----------------------------------------------------------------------------------
def test_naming_ranks_by_cosine_and_finds_the_contrasting_keywords(basis):
    cos = basis.cosines[:, 0]
    top, bottom = basis.directions[0]["top_index"], basis.directions[0]["bottom_index"]
    assert float(cos[top[0]]) == float(cos.max()) and float(cos[bottom[0]]) == float(cos.min())
    texts = ["apple river song"] * 5 + ["plus equals sum"] * 5
    cosines = np.array([[1.0 - 0.1 * i] for i in range(10)])  # first five at the + pole
    record = describe_directions(cosines, texts, [str(i) for i in range(10)], n_examples=3)[0]
    assert set(record["keywords_pos"]) == {"apple", "river", "song"}
    assert set(record["keywords_neg"]) == {"plus", "equals", "sum"}
    assert record["top_ids"] == ["0", "1", "2"] and record["bottom_ids"] == ["9", "8", "7"]


def test_a_pluggable_namer_names_each_direction(basis):
    seen = []

    def judge(direction, positive, negative, keywords):
        seen.append((direction, len(positive), len(negative), sorted(keywords)))
        return f"skill {direction}"

    directions = apply_namer([dict(d) for d in basis.directions], basis.corpus["text"].tolist(), judge)
    assert [d["name"] for d in directions] == ["skill 0", "skill 1", "skill 2"]
    assert seen[0][3] == ["+", "-"]


# ---- steering vectors -------------------------------------------------------------------------
def test_direction_vector_adds_each_layer_slice_to_that_layers_mlp_output(model, basis):
    vector = basis.vector(1, scale="unit")
    assert vector.site == "ffn" and vector.layers == basis.layers
    slices = basis.components[1].view(len(basis.layers), model.d_model)
    by_hand = [Add(f"blocks.{layer}.hook_mlp_out", vector=slices[i], alpha=3.0, positions="all")
               for i, layer in enumerate(basis.layers)]
    edits = steering_edits(model, [VectorUse(vector, alpha=3.0)])
    prompts = ["steer me", "and me too please"]
    assert torch.allclose(model.forward(prompts, edits=edits), model.forward(prompts, edits=by_hand), atol=1e-6)
    scaled = basis.vector(1)  # scale "std": alpha 1 = one corpus standard deviation
    assert torch.allclose(scaled.vectors[basis.layers[0]], slices[0] * basis.std(1), atol=1e-6)


# ---- selection ---------------------------------------------------------------------------------
def test_selection_keeps_the_top_fraction_of_the_chosen_pole(model, basis):
    scores = basis.scores[:, 0]
    plus = select(basis, 0, "+", 0.25)
    minus = select(basis, 0, "-", 0.25)
    assert len(plus.index) == len(minus.index) == 6
    assert float(scores[plus.index].min()) >= float(scores[minus.index].max())
    assert set(plus.index) == set(scores.argsort(descending=True)[:6].tolist())
    assert plus.report["n_selected"] == 6 and "category_selected" in plus.report
    pool = corpus_from_records(planted_corpus())  # the corpus again, as a pool: same ranking
    again = select(basis, 0, "+", 0.25, model=model, pool=pool, progress=False)
    assert again.index == plus.index
    assert np.allclose(again.scores, scores.numpy(), atol=1e-4)
    assert again.records[0] == planted_corpus()[plus.index[0]]
    with pytest.raises(ValueError, match="fraction must be in"):
        select(basis, 0, "+", 1.5)


def test_pass_at_k_estimator():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25) and pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def test_result_saves_and_loads(basis, tmp_path):
    from interp.runs.results import load_run

    again = load_run(basis.save(tmp_path / "run"))
    assert torch.equal(again.components, basis.components) and again.directions == basis.directions
    assert again.summary()["explained_variance"] == basis.summary()["explained_variance"]
    assert set(again.figures()) == {"explained_variance", "projection"}


def test_answer_nll_scores_only_the_answer_tokens(model):
    from steering.skills import answer_nll
    from steering.tasks import TaskItem

    items = [TaskItem("Q: 2+2? A:", "4", "5"), TaskItem("Q: longer one, 10+10? A:", "20", "21")]
    by_hand = []
    for item in items:
        ids = model.tokenize([item.prompt + " " + item.answer]).input_ids[0]  # [n]
        n_answer = len(ids) - len(model.tokenize([item.prompt]).input_ids[0])
        logp = model.forward([item.prompt + " " + item.answer])[0].log_softmax(-1)  # [n, V]
        by_hand += [-float(logp[j - 1, ids[j]]) for j in range(len(ids) - n_answer, len(ids))]
    assert answer_nll(model, items) == pytest.approx(sum(by_hand) / len(by_hand), rel=1e-5)


def test_make_corpus_answers_each_prompt_through_the_engine(model):
    from steering.skills import default_prompts, make_corpus

    shipped = default_prompts()
    assert len(shipped) == 60 and {p["category"] for p in shipped} == {"arithmetic", "code", "prose"}
    records = make_corpus(model, shipped[:3], max_new_tokens=3, progress=False)
    assert [r["id"] for r in records] == [p["id"] for p in shipped[:3]]
    assert all(r["response"] and r["prompt"] and r["category"] for r in records)
    assert corpus_from_records(records).is_pairs
