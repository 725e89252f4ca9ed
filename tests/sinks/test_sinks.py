"""Attention sinks (interp.sinks, interp.sinks.stats): hand-built patterns, tiny models, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.engine.attention import PatternUnavailableError
from interp.sinks.attention_edits import move_to_first_token
from interp.cli import main
from interp.runs.results import load_run
from interp.sinks.measure import SinkConfig, default_prompts, first_tokens, random_token_batch, run_sinks, sinks
from interp.sinks.stats import (
    cosine_to_first,
    first_token_share,
    real_pattern,
    secondary_sinks,
    sink_importance,
    sink_rate,
    value_out_norms,
)

# One head over 4 tokens (rows = queries, causal).
HAND = torch.tensor([[1.0, 0.0, 0.0, 0.0],
                     [0.5, 0.5, 0.0, 0.0],
                     [0.2, 0.3, 0.5, 0.0],
                     [0.1, 0.2, 0.3, 0.4]])[None]  # [H=1, 4, 4]
PROMPTS = ["the first prompt is long enough", "second one", "and a third prompt here"]


def test_importance_is_the_mean_over_queries_at_or_after_each_key():
    alpha = sink_importance(HAND)[0]
    expected = [(1 + 0.5 + 0.2 + 0.1) / 4, (0.5 + 0.3 + 0.2) / 3, (0.5 + 0.3) / 2, 0.4 / 1]
    torch.testing.assert_close(alpha, torch.tensor(expected))


def test_sink_rate_counts_heads_strictly_above_eps_at_position_zero():
    alpha = torch.zeros(2, 2, 3)  # [L, H, n]
    alpha[..., 0] = torch.tensor([[0.45, 0.1], [0.31, 0.3]])  # 0.3 is not above eps = 0.3
    assert sink_rate(alpha, eps=0.3) == pytest.approx(50.0)
    assert sink_rate(alpha, eps=0.05) == pytest.approx(100.0)
    alpha[0, 0, 1] = 0.9
    assert sink_rate(alpha, eps=0.3, position=1) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="no position 3"):
        sink_rate(alpha, position=3)


def test_first_token_share_leaves_out_query_zero():
    mean, last = first_token_share(HAND)
    torch.testing.assert_close(mean, torch.tensor([(0.5 + 0.2 + 0.1) / 3]))
    torch.testing.assert_close(last, torch.tensor([0.1]))


def test_real_pattern_drops_left_padding():
    padded = torch.zeros(1, 6, 6)
    padded[:, 2:, 2:] = HAND
    torch.testing.assert_close(real_pattern(padded, torch.tensor([0, 0, 1, 1, 1, 1])), HAND)


def test_secondary_sinks_skip_keys_with_few_queries():
    alpha = torch.zeros(1, 2, 10)
    alpha[0, 1, 3] = 0.6  # a secondary sink at position 3
    alpha[0, 0, 9] = 0.9  # the last key: only its own query
    assert secondary_sinks(alpha, eps=0.3, min_queries=4) == [(3, 1, pytest.approx(0.6))]


def test_value_out_norms_follow_grouped_query_heads():
    torch.manual_seed(0)
    value = torch.randn(5, 2, 3)  # [n, n_kv, d_head]
    w_o = torch.randn(7, 4 * 3)  # [d_model, H * d_head]
    norms = value_out_norms(value, w_o, n_heads=4)
    for h in range(4):
        expected = (value[:, h // 2] @ w_o[:, h * 3:(h + 1) * 3].T).norm(dim=-1)
        torch.testing.assert_close(norms[:, h], expected)


def test_cosine_to_first_is_one_for_the_first_token():
    resid = torch.randn(3, 4, 8)
    torch.testing.assert_close(cosine_to_first(resid, 0), torch.ones(3))


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def test_run_matches_statistics_computed_from_the_captured_pattern(model):
    result = run_sinks(model, PROMPTS, SinkConfig(tokens=12, random_tokens=False))
    batch = first_tokens(model.tokenize(PROMPTS[1:2]), 12)
    _, cache = model.run_with_cache(batch, sites=["blocks.2.attn.hook_pattern"], logits=None)
    alpha = sink_importance(cache["blocks.2.attn.hook_pattern"][0])
    n = alpha.shape[-1]
    torch.testing.assert_close(result.natural["alpha"][1, 2, :, :n], alpha)
    assert result.natural["alpha"][1, 2, :, n:].isnan().all()  # shorter than the others


def test_pads_do_not_change_any_statistic(model):
    config = SinkConfig(tokens=12, random_tokens=False)
    together = run_sinks(model, PROMPTS, config, batch_size=3)
    alone = run_sinks(model, PROMPTS, config, batch_size=1)
    for key, value in together.natural.items():
        torch.testing.assert_close(value, alone.natural[key], equal_nan=True)


def test_planted_sink_heads_give_the_hand_counted_sink_rate(model):
    plant = move_to_first_token({1: None})  # every head of layer 1 attends only to token 0
    result = run_sinks(model, PROMPTS, SinkConfig(tokens=32), edits=plant)
    assert result.sink_rate() == pytest.approx(100.0 * 4 / 12)  # 4 of 3 x 4 (layer, head)
    assert result.sink_rate("random") == pytest.approx(100.0 * 4 / 12)
    assert result.sink_heads() == [f"L1H{h}" for h in range(4)]
    assert result.first_token_share_by_layer()[1] == pytest.approx(1.0)
    assert result.first_token_share_std_by_layer()[1] == pytest.approx(0.0)


def test_bos_policy_is_recorded_and_applied_to_random_tokens():
    with_bos, without = tiny_model("llama", bos="always"), tiny_model("llama", bos="never")
    assert random_token_batch(with_bos, 2, 10).input_ids[:, 0].tolist() == [1, 1]
    no_bos = random_token_batch(without, 3, 10)
    assert no_bos.input_ids.shape == (3, 10) and not (no_bos.input_ids == 1).any()
    assert run_sinks(without, PROMPTS, SinkConfig(tokens=8, random_tokens=False)).bos_added is False
    result = run_sinks(with_bos, PROMPTS, SinkConfig(tokens=8, random_tokens=False))
    assert result.bos_added is True and result.summary()["bos_policy"] == "always"


def test_sdpa_model_raises_a_one_line_pattern_error():
    sdpa = tiny_model("llama", attn="sdpa")
    with pytest.raises(PatternUnavailableError) as err:
        sinks(sdpa, PROMPTS, tokens=8)
    assert "\n" not in str(err.value) and "eager" in str(err.value)


def test_result_round_trip_and_figures(model, tmp_path):
    result = sinks(model, PROMPTS, tokens=12)
    assert set(result.figures()) == {"sink_heatmap", "first_token_share", "resid_norm", "value_drain"}
    again = load_run(result.save(tmp_path / "run"))
    assert again.summary() == result.summary()
    assert list(again.secondary.columns) == list(result.secondary.columns)


def test_shipped_prompts_are_long_enough_for_t_64(model):
    prompts = default_prompts()
    assert len(prompts) >= 16
    assert min(model.tokenize(prompts).lengths) >= 64


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="--eps"):
        SinkConfig(eps=1.5).validate()
    with pytest.raises(ValueError, match="--tokens"):
        SinkConfig(tokens=1).validate()


def test_cli_sinks_json(tmp_path, model, capsys):
    folder = tmp_path / "model"
    save_tiny(model, folder)
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    code = main(["sinks", "--model", str(folder), "--prompts", str(prompts), "--tokens", "16", "--out",
                 str(tmp_path / "run"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.0 <= summary["sink_rate"] <= 100.0
    assert len(summary["first_token_share_by_layer"]) == model.n_layers
    assert (tmp_path / "run" / "figures" / "sink_heatmap.html").is_file()


def test_cli_sinks_refuses_sdpa_before_loading(capsys):
    assert main(["sinks", "--model", "no-such-model", "--attn", "sdpa"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eager" in err
