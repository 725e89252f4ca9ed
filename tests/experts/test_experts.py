"""MoTE experts scan: association statistics by hand, the batched causal screen, and the
planted Qwen3-MoE (interp.experts.planted) where association cannot tell the planted expert
from its decoys but the causal ranking does."""

from __future__ import annotations

import pytest
import torch

from interp.experts.association import RoutingCounts, associate, routing_counts
from interp.experts.behaviour import Behaviour, measure
from interp.experts.planted import BEHAVIOUR_TOKEN, DECOYS, PLANTED, planted_model
from interp.experts.result import ExpertsResult
from interp.experts.scan import ExpertsConfig, experts_scan

pytestmark = pytest.mark.usefixtures("one_thread")
TARGET = ["ab#", "hello@", "x$", "the cat#", "zz@", "go $"]
OTHER = ["abc", "hello", "the cat", "zzz", "go on", "world"]


@pytest.fixture(scope="module")
def planted():
    return planted_model()


@pytest.fixture(scope="module")
def result(planted):
    config = ExpertsConfig(behaviour_token=BEHAVIOUR_TOKEN, candidates=6, top_n=1, random_seeds=3, permutations=200)
    return experts_scan(planted, TARGET, OTHER, config, perplexity_texts=["the cat sat on the mat", "hello world"])


def test_association_scores_by_hand():
    # two layers, three experts; target prompts always pick expert 0, other prompts expert 2
    def counts(expert, tokens):
        count = torch.zeros(len(tokens), 2, 3)
        count[:, :, expert] = torch.tensor(tokens, dtype=torch.float)[:, None]
        return RoutingCounts(count, 0.5 * count, torch.tensor(tokens, dtype=torch.float))

    scores = associate(counts(0, [2, 4, 6]), counts(2, [3, 5]), permutations=200)
    assert scores["ftri"][:, 0].tolist() == [1.0, 1.0] and scores["ftri"][:, 2].tolist() == [-1.0, -1.0]
    assert scores["risk_diff"][:, 1].tolist() == [0.0, 0.0]
    assert scores["weight_target"][0, 0].item() == 0.5
    # 10 ways to label 3 of 5 prompts as target; only the true labelling reaches |ftri| = 1
    assert scores["p_value"][0, 0].item() < 0.2 and scores["p_value"][0, 1].item() == 1.0
    with pytest.raises(ValueError, match="at least one target"):
        associate(counts(0, []), counts(2, [3]))


def test_routing_counts_cover_real_tokens_only(planted):
    counts = routing_counts(planted, ["ab#", "a"])
    assert counts.tokens.tolist() == [4.0, 2.0]  # BOS + characters, no pads
    assert torch.allclose(counts.count.sum(-1), 2 * counts.tokens[:, None].expand(-1, 3))  # top-2 per token
    assert torch.allclose(counts.weight.sum(-1), counts.tokens[:, None].expand(-1, 3), atol=1e-5)  # normalised


def test_batched_screen_equals_one_run_per_toggle(planted):
    behaviour = Behaviour("prob", BEHAVIOUR_TOKEN)
    toggles = [((), ()), ([PLANTED], ()), ([DECOYS[0]], ()), ((), [PLANTED])]
    batched = measure(planted, TARGET, behaviour, toggles, rows_per_batch=64)
    alone = torch.cat([measure(planted, TARGET, behaviour, [t], rows_per_batch=1) for t in toggles])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-6)
    split = measure(planted, TARGET, behaviour, toggles, rows_per_batch=5)  # chunks cut through toggle sets
    torch.testing.assert_close(split, alone, rtol=1e-4, atol=1e-6)


def test_planted_expert_ranks_first_although_decoys_associate_as_well(result):
    first = result.experts[0]
    assert (first["layer"], first["expert"]) == PLANTED
    decoys = {(r["layer"], r["expert"]): r for r in result.experts if (r["layer"], r["expert"]) in DECOYS}
    assert set(decoys) == set(DECOYS)  # tested: association put them among the candidates
    for row in decoys.values():
        assert row["score"] == pytest.approx(first["score"]) and row["risk_diff"] == pytest.approx(first["risk_diff"])
        assert abs(row["effect"]) < 0.01
    assert first["effect"] > 0.9 and first["effect_on"] > 0.9 and first["p_value"] < 0.05


