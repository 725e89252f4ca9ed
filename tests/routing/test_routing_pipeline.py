"""run_routing (steps, resume) and `steerlens routing` (--json keys, bad input) on tiny models."""

import json

import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.cli import main
from interp.routing.config import RoutingConfig
from interp.routing.pairs import load_pairs
from interp.routing.pipeline import run_routing
from interp.routing.result import RoutingResult

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = dict(n=8, top_k=3, verify=4, permutations=200, bootstrap=20, gen_tokens=4, modulate_n=2, alpha_max=5.0,
            null_heads=2, amplifiers=2, cipher_n=8)
KEYS = {"gate", "heads", "ablation", "amplifiers", "knockout", "cipher", "dose_response", "timings", "warnings", "harmful_refusal"}


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def test_screen_and_interchange_are_enough_for_the_gate_and_resume_reuses_steps(model, tmp_path, monkeypatch):
    pairs = load_pairs()
    config = RoutingConfig(steps=["screen", "interchange"], **FAST)
    result = run_routing(model, pairs, config, out=tmp_path / "run")
    assert result.done == ["baseline", "screen", "interchange"]
    summary = result.summary()
    assert set(summary) == KEYS and summary["gate"]["layer"] == result.gate[0]
    assert set(summary["harmful_refusal"]) == {"rules", "substring"}  # greedy openings of the harmful prompts
    assert set(summary["gate"]) >= {"layer", "head", "necessity_pct", "sufficiency_pct", "p_value", "p_family"}
    assert summary["gate"]["p_family"] >= summary["gate"]["p_value"]
    assert len(summary["heads"]) == model.n_layers * model.n_heads
    loaded = RoutingResult.load(tmp_path / "run")
    assert loaded.gate == result.gate and loaded.step("screen").candidates == result.step("screen").candidates

    import interp.routing.pipeline as pipeline

    def fail(*a, **k):
        raise AssertionError("a completed step was recomputed")
    monkeypatch.setattr(pipeline._Context, "interchange", fail)
    monkeypatch.setattr(pipeline._Context, "screen", fail)
    # options of steps not run yet may change when adding them
    knock = {**FAST, "amplifiers": 1, "null_heads": 1}
    more = run_routing(model, pairs, RoutingConfig(steps=["knockout"], **knock), out=tmp_path / "run")
    assert more.done[:3] == ["baseline", "screen", "interchange"] and more.has("knockout")
    assert more.step("interchange").necessity.equal(result.step("interchange").necessity)
    assert len(more.step("knockout").null_heads) == 1
    # other settings for finished steps are refused, never overwriting them
    with pytest.raises(ValueError, match=r"other settings for the steps it has done: the pairs;"):
        run_routing(model, pairs, RoutingConfig(steps=["screen"], **{**knock, "n": 9}), out=tmp_path / "run")
    with pytest.raises(ValueError, match=r"done: --verify 4 \(this call: 3\), --amplifiers 1 \(this call: 2\), "
                                        r"--null-heads 1 \(this call: 2\);"):
        run_routing(model, pairs, RoutingConfig(steps=["modulate"], **{**FAST, "verify": 3}), out=tmp_path / "run")
    assert RoutingResult.load(tmp_path / "run").done == more.done
    # the classifier labels the dose-response and rescue texts: a finished modulate step keeps its own
    dosed = run_routing(model, pairs, RoutingConfig(steps=["modulate"], **knock, classifier="substring"),
                        out=tmp_path / "run")
    assert dosed.has("modulate")
    with pytest.raises(ValueError, match=r"--classifier substring \(this call: rules\)"):
        run_routing(model, pairs, RoutingConfig(steps=["modulate"], **knock), out=tmp_path / "run")
    # --ig-steps and --generation-config change stored numbers (the screen's estimate, the continuations)
    for option, flag in (({"ig_steps": 3}, r"--ig-steps 5 \(this call: 3\)"),
                         ({"generation_config": "model"}, r"--generation-config neutral \(this call: model\)"),
                         ({"align": "paper"}, r"--align right \(this call: paper\)")):
        with pytest.raises(ValueError, match=flag):
            run_routing(model, pairs, RoutingConfig(steps=["screen"], **knock, **option), out=tmp_path / "run")
    # a run saved before the fingerprint held an option counts as made with its default
    old = RoutingResult.load(tmp_path / "run")
    del old.fingerprint["options"]["null_heads"]
    old.save(tmp_path / "old")
    with pytest.raises(ValueError, match=r"--null-heads 8 \(this call: 1\)"):
        run_routing(model, pairs, RoutingConfig(steps=["knockout"], **knock), out=tmp_path / "old")
    assert run_routing(model, pairs, RoutingConfig(steps=["knockout"], **{**knock, "null_heads": 8},
                                                   classifier="substring"), out=tmp_path / "old").has("knockout")


