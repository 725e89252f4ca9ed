"""Every analysis command with its defaults on the smallest tiny model of a family: a
model-dependent default that cannot apply (more heads, experts or directions than the model
or the data has) is clamped and the run says so, never refused (issue 37); a value the user
gives is still refused.

Only options that do not depend on the model are lowered, to keep the runs fast (--n,
--max-new-tokens, --permutations, --bootstrap, test-set sizes, SAE training steps); every
option with a model-dependent default (--verify, --verify-random, --top-k, --amplifiers,
--null-heads, --candidates, --top-n, --k, --layer, ...) is left to its default. The default run
covers llama (dense) and qwen2_moe (experts); `-m families` runs every family of tests/tiny.py.
"""

from __future__ import annotations

import json

import pytest
from tiny import DENSE, MOE, save_tiny, tiny_model

from interp.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    (root / "contrast.jsonl").write_text("".join(json.dumps({"positive": f"good {i}", "negative": f"bad {i}"}) + "\n"
                                                 for i in range(6)))
    (root / "skills.jsonl").write_text("".join(json.dumps({"text": f"text number {i} " * 3}) + "\n" for i in range(6)))
    (root / "target.txt").write_text("ab#\nhello@\nx$\nzz@\n")
    (root / "other.txt").write_text("abc\nhello\nzzz\ngo\n")
    traces = [{"question": f"What is {i}+2?", "response": f"{i} plus 2.\n\nWait, check: {i + 2}.\n\nThe answer is "
                                                          f"{i + 2}", "answer": i + 2} for i in range(4)]
    (root / "problems.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    return root


def dense_commands(model: str, inputs, out) -> dict[str, list[str]]:
    """Each dense-model analysis command, in an order where later ones read earlier runs."""
    m = ["--model", model]
    return {
        "dla": ["dla", *m, "--target-id", "70", "--out", str(out / "dla")],
        "lens": ["lens", *m, "--prompt", "hello there", "--out", str(out / "lens")],
        "massive": ["massive", *m, "--out", str(out / "massive")],
        "sinks": ["sinks", *m, "--out", str(out / "sinks")],
        "voids": ["voids", *m, "--prompts", str(inputs / "other.txt"), "--max-new-tokens", "4",
                  "--out", str(out / "voids")],
        "voids eval": ["voids", "eval", *m, "--limit", "4", "--out", str(out / "voids-eval")],
        # the steps whose options depend on the model (modulate and cipher add none)
        "routing": ["routing", *m, "--n", "8", "--steps", "screen,interchange,knockout", "--permutations", "100",
                    "--bootstrap", "10", "--gen-tokens", "4", "--out", str(out / "routing")],
        "vector make": ["vector", "make", *m, "--data", str(inputs / "contrast.jsonl"),
                        "--out", str(out / "v.safetensors")],
        "austeer fit": ["austeer", "fit", *m, "--n-train", "8", "--out", str(out / "au.safetensors")],
        "austeer eval": ["austeer", "eval", *m, "--n-train", "4", "--n-val", "2", "--n-test", "2",
                         "--out", str(out / "au-eval")],
        "refusal-steer": ["refusal-steer", *m, "--max-new-tokens", "2", "--n-test", "2", "--out", str(out / "refusal")],
        "skills fit": ["skills", "fit", *m, "--data", str(inputs / "skills.jsonl"), "--out", str(out / "skills")],
        "skills steer": ["skills", "steer", str(out / "skills"), *m, "--n-val", "2", "--n-test", "2", "--samples", "0",
                         "--ppl-texts", "2", "--out", str(out / "skills-steer")],
        "rise collect": ["rise", "collect", *m, "--problems", str(inputs / "problems.jsonl"), "--out", str(out / "rise")],
        "rise train": ["rise", "train", "--run", str(out / "rise"), "--steps", "20", "--batch-size", "8"],
        "rise analyze": ["rise", "analyze", *m, "--run", str(out / "rise")],
    }


def experts_command(model: str, inputs, out) -> list[str]:
    return ["experts", "scan", "--model", model, "--target", str(inputs / "target.txt"), "--other",
            str(inputs / "other.txt"), "--max-new-tokens", "2", "--permutations", "100", "--out", str(out / "experts")]


@pytest.fixture
def families_selected(request):
    """The family sweep runs only when asked for (`-m families`): minutes on two cores."""
    if "families" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("every tiny family: select with -m families")


def _runs_with_defaults(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, (argv[:2], err.strip().splitlines()[-1:])
    return err


def _dense(family, inputs, tmp_path, capsys):
    folder = save_tiny(tiny_model(family), tmp_path / f"tiny-{family}")
    notes = {}
    for name, argv in dense_commands(str(folder), inputs, tmp_path / "runs").items():
        notes[name] = [line for line in _runs_with_defaults(argv, capsys).splitlines() if line.startswith("note: ")]
    return notes


def test_every_dense_command_runs_with_its_defaults_on_tiny_llama(inputs, tmp_path, capsys):
    notes = _dense("llama", inputs, tmp_path, capsys)
    # 3 layers x 4 heads: the defaults that exceed them were clamped, and the run said so
    assert "note: verifying all 12 heads exactly (default --verify 24 > 12 heads screened (3 layers x 4))" \
        in notes["routing"]
    assert any(line.startswith("note: using --k 5 (default --k 10 > 5 directions") for line in notes["skills fit"])


def test_experts_scan_runs_with_its_defaults_on_tiny_qwen2_moe(inputs, tmp_path, capsys):
    folder = save_tiny(tiny_model("qwen2_moe"), tmp_path / "tiny-moe")
    err = _runs_with_defaults(experts_command(str(folder), inputs, tmp_path), capsys)
    # 3 MoE layers x 4 experts = 12: a random control of --top-n 4 leaves room for 8 candidates
    assert "note: using --candidates 8 (default --candidates 16 > 8 experts" in err


@pytest.mark.families
@pytest.mark.parametrize("family", [f for f in DENSE if f != "llama"])
def test_every_dense_command_runs_with_its_defaults_on_each_family(family, inputs, tmp_path, capsys,
                                                                   families_selected):
    _dense(family, inputs, tmp_path, capsys)


@pytest.mark.families
@pytest.mark.parametrize("family", [f for f in MOE if f != "qwen2_moe"])
def test_experts_scan_runs_with_its_defaults_on_each_moe_family(family, inputs, tmp_path, capsys,
                                                                 families_selected):
    folder = save_tiny(tiny_model(family), tmp_path / f"tiny-{family}")
    _runs_with_defaults(experts_command(str(folder), inputs, tmp_path), capsys)


def test_issue_routing_input_runs_and_names_a_gate(tmp_path, capsys):
    """Issue 37's input: 4 layers x 4 heads, `--n 24 --steps screen,interchange`, no other option."""
    folder = save_tiny(tiny_model("llama", num_hidden_layers=4), tmp_path / "tiny-4x4")
    argv = ["routing", "--model", str(folder), "--n", "24", "--steps", "screen,interchange", "--json",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "note: verifying all 16 heads exactly (default --verify 24 > 16 heads screened (4 layers x 4))" \
        in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["gate"] is not None and {"layer", "head"} <= set(summary["gate"])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["verify"] == 16 and manifest["config"]["verify_random"] == 0
    # the same value typed by the user is refused, before the model loads work
    assert main([*argv[:-1], str(tmp_path / "never"), "--verify", "24"]) == 2
    assert "--verify 24 is more than the 16 heads screened" in capsys.readouterr().err
