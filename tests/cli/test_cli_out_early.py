"""An --out that saving the run would refuse (a folder of runs, another analysis's run) fails
before the model loads, not after the work (`interp.cli.common.check_out`)."""

import json

import pytest

from interp.cli import main

COMMANDS = [
    (["dla", "--prompts", "{t}", "--target", " Paris"], "dla"),
    (["lens", "--prompt", "The capital of France is"], "lens"),
    (["sinks"], "sinks"),
    (["massive"], "massive"),
    (["experts", "scan", "--target", "{t}", "--other", "{t}"], "experts"),
    (["voids", "--prompts", "{t}"], "voids"),
    (["voids", "eval"], "voids_eval"),
    (["austeer", "eval"], "austeer-eval"),
    (["refusal-steer"], "refusal-steer"),
    (["routing", "--n", "8"], "routing"),
]


@pytest.fixture
def folder_of_runs(tmp_path):
    runs = tmp_path / "runs"
    (runs / "dla-1").mkdir(parents=True)
    (runs / "dla-1" / "manifest.json").write_text(json.dumps({"analysis": "dla"}))
    return runs


@pytest.mark.parametrize("argv, analysis", COMMANDS, ids=[a for _, a in COMMANDS])
def test_a_folder_of_runs_as_out_fails_before_loading(argv, analysis, folder_of_runs, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\nfour\n")
    argv = [a.format(t=prompts) for a in argv]
    # the model named cannot be loaded: reaching the loader would print another error
    assert main([*argv, "--model", str(tmp_path / "never-loaded"), "--out", str(folder_of_runs)]) == 2
    err = capsys.readouterr().err
    assert "holds files that are not a steerlens run (a folder of runs?)" in err and err.count("\n") == 1, err
    assert f"saving this {analysis} run there" in err
    other = folder_of_runs / "dla-1"
    if analysis != "dla":
        assert main([*argv, "--model", str(tmp_path / "never-loaded"), "--out", str(other)]) == 2
        assert f"holds a dla run; saving this {analysis} run there would replace it" in capsys.readouterr().err
