"""`steerlens tour`: every registered analysis runs on a tiny saved model and its run loads."""

import json

import pytest

import interp.cli.tour_steps as tour_steps
from interp.cli import main
from interp.runs.results import load_run


pytestmark = pytest.mark.usefixtures("one_thread")


def test_quick_tour_on_a_tiny_model_writes_a_loadable_run_per_step(tiny_llama_folder, tmp_path, capsys):
    out = tmp_path / "tour"
    assert main(["tour", "--quick", "--model", str(tiny_llama_folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "tour.json").read_text())
    assert [row["name"] for row in report["rows"]] == list(tour_steps.STEPS)
    for row in report["rows"]:
        assert row["status"] == "ok", row
        result = load_run(row["run_dir"])  # every run directory loads back
        assert result.summary()
        assert row["name"] in printed and row["key"][:20] in printed
    assert printed.rstrip().endswith(f"steerlens app --runs {out}")


def test_unknown_step_name_fails_before_loading(tmp_path, capsys):
    code = main(["tour", "--only", "dla,no-such-step", "--model", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert code == 2
    assert "unknown tour step(s) no-such-step" in capsys.readouterr().err


def test_failing_step_is_reported_and_the_tour_goes_on(tiny_llama_folder, tmp_path, monkeypatch, capsys):
    def broken(model, out_dir, quick):
        raise RuntimeError("planted failure")

    steps = {"broken": tour_steps.TourStep("broken", "always fails", broken), "lens": tour_steps.STEPS["lens"]}
    monkeypatch.setattr(tour_steps, "STEPS", steps)
    monkeypatch.setattr("interp.cli.tour_run.STEPS", steps)
    out = tmp_path / "tour"
    assert main(["tour", "--quick", "--model", str(tiny_llama_folder), "--out", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in report["rows"]] == [("broken", "failed"), ("lens", "ok")]
    assert "RuntimeError: planted failure" in report["rows"][0]["key"]
    assert load_run(out / "lens").analysis == "lens"


def test_step_with_its_own_zoo_model_uses_it_only_on_the_default_tour(monkeypatch):
    from interp.cli import tour_run as tour
    from interp.models import assembly as zoo

    step = tour_steps.TourStep("needs-zoo", "zoo only", lambda model, out_dir, quick: None,
                               model="qwen2.5-coder-0.5b-instruct")
    default_model, own_model = object(), object()
    models = {tour.DEFAULT_MODEL: default_model, "qwen2.5-coder-0.5b-instruct": own_model}
    assert tour._step_model(step, models, tour.DEFAULT_MODEL, None, None) is own_model
    user_model = object()
    assert tour._step_model(step, {"my/folder": user_model}, "my/folder", None, None) is user_model
    from interp.models.fetch import ZooFetchError

    def unreachable(entry, cache_dir=None):
        raise ZooFetchError("could not fetch it")

    monkeypatch.setattr(zoo, "assemble", unreachable)
    assert tour._step_model(step, {tour.DEFAULT_MODEL: default_model}, tour.DEFAULT_MODEL, None, None) is None
