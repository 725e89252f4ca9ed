"""RISE confidence vectors: the offset search finds a planted confidence latent, trains only
the offset, is deterministic, records an early stop, and `steerlens rise confidence` runs."""

from __future__ import annotations

import json

import pytest
import torch
from test_rise_steer import SITE, _traces, _write
from tiny import tiny_model

from interp.cli import main
from interp.engine.edits import Add
from interp.engine.partial import forward_from_layer
from saes.collect import CollectConfig, collect, resid_site
from saes.confidence import ConfidenceConfig, answer_batch, confidence_directions, mean_entropy, search_offset
from interp.metrics.intervals import wilson
from saes.confidence_effect import answer_entropies, interval, monotone
from saes.confidence_result import RiseConfidence
from saes.traces import Trace, format_prompt, split_steps
from saes.train import TrainConfig, train_layer
from steering import SteeringVector

pytestmark = pytest.mark.usefixtures("one_thread")
LAYER = 1


def _trace_list(model, n: int) -> list[Trace]:
    """The first `n` test traces as chat `Trace`s split into steps."""
    traces = []
    for row in _traces(n):
        prompt = format_prompt(model, row["question"], True)
        traces.append(Trace(row["question"], prompt, row["response"], row["answer"],
                            split_steps(prompt, row["response"])))
    return traces


def _answer_data(model, n=4):
    return answer_batch(model, _trace_list(model, n), True, 384)


def _entropy_gradient(model, data):
    """d(mean answer entropy) / d(one offset v added at every step end), at v = 0."""
    site = f"blocks.{LAYER}.hook_resid_pre"
    _, cache = model.run_with_cache(data.batch, [site], "all", logits=None, dtype=torch.float32)
    v = torch.zeros(model.d_model, requires_grad=True)
    with torch.enable_grad():
        logits = forward_from_layer(model, data.batch, LAYER, cache[site].clone(),
                                    edits=[Add(resid_site(LAYER), vector=v, positions=data.step_mask)],
                                    logits_to_keep=data.keep)
        mean_entropy(logits, data.answer_mask).backward()
    return v.grad.detach()


def _planted_decoder(model, data, planted=7, d_sae=24):
    """Unit decoder rows orthogonal to the entropy gradient, but row `planted` = the direction
    that lowers answer entropy fastest: adding it at step ends sharpens the answers."""
    g = _entropy_gradient(model, data)
    u = g / g.norm()
    w = torch.randn(d_sae, model.d_model, generator=torch.Generator().manual_seed(0))
    w = w - (w @ u)[:, None] * u[None]
    w = w / w.norm(dim=-1, keepdim=True)
    w[planted] = -u
    return w


def test_answer_batch_marks_step_ends_and_answer_tokens():
    model = tiny_model("llama")
    data = _answer_data(model, 2)
    ids = data.batch.input_ids
    assert data.step_mask.shape == ids.shape and data.step_mask.sum(1).tolist() == [3, 3]  # 4 steps, last excluded
    separator = model.tokenizer("\n\n", add_special_tokens=False)["input_ids"][-1]
    assert (ids[data.step_mask] == separator).all()  # a step ends at the token covering the separator
    # the answer step "The answer is N" (17 or 18 characters) is predicted from the position before it
    tail = ids[:, -data.keep:]
    for b in range(2):
        n = int(data.answer_mask[b].sum())
        text = "".join(model.tokenizer.convert_ids_to_tokens(tail[b, data.keep - n:].tolist()))
        assert text.startswith("The answer is") and not data.answer_mask[b, -1]


def test_search_ranks_the_planted_confidence_latent_first_and_trains_only_the_offset():
    model = tiny_model("llama")
    data = _answer_data(model)
    w = _planted_decoder(model, data)
    before = {k: v.clone() for k, v in model.hf.state_dict().items()}
    config = ConfidenceConfig(iterations=40, lr=0.05, tol=0)
    found = search_offset(model, data, w, LAYER, config)
    assert int(torch.argmax(found.delta)) == 7
    assert found.entropy_after < found.entropy_before and found.curve[0] == found.entropy_before
    assert len(found.curve) == 40 and found.stopped_at is None
    assert all(torch.equal(v, model.hf.state_dict()[k]) for k, v in before.items())
    assert not any(p.requires_grad for p in model.hf.parameters())
    again = search_offset(model, data, w, LAYER, config)
    assert torch.equal(found.delta, again.delta)  # deterministic
    directions = confidence_directions(found.delta, w, top_k=1)
    assert directions["confidence"]["latents"] == [7]
    torch.testing.assert_close(directions["confidence"]["vector"], w[7])


def test_early_stop_is_recorded():
    model = tiny_model("llama")
    data = _answer_data(model, 2)
    w = _planted_decoder(model, data)
    found = search_offset(model, data, w, LAYER, ConfidenceConfig(iterations=200, lr=0.05, tol=1.0, patience=3))
    assert found.stopped_at == 3 and len(found.curve) == 4


def test_held_out_answer_entropy_is_the_search_objective_per_trace():
    """answer_entropies (the dose-response's held-out measure) equals the search's mean answer
    entropy of each trace alone, whatever rows share a pass."""
    model = tiny_model("llama")
    traces = _trace_list(model, 5)
    alone = []
    for t in traces:
        data = answer_batch(model, [t], True, 1 << 30)
        logits, _ = model.run_with_cache(data.batch, [], "all", logits=data.keep)
        alone.append(float(mean_entropy(logits, data.answer_mask)))
    for rows in (1, 2, 4):
        assert answer_entropies(model, traces, [], True, rows_per_pass=rows) == pytest.approx(alone, abs=1e-5)