def test_cli_json_has_the_issue_keys(tmp_path, capsys):
    folder = save_tiny(tiny_model("llama"), tmp_path / "model")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    assert main(["routing", "--model", str(folder), *args, "--out", str(tmp_path / "run"), "--json"]) == 0
    printed = capsys.readouterr()
    summary = json.loads(printed.out)
    assert KEYS <= set(summary)
    # stderr says which step runs and how long each took, between the steps' own bars
    steps = ["baseline", "screen", "ablate", "interchange", "knockout", "modulate", "cipher"]
    said = [line for line in printed.err.splitlines() if line.startswith("routing step ")]
    assert [line.split(": ")[1].split(" done")[0] for line in said] == [s for s in steps for _ in range(2)]
    assert said[-1].startswith("routing step 7/7: cipher done in ") and said[-1].endswith(f"saved to {tmp_path / 'run'}")
    assert any(line.startswith("baseline (benign):") for line in printed.err.splitlines())
    assert len(summary["ablation"]) == FAST["top_k"] and {"layer", "head", "effect_pct"} == set(summary["ablation"][0])
    assert set(summary["cipher"]) >= {"collapse_pct", "rescue_pct"}
    assert summary["dose_response"]["baseline_refusal"]["substring"].keys() == {"harmful", "benign"}
    knockout = summary["knockout"]  # one kind of value per key
    assert set(knockout) == {"change_pct", "amplifiers", "null"} and set(knockout["amplifiers"]) <= set(knockout["change_pct"])
    assert all(isinstance(v, float) for v in knockout["change_pct"].values()) and set(knockout["null"]) >= {"heads", "mean_pct"}
    assert (tmp_path / "run" / "figures" / "necessity.html").is_file()
    assert (tmp_path / "run" / "figures" / "dose_response.json").is_file()
    ablation = json.loads((tmp_path / "run" / "figures" / "ablation.json").read_text())
    assert [t["name"] for t in ablation["data"]][0].startswith("ablation")