def test_conditions_off_on_and_random_control(result):
    effects = result.effects
    assert effects["baseline"]["target"] > 0.99 and effects["baseline"]["other"] < 0.05
    assert effects["top_off"]["target"] < 0.05  # switching it off removes the behaviour
    assert effects["top_on"]["other"] > 0.95  # forcing it on causes it on neutral prompts
    randoms = result.random_off("target")
    assert len(randoms) == 3 and min(randoms) > 0.99 and max(result.random_off("other")) < 0.05
    # quality on benign text: the planted expert off costs nothing (no trigger there), forced on it
    # predicts "!" everywhere
    ppl = {name: effects[name]["perplexity"] for name in ("baseline", "top_off", "top_on")}
    assert ppl["top_off"] == pytest.approx(ppl["baseline"], rel=1e-3) and ppl["top_on"] > 10 * ppl["baseline"]


def test_result_round_trip_and_figures(result, tmp_path):
    loaded = ExpertsResult.load(result.save(tmp_path / "run"))
    assert loaded.experts == result.experts and loaded.effects == result.effects
    assert torch.equal(loaded.p_value, result.p_value) and loaded.layers == [0, 1, 2]
    figures = loaded.figures()
    assert set(figures) == {"score_heatmap", "effects", "causal_ranking"}
    assert len(figures["effects"].data) == 2  # target and other bars


def test_bad_input_is_refused_before_work(planted):
    from tiny import tiny_model

    with pytest.raises(ValueError, match="dense llama model"):
        experts_scan(tiny_model("llama"), TARGET, OTHER)
    with pytest.raises(ValueError, match="0 other"):
        experts_scan(planted, TARGET, [])
    with pytest.raises(ValueError, match="needs a behaviour token"):
        experts_scan(planted, TARGET, OTHER, ExpertsConfig(metric="argmax"))
    with pytest.raises(ValueError, match="2 tokens"):
        experts_scan(planted, TARGET, OTHER, ExpertsConfig(behaviour_token="!!"))
    with pytest.raises(ValueError, match="expert out of range"):
        measure(planted, TARGET, Behaviour("prob", "!"), [([(1, 8)], ())])


def test_routing_over_responses_counts_prompt_and_generated_tokens(planted):
    from interp.experts.association import with_responses

    batch = with_responses(planted, ["ab#", "a"], max_new_tokens=3)
    assert batch.attention_mask.sum(-1).tolist() == [4 + 3, 2 + 3]  # no EOS in 3 greedy tokens here
    counts = routing_counts(planted, batch)
    assert counts.tokens.tolist() == [7.0, 5.0]
    # "ab#" continues with "!" (not a trigger); the planted expert fires on "#" only
    planted_layer = counts.count[:, PLANTED[0], PLANTED[1]]
    assert planted_layer.tolist() == [1.0, 0.0]


def test_refusal_metric_path_ranks_through_generation(planted, monkeypatch):
    """The default metric generates per row with per-row toggles; a stand-in classifier that
    calls a '!' a refusal turns the planted behaviour into a refusal rate."""
    import interp.experts.behaviour as behaviour

    monkeypatch.setattr(behaviour, "classify_response", lambda text: "refusal" if "!" in text else "answer")
    config = ExpertsConfig(candidates=4, top_n=1, random_seeds=1, permutations=50, max_new_tokens=2, force_on=False)
    result = experts_scan(planted, TARGET[:4], OTHER[:4], config)
    assert result.metric == "refusal rate"
    assert (result.experts[0]["layer"], result.experts[0]["expert"]) == PLANTED
    assert result.effects["baseline"]["target"] == 1.0 and result.effects["top_off"]["target"] == 0.0
    assert result.effects["top_on"]["other"] == 1.0 and result.experts[0]["effect_on"] is None