def test_directions_take_each_sign():
    delta = torch.tensor([0.5, -0.2, 0.1, -0.9, 0.0])
    w = torch.eye(5)
    d = confidence_directions(delta, w, top_k=2)
    assert d["confidence"]["latents"] == [0, 2] and d["low_confidence"]["latents"] == [3, 1]
    torch.testing.assert_close(d["confidence"]["vector"], torch.tensor([1.0, 0, 1, 0, 0]) / 2 ** 0.5)
    assert "low_confidence" not in confidence_directions(torch.tensor([1.0, 0.0]), torch.eye(2), 2)


def test_intervals_and_monotone():
    assert interval([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    mean, low, high = interval([0.0, 2.0])
    assert mean == 1.0 and low < 0 < 2 < high
    low, high = wilson(5, 10)
    assert low < 0.5 < high and 0 < low and high < 1
    rows = [{"alpha": a, "entropy": e} for a, e in [(0.1, 1.0), (-0.1, 3.0), (0.0, 2.0)]]
    assert monotone(rows) == "falling" and monotone([{"alpha": 0, "entropy": 1}, {"alpha": 1, "entropy": 1}]) == "mixed"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rise-confidence")
    model = tiny_model("llama")
    collect(model, CollectConfig(layers=[LAYER]), root / "run", problems_file=str(_write(root / "p.jsonl", _traces())),
            chat=True, progress=False)
    train_layer(root / "run" / "store", SITE, root / "run" / "sae" / f"layer_{LAYER}",
                TrainConfig(d_sae=24, batch_size=8, steps=30, lr=3e-3, l1_coefficient=0.3, checkpoints=0),
                progress=False)
    return root / "run"


def test_cli_confidence_json(run, tiny_llama_folder, tmp_path, capsys):
    out = tmp_path / "conf"
    code = main(["rise", "confidence", "--run", str(run), "--model", str(tiny_llama_folder), "--chat", "--json",
                 "--iterations", "5", "--n-opt", "3", "--top-k", "2", "--n-eval", "2", "--alphas=-0.2,0,0.2",
                 "--max-new-tokens", "6", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["entropy_before"] > 0 and summary["iterations"] == 5
    assert set(summary["latents"]) <= {"confidence", "low_confidence"} and summary["latents"]
    assert [r["alpha"] for r in summary["dose_response"]] == [-0.2, 0.0, 0.2]
    assert {"entropy", "entropy_low", "reflection", "backtracking", "accuracy", "length", "answer_entropy",
            "answer_entropy_change", "answer_traces"} <= set(summary["dose_response"][0])
    assert "answer_entropy_vs_alpha" in summary
    for path in summary["vectors"].values():
        assert SteeringVector.load(run / path).layers == [LAYER]
    loaded = RiseConfidence.load(out)
    assert loaded.delta.shape == (24,) and set(loaded.figures()) == {"entropy_curve", "confidence_dose_response"}
    _explorer_page_draws_it(out)


def _explorer_page_draws_it(out):
    """The explorer's rise-confidence page: the entropy curve and the dose-response, no error."""
    pytest.importorskip("streamlit")
    from apptest import open_app, problems

    monkeypatch = pytest.MonkeyPatch()
    try:
        at = open_app(monkeypatch, out.parent, out.name)
        assert not problems(at)
        ids = [c.proto.id for c in at.get("plotly_chart")]
        assert any(f"{out.name}:curve" in i for i in ids) and any(f"{out.name}:dose" in i for i in ids)
        assert any("nats" in m.value and "->" in m.value for m in at.markdown)
    finally:
        monkeypatch.undo()


def test_cli_refuses_an_untrained_layer_before_loading(run, capsys):
    assert main(["rise", "confidence", "--run", str(run), "--layer", "0", "--model", "/nonexistent"]) != 0
    assert "no trained SAE" in capsys.readouterr().err


def test_offset_through_the_decoder_equals_the_offset_on_the_attached_saes_latents(run):
    """The search adds delta @ W_dec to the residual at step ends; with the SAE attached (error
    term on), adding delta to `hook_sae_acts_post` at the same positions is the same edit."""
    from saes.train import load_sae

    model = tiny_model("llama")
    data = _answer_data(model, 3)
    sae = load_sae(run / "sae" / f"layer_{LAYER}")
    delta = torch.randn(sae.cfg.d_sae, generator=torch.Generator().manual_seed(1))
    site = resid_site(LAYER)
    residual, _ = model.run_with_cache(data.batch, [], edits=[Add(site, vector=delta @ sae.W_dec.detach(),
                                                                  positions=data.step_mask)], logits="all")
    with model.attach_sae(sae):
        latent, _ = model.run_with_cache(data.batch, [], edits=[Add(f"{site}.hook_sae_acts_post", vector=delta,
                                                                    positions=data.step_mask)], logits="all")
    real = data.batch.attention_mask.bool()
    torch.testing.assert_close(latent[real], residual[real], atol=1e-4, rtol=1e-4)
    clean, _ = model.run_with_cache(data.batch, [], logits="all")
    assert (clean[real] - residual[real]).abs().max() > 1e-3  # the offset does move the logits