def test_cli_bad_input_is_one_line(tiny_llama_folder, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"harmful": "a", "benign": "b", "category": "c"}\n{"harmful": "a"}\n')
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"harmful": f"h{i}", "benign": f"b{i}", "category": "c"}) + "\n"
                           for i in range(3)))
    shared = tiny_model("llama")  # cached for every test: restore its template after saving
    template, shared.tokenizer.chat_template = shared.tokenizer.chat_template, None
    try:
        plain = save_tiny(shared, tmp_path / "plain")
    finally:
        shared.tokenizer.chat_template = template
    model = str(tiny_llama_folder)
    cases = [
        (["--model", model, "--pairs", str(bad)], "bad.jsonl line 2: missing field(s) benign, category"),
        (["--model", model, "--n", "4"], "need at least 8 pairs"),
        (["--model", model, "--pairs", str(few), "--n", "8"], "--n 8 is more than the 3 pairs in"),
        (["--model", model, "--n", "500"], "--n 500 is more than the 122 pairs in interp/data/refusal_pairs.jsonl"),
        (["--model", str(plain)], "pass --no-chat"),
        (["--model", model, "--layers", "1:9"], "--layers 1:9 out of range: the model has layers 0..2"),
        (["--model", model, "--layers", "x"], "is not A:B"),
        (["--model", model, "--verify", "13"], "--verify 13 is more than the 12 heads screened"),
        (["--model", model, "--steps", "screen,nope"], "unknown step(s) ['nope']"),
        (["--model", model, "--chat", "--no-chat"], "--chat and --no-chat contradict each other"),
        (["--model", model, "--bootstrap", "0"], "--bootstrap must be >= 1, got 0"),
        (["--model", model, "--n", "8", "--cipher-n", "9"], "--cipher-n 9 is more than --n 8"),
        (["--model", model, "--verify-random", "-1"], "--verify-random and --null-heads must be >= 0"),
        (["--model", model, "--verify", "0"], "--verify must be >= 1 with --method atp+exact"),
    ]
    capsys.readouterr()  # drop the saving's progress output
    for extra, message in cases:
        assert main(["routing", *extra, "--out", str(tmp_path / "never")]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (extra, err)
    assert not (tmp_path / "never").exists()


def test_cli_resume_takes_every_option_not_given_from_the_run(tmp_path, capsys, monkeypatch):
    folder = save_tiny(tiny_model("llama"), tmp_path / "model")
    pairs = tmp_path / "pairs.jsonl"  # a user's own pairs: the resumed run must use them, not the shipped ones
    pairs.write_text("".join(json.dumps({"harmful": p.harmful, "benign": p.benign, "category": p.category}) + "\n"
                             for p in reversed(load_pairs())), encoding="utf-8")
    first = ["routing", "--model", str(folder), "--pairs", str(pairs), "--n", "8", "--top-k", "3", "--verify", "4",
             "--verify-random", "0", "--permutations", "200", "--bootstrap", "20", "--no-chat",
             "--steps", "screen,interchange", "--out", str(tmp_path / "run"), "--json"]
    assert main(first) == 0
    capsys.readouterr()
    done = RoutingResult.load(tmp_path / "run")

    import interp.routing.pipeline as pipeline

    def fail(*a, **k):
        raise AssertionError("a finished step was recomputed")
    monkeypatch.setattr(pipeline._Context, "interchange", fail)
    # without --resume the defaults (n=120, the shipped pairs, chat on) differ from the run: refused, named
    assert main(["routing", "--model", str(folder), "--steps", "ablate", "--out", str(tmp_path / "run")]) == 2
    assert "other settings" in capsys.readouterr().err
    # with --resume nothing needs retyping; a given option (--steps) still wins
    assert main(["routing", "--model", str(folder), "--steps", "ablate", "--out", str(tmp_path / "run"),
                 "--resume", "--json"]) == 0
    err = capsys.readouterr().err
    assert "--resume: continuing the run in" in err and "--n 8" in err and "--verify 4" in err and "--no-chat" in err
    more = RoutingResult.load(tmp_path / "run")
    assert more.has("ablate") and more.chat is False and more.pairs == done.pairs
    torch.testing.assert_close(more.step("interchange").necessity, done.step("interchange").necessity,
                               rtol=0, atol=0, equal_nan=True)  # NaN: heads AtP ranked but not re-measured
    # a resume with an option that contradicts the finished steps is still refused
    assert main(["routing", "--model", str(folder), "--verify", "3", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "--verify 4 (this call: 3)" in capsys.readouterr().err


def test_cli_resume_needs_a_readable_run_in_out(tmp_path, capsys):
    assert main(["routing", "--model", "x", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    for missing in (tmp_path / "typo", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        assert main(["routing", "--model", "x", "--out", str(missing), "--resume"]) == 2
        assert f"no routing run in {missing} to resume" in capsys.readouterr().err
        assert not (missing / "manifest.json").exists()
    folder = save_tiny(tiny_model("llama"), tmp_path / "model")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    assert main(["routing", "--model", str(folder), *args, "--steps", "screen", "--out", str(tmp_path / "run")]) == 0
    (tmp_path / "run" / "tensors.safetensors").unlink()  # a damaged run is refused, never replaced
    assert main(["routing", "--model", str(folder), "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_cli_resume_continues_an_interrupted_call_as_it_was_made(tmp_path, capsys, monkeypatch):
    import interp.routing.pipeline as pipeline

    folder = save_tiny(tiny_model("llama"), tmp_path / "model")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items() if k != "amplifiers"]
    out = ["--out", str(tmp_path / "run")]
    assert main(["routing", "--model", str(folder), *args, "--seed", "3", "--steps", "screen", *out]) == 0
    real = pipeline._Context.interchange

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(pipeline._Context, "interchange", interrupted)
    # the extension is cut off (Ctrl-C) in its first new step
    assert main(["routing", "--model", str(folder), *args, "--seed", "3", "--amplifiers", "1",
                 "--steps", "interchange,knockout", *out]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(pipeline._Context, "interchange", real)
    capsys.readouterr()
    # model, seed, steps and options all come from the interrupted call
    assert main(["routing", *out, "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"--model {folder}" in err and "--seed 3" in err and "--steps interchange,knockout" in err
    run = RoutingResult.load(tmp_path / "run")
    assert run.done[-2:] == ["interchange", "knockout"] and len(run.step("knockout").candidates) == 1
