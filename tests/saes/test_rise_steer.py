"""RISE downstream: step-end edits (alpha = 0 is a no-op), analysis and vectors, steering,
and the `steerlens rise` commands with their bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_model

from interp.cli import main
from interp.engine.edits import Add
from interp.engine.token_edits import OnTokens, Project
from saes.analyze import AnalyzeConfig, analyze
from saes.collect import CollectConfig, collect
from saes.result import RiseAnalysis
from saes.steer import SteerConfig, steer
from saes.train import TrainConfig, train_layer
from steering import SteeringVector

pytestmark = pytest.mark.usefixtures("one_thread")
SITE = "blocks.1.hook_resid_post"


def _traces(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = i + 2, i + 5
        response = (f"{a} plus {b}.\n\nWait, let me check: {a + b}.\n\nAlternatively, {b}+{a}.\n\n"
                    f"The answer is {a + b}")
        rows.append({"question": f"What is {a}+{b}?", "response": response, "answer": a + b})
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rise")
    model = tiny_model("llama")
    collect(model, CollectConfig(layers=[1]), root / "run", problems_file=str(_write(root / "p.jsonl", _traces())),
            chat=True, progress=False)
    train_layer(root / "run" / "store", SITE, root / "run" / "sae" / "layer_1",
                TrainConfig(architecture="standard", d_sae=24, batch_size=8, steps=30, lr=3e-3, l1_coefficient=0.3, checkpoints=0),
                progress=False)
    return root / "run"


@pytest.mark.parametrize("mode", ["project", "add"])
def test_step_edit_alpha_zero_is_a_noop_in_generation(mode):
    model = tiny_model("llama")
    w = torch.randn(model.d_model)
    ids = list(range(3, 100))  # most characters: the edit is active nearly everywhere
    inner = Project(SITE, direction=w, alpha=0.0) if mode == "project" else Add(SITE, vector=w, alpha=0.0, relative=True)
    prompts = ["What is 2+3?", "Hi"]  # padded batch
    plain = model.generate(prompts, max_new_tokens=6, return_logits=True, stop_at_eos=False)
    zero = model.generate(prompts, edits=[OnTokens(SITE, edit=inner, token_ids=ids)], max_new_tokens=6,
                          return_logits=True, stop_at_eos=False)
    assert torch.equal(plain.sequences, zero.sequences)
    torch.testing.assert_close(plain.logits, zero.logits, atol=0, rtol=0)
    inner.alpha = 2.0
    moved = model.generate(prompts, edits=[OnTokens(SITE, edit=inner, token_ids=ids)], max_new_tokens=6,
                           return_logits=True, stop_at_eos=False)
    assert not torch.allclose(plain.logits, moved.logits)


def test_on_tokens_projects_only_at_trigger_tokens():
    model = tiny_model("llama")
    w = torch.randn(model.d_model)
    u = w / w.norm()
    batch = model.tokenize(["a.b.c", "x.y"])
    dot = model.tokenizer.convert_tokens_to_ids(".")
    edit = OnTokens(SITE, edit=Project(SITE, direction=w, alpha=1.0), token_ids=[dot])
    _, clean = model.run_with_cache(batch, [SITE], logits=None)
    _, edited = model.run_with_cache(batch, [SITE], edits=[edit], logits=None)
    hit = batch.input_ids == dot
    assert hit.sum() == 3
    torch.testing.assert_close(edited[SITE][hit] @ u, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(edited[SITE][~hit], clean[SITE][~hit])


def test_analyze_vectors_and_steer(run, tmp_path):
    model = tiny_model("llama")
    result = analyze(model, run, AnalyzeConfig(min_count=1, min_specificity=0.0, ce_traces=3), progress=False)
    stats = result.sae["1"]
    assert 0 <= stats["fvu"] and 0 <= stats["dead_pct"] <= 100 and stats["ce_tokens"] > 0
    assert result.map_method in ("umap-cosine", "tsne-cosine") and result.maps["layer_1"].shape == (24, 2)
    assert result.behaviours["1"]["reflection"] and "reflection@1" in result.vectors
    assert result.counts["count"].sum() == sum(result.label_counts.values()) - 0  # every step voted once
    vector = SteeringVector.load(run / result.vectors["reflection@1"])
    assert vector.layers == [1] and abs(vector.vectors[1].norm() - 1) < 1e-5
    saved = RiseAnalysis.load(result.save(tmp_path / "analysis"))
    assert saved.summary()["sae"] == result.summary()["sae"] and set(saved.figures()) >= {"training_curves"}
    steered = steer(model, run, SteerConfig(alphas=[0.0, 1.0], n=2, max_new_tokens=6), progress=False)
    assert [r["alpha"] for r in steered.dose_response] == [0.0, 1.0]
    assert {"behaviour_steps", "mean_steps", "accuracy"} <= set(steered.dose_response[0])
    assert "dose_response" in steered.figures()


def test_sae_of_another_width_is_refused(run):
    other = tiny_model("llama", hidden_size=32, head_dim=8)
    with pytest.raises(ValueError, match="d_model=32"):
        analyze(other, run, progress=False)


def _fails(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1, err


def test_cli_stages_and_bad_input(tiny_llama_folder, tmp_path, capsys):
    problems = _write(tmp_path / "p.jsonl", _traces(6))
    out = tmp_path / "run"
    model = ["--model", str(tiny_llama_folder)]
    assert main(["rise", "collect", *model, "--problems", str(problems), "--layer", "1", "--out", str(out),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_steps"] == 24
    assert main(["rise", "train", "--run", str(out), "--steps", "10", "--batch-size", "8", "--d-sae", "16",
                 "--json"]) == 0
    assert "1" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layers"]
    assert main(["rise", "analyze", *model, "--run", str(out), "--min-count", "1", "--min-specificity", "0",
                 "--ce-traces", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"fvu", "l0", "dead_pct", "ce_recovered"} <= set(summary["sae"])
    assert "reflection" in summary["behaviours"] and "1" in summary["silhouette"]
    vector = out / summary["vectors"]["reflection@1"]
    assert main(["generate", *model, "--prompt", "Hi", "--max-new-tokens", "4", "--vector", f"{vector}:2",
                 "--json"]) == 0  # the behaviour vector is a steerlens steering vector
    capsys.readouterr()
    assert main(["rise", "steer", *model, "--run", str(out), "--behaviour", "reflection", "--alphas=0,1",
                 "--n", "2", "--max-new-tokens", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["dose_response"]
    assert [r["alpha"] for r in rows] == [0.0, 1.0]
    flat = _write(tmp_path / "flat.jsonl", [{"question": "q", "response": "one step only"}])
    _fails(capsys, ["rise", "collect", *model, "--problems", str(flat), "--out", str(tmp_path / "b")], "separator")
    _fails(capsys, ["rise", "collect", *model, "--layer", "9", "--n", "2", "--out", str(tmp_path / "c")], "out of range")
    _fails(capsys, ["rise", "train", "--run", str(tmp_path / "none")], "not a RISE run")
    _fails(capsys, ["rise", "train", "--run", str(out), "--steps", "10"], "--resume")
    _fails(capsys, ["rise", "steer", *model, "--run", str(out), "--behaviour", "nope"], "no 'nope' vector")
    other = tmp_path / "dla-run"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"analysis": "dla"}))
    _fails(capsys, ["rise", "collect", *model, "--n", "2", "--out", str(other)], "holds a dla run; saving this rise collect run there")
    assert sorted(p.name for p in other.iterdir()) == ["manifest.json"]
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
