"""`steerlens experts scan` and `steerlens generate --experts-off/--experts-on` on the planted
MoE saved to a folder, and the bad inputs that must stop with one line (exit code 2)."""

from __future__ import annotations

import json

import pytest

from interp.cli import main
from interp.experts.planted import PLANTED, planted_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted")
    model = planted_model()
    model.hf.save_pretrained(path)
    model.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompts")
    (root / "target.txt").write_text("ab#\nhello@\nx$\nzz@\n")
    (root / "other.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in ("abc", "hello", "zzz", "go")))
    (root / "empty.txt").write_text("\n")
    return root


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.strip()


def test_scan_json_ranks_the_planted_expert_first(folder, files, tmp_path, capsys):
    argv = ["experts", "scan", "--model", str(folder), "--target", str(files / "target.txt"),
            "--other", str(files / "other.jsonl"), "--behaviour-token", "!", "--candidates", "4", "--top-n", "1",
            "--random-seeds", "2", "--permutations", "100", "--out", str(tmp_path / "run"), "--json"]
    assert main(argv) == 0
    out = _json(capsys)
    first = out["experts"][0]
    assert (first["layer"], first["expert"]) == PLANTED
    assert set(first) >= {"layer", "expert", "effect", "score", "risk_diff", "p_value"}
    assert out["effects"]["top_off"]["target"] < 0.05 < out["effects"]["baseline"]["target"]
    assert (tmp_path / "run" / "figures" / "score_heatmap.html").is_file()
    assert out["warnings"] == []
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["metric"] == "prob"  # --behaviour-token switched the default refusal metric


def test_scan_warns_when_the_target_prompts_lack_the_behaviour(folder, files, tmp_path, capsys):
    # swapped sets: the "target" prompts never end in a trigger, so the model shows no behaviour there
    argv = ["experts", "scan", "--model", str(folder), "--target", str(files / "other.jsonl"),
            "--other", str(files / "target.txt"), "--behaviour-token", "!", "--candidates", "2", "--top-n", "1",
            "--random-seeds", "1", "--permutations", "100", "--no-force-on", "--out", str(tmp_path / "run"), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert len(out["warnings"]) == 1 and "is no stronger on the 4 target prompts" in out["warnings"][0]
    assert "warning: the behaviour (prob" in captured.err


def test_generate_with_toggles(folder, capsys):
    base = ["generate", "--model", str(folder), "--prompt", "abc", "--max-new-tokens", "3", "--json"]
    assert main(base) == 0
    assert "!" not in _json(capsys)["steered"]
    assert main([*base, "--experts-on", f"{PLANTED[0]}:{PLANTED[1]}"]) == 0
    assert _json(capsys)["steered"].replace(" ", "") == "!!!"
    assert main(["generate", "--model", str(folder), "--prompt", "ab#", "--max-new-tokens", "1", "--json",
                 "--experts-off", f"{PLANTED[0]}:{PLANTED[1]}"]) == 0
    assert "!" not in _json(capsys)["steered"]


def test_bad_inputs_stop_with_one_line(folder, files, tiny_llama_folder, capsys):
    gen = ["generate", "--model", str(folder), "--prompt", "abc", "--max-new-tokens", "1"]
    assert "expert out of range; layer 1 has experts 0..7" in _error(capsys, [*gen, "--experts-off", "1:8"])
    assert "layer 5 has no router" in _error(capsys, [*gen, "--experts-on", "5:0"])
    assert "LAYER:EXPERT" in _error(capsys, [*gen, "--experts-off", "1.8"])
    scan = ["experts", "scan", "--target", str(files / "target.txt"), "--other", str(files / "other.jsonl"),
            "--behaviour-token", "!"]
    assert "dense llama model" in _error(capsys, [*scan, "--model", str(tiny_llama_folder)])
    empty = ["experts", "scan", "--model", str(folder), "--target", str(files / "empty.txt"),
             "--other", str(files / "other.jsonl")]
    assert "no prompts" in _error(capsys, empty)
    only = ["experts", "scan", "--model", str(folder), "--target", str(files / "target.txt")]
    assert "--target FILE and --other FILE" in _error(capsys, only)
    for flag in ("--permutations", "--candidates", "--top-n"):  # a newcomer got p = -0.25 from --permutations -5
        assert f"{flag} must be >= 1, got -5" in _error(capsys, [*scan, "--model", str(folder), flag, "-5"])
    many = [*scan, "--model", str(folder), "--top-n", "8", "--candidates", "4"]
    assert "--top-n 8 is more than --candidates 4" in _error(capsys, many)


def test_the_no_behaviour_warning_ignores_rounding_differences():
    from types import SimpleNamespace

    from interp.experts.result import ExpertsResult

    def warnings(target, other):
        fake = SimpleNamespace(effects={"baseline": {"target": target, "other": other}}, metric="prob",
                               n_target=4, n_other=4)
        return ExpertsResult.warnings(fake)

    assert len(warnings(0.00757289445, 0.00757289398)) == 1  # the same prompts on both sides: no behaviour
    assert warnings(0.9, 0.1) == [] and len(warnings(0.1, 0.9)) == 1
