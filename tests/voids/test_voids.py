"""LAC void detection (interp.voids.rule, interp.voids): hand-computed rule, planted identity
layers, paper-mode skipping, decode steps vs one full pass, results, CLI and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_model
from void_plants import plant_identities

from interp.arch.spec import get_module
from interp.cli import main
from interp.runs.results import load_run
from interp.voids.rule import VoidTracker, lac_active, norm_deltas
from interp.voids.maps import VoidConfig, VoidResult, check_hookable, run_voids

PROMPTS = ["hello there", "The quick brown fox", "abc"]


# ---- the rule on hand-computed norms ----------------------------------------------------
def test_rule_on_hand_computed_deltas():
    norms = torch.tensor([10.0, 15.0, 16.0, 19.0, 19.5, 23.5, 22.5])  # deltas 5, 1, 3, 0.5, 4, -1
    deltas = norm_deltas(norms)
    assert deltas.tolist() == [5.0, 1.0, 3.0, 0.5, 4.0, -1.0]
    # alpha 0.8: l1 tau 0; l2 tau .8*4=3.2; l3 3.2; l4 .8*4.5=3.6; l5 3.6
    assert lac_active(deltas, 0.8).tolist() == [True, True, False, False, True, False]
    # alpha 0.5: l2 tau 2 -> 3 active; l3 0.5 < 2 void; l4 tau 2.25 -> active; l5 void
    assert lac_active(deltas, 0.5).tolist() == [True, True, True, False, True, False]


def test_layer0_has_no_threshold_and_layer1_is_void_only_below_zero():
    deltas = torch.tensor([[-2.0, 0.0, 1.0], [3.0, -0.5, 1.0]])
    active = lac_active(deltas, 0.8)
    assert active[:, 0].tolist() == [True, True]  # empty range: layer 0 always active
    assert active[:, 1].tolist() == [True, False]  # threshold 0: a zero delta is active, a negative one void
    assert lac_active(deltas, 0.8, layer0="sign")[:, 0].tolist() == [False, True]  # the paper code at batch 1


def test_tracker_matches_rule_on_independently_captured_norms():
    model = tiny_model("llama")
    sites = ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    _, cache = model.run_with_cache(PROMPTS, sites, logits=None)
    norms = torch.stack([cache[s].float().norm(dim=-1) for s in sites], -1)  # [b, P, L + 1]
    tracker = VoidTracker(model.n_layers, 0.8)
    model.forward(PROMPTS, hooks=tracker.hooks())
    record = tracker.passes[0]
    real = cache.attention_mask.bool()
    assert torch.allclose(record.norms[real], norms[real], atol=1e-5)
    assert torch.equal(record.active[real], lac_active(norm_deltas(norms), 0.8)[real])


# ---- planted identity layers --------------------------------------------------------------
@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_planted_identity_layers_are_void_for_every_token_and_no_others(family):
    extra = {"layer_types": ["sliding_attention", "full_attention"] * 3} if family == "gemma3" else {}
    model = plant_identities(tiny_model(family, num_hidden_layers=6, **extra), identity={2, 4})
    result = run_voids(model, PROMPTS, VoidConfig(alpha=0.8, max_new_tokens=4))
    for phase in ("prompt", "response"):
        active = getattr(result, f"{phase}_active")[getattr(result, f"{phase}_mask")]  # [tokens, L]
        assert active.shape[0] > 0
        assert not active[:, [2, 4]].any(), phase  # identity layers: void for every token
        assert active[:, [0, 1, 3, 5]].any(0).all(), phase  # no other layer void for all tokens
    assert result.summary()["phase_comparison"]["prompt_only"] == []


def test_identity_layer_at_layer1_is_active_by_the_rule():
    model = plant_identities(tiny_model("llama", num_hidden_layers=4), identity={1})
    result = run_voids(model, PROMPTS[:1], VoidConfig(max_new_tokens=2))
    assert result.prompt_active[result.prompt_mask][:, 1].all()  # delta 0 is not below a threshold of 0


# ---- paper-mode skipping ------------------------------------------------------------------
def _lens(model, resid: torch.Tensor) -> torch.Tensor:
    norm = get_module(model.hf, model.spec.final_norm)
    return model.hf.get_output_embeddings()(norm(resid))


def test_paper_skip_final_norm_reads_last_active_layer():
    model = tiny_model("llama")
    alpha = 1.5  # strict enough that the last layer is void for some tokens
    sites = ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    logits, cache = model.run_with_cache(PROMPTS, sites, logits="all")
    resid = torch.stack([cache[s] for s in sites], 2)  # [b, P, L + 1, d]
    active = lac_active(norm_deltas(resid.float().norm(dim=-1)), alpha)  # [b, P, L]
    last = torch.where(active, torch.arange(1, model.n_layers + 1), 0).amax(-1)  # [b, P] index into resid
    state = resid.gather(2, last[..., None, None].expand(-1, -1, 1, resid.shape[-1]))[:, :, 0]
    expected = _lens(model, state)
    tracker = VoidTracker(model.n_layers, alpha, paper_skip=True)
    skipped = model.forward(PROMPTS, hooks=tracker.hooks())
    real = cache.attention_mask.bool()
    changed = real & ~active[..., -1]
    assert changed.any()
    assert torch.allclose(skipped[real], expected[real], atol=1e-4)
    assert not torch.allclose(skipped[changed], logits[changed], atol=1e-3)
    assert torch.equal(skipped[real & active[..., -1]], logits[real & active[..., -1]])


def test_paper_skip_with_no_voids_is_the_plain_model():
    model = plant_identities(tiny_model("llama", num_hidden_layers=4), identity=set())
    tracker = VoidTracker(model.n_layers, 0.5, paper_skip=True)
    skipped = model.forward(PROMPTS, hooks=tracker.hooks())
    assert tracker.passes[0].active[model.tokenize(PROMPTS).attention_mask.bool()].all()
    assert torch.equal(skipped, model.forward(PROMPTS))


def test_decode_steps_decide_like_one_full_pass_over_the_same_tokens():
    model = tiny_model("qwen2")
    tracker = VoidTracker(model.n_layers, 0.8)
    for prompt in PROMPTS[:2]:
        result, row = run_voids(model, [prompt], VoidConfig(alpha=0.8, max_new_tokens=5)), 0
        batch = model.tokenize([prompt])
        n_prompt = batch.input_ids.shape[1]
        steps = int(result.response_mask[row].sum())
        assert steps > 0
        gen = model.generate([prompt], max_new_tokens=5)
        ids = torch.cat([batch.input_ids, gen.new_tokens[:, :steps]], 1)
        full = type(batch)(ids, torch.ones_like(ids), [prompt])
        tracker.reset()
        model.forward(full, hooks=tracker.hooks())
        norms = tracker.passes[0].norms[0, n_prompt:]  # [steps, L + 1]
        assert torch.allclose(result.response_norms[row, :steps], norms, atol=1e-4)
        assert torch.equal(result.response_active[row, :steps], lac_active(norm_deltas(norms), 0.8))


def test_paper_skip_changes_generation_only_through_the_final_read():
    model = tiny_model("llama")
    plain = run_voids(model, PROMPTS, VoidConfig(alpha=1.5, max_new_tokens=4))
    paper = run_voids(model, PROMPTS, VoidConfig(alpha=1.5, max_new_tokens=4, skip="paper"))
    assert torch.equal(plain.prompt_active, paper.prompt_active)  # the residual stream is unchanged
    assert torch.allclose(plain.prompt_norms, paper.prompt_norms)


# ---- result, figures, CLI -------------------------------------------------------------------
def test_result_round_trip_summary_and_figures(tmp_path):
    model = tiny_model("llama")
    result = run_voids(model, PROMPTS, VoidConfig(max_new_tokens=4))
    summary = result.summary()
    assert set(summary["layers_used_pct"]) == {"prompt", "response"}
    assert len(summary["per_layer_active"]["prompt"]) == model.n_layers
    n_real = int(result.prompt_mask.sum())
    expected = 100 * result.prompt_active[result.prompt_mask].float().mean().item()
    assert summary["layers_used_pct"]["prompt"] == pytest.approx(expected)
    assert summary["prompt_tokens"] == n_real == len(result.per_token[result.per_token.phase == "prompt"])
    assert summary["fewest_active_tokens"][0]["n_active"] == result.per_token.n_active.min()
    assert {"map_prompt", "map_response", "layer_frequency"} <= set(result.figures())
    again = load_run(result.save(tmp_path / "run"))
    assert isinstance(again, VoidResult)
    assert torch.equal(again.response_active, result.response_active)
    assert again.summary() == json.loads(json.dumps(summary))


def test_cli_voids_json(tiny_llama_folder, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello there\nabc\n")
    out = tmp_path / "run"
    assert main(["voids", "--model", str(tiny_llama_folder), "--prompts", str(prompts), "--alpha", "0.8",
                 "--max-new-tokens", "3", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["layers_used_pct"]) == {"prompt", "response"}
    assert len(printed["per_layer_active"]["response"]) == 3
    assert (out / "figures" / "map_prompt.html").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "0"], "--alpha must be a positive number"),
    (["--alpha", "-1"], "--alpha must be a positive number"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
])
def test_cli_bad_options_fail_before_loading(argv, message, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hi\n")
    assert main(["voids", "--model", "no-such-model", "--prompts", str(prompts), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_empty_prompt_file_is_one_line(tmp_path, capsys):
    prompts = tmp_path / "empty.txt"
    prompts.write_text("\n  \n")
    assert main(["voids", "--model", "no-such-model", "--prompts", str(prompts)]) == 2
    assert "no prompts" in capsys.readouterr().err


# ---- bad input through the API ------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, -0.5, float("nan"), float("inf")])
def test_alpha_must_be_positive(alpha):
    with pytest.raises(ValueError, match="alpha must be a positive number"):
        run_voids(tiny_model("llama"), PROMPTS, VoidConfig(alpha=alpha))


@pytest.mark.parametrize("prompts", [[], [""], ["ok", "   "]])
def test_empty_prompts_are_refused(prompts):
    with pytest.raises(ValueError, match="prompt"):
        run_voids(tiny_model("llama"), prompts, VoidConfig(max_new_tokens=2))


def test_a_raw_hf_model_cannot_be_hooked():
    with pytest.raises(ValueError, match="needs an interp.Model"):
        run_voids(tiny_model("llama").hf, PROMPTS)


def test_a_model_without_layer_output_sites_cannot_be_hooked():
    model = tiny_model("llama")
    del model._sites["blocks.1.hook_resid_post"]  # an adapter that cannot see layer 1's output
    with pytest.raises(ValueError, match="cannot hook the decoder layers.*blocks.1.hook_resid_post"):
        check_hookable(model)
