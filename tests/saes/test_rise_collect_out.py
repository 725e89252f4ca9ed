"""`steerlens rise collect --out`: a folder it cannot use is refused before the model loads."""

import json

import pytest

import saes.cli_rise as cli_rise
from interp.cli import main


class Loaded(Exception):
    """Raised instead of loading the model: --out passed the checks."""


@pytest.fixture(autouse=True)
def no_model(monkeypatch):
    def load(args):
        raise Loaded(args.out)
    monkeypatch.setattr(cli_rise, "load_model", load)


def _collect(out):
    return main(["rise", "collect", "--model", "never-loaded", "--n", "2", "--out", str(out)])


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "routing-1").mkdir() or (d / "routing-1" / "manifest.json").write_text('{"analysis": "routing"}'),
     "holds files that are not a steerlens run (a folder of runs?)"),
    (lambda d: (d / "manifest.json").write_text(json.dumps({"analysis": "dla"})), "holds a dla run"),
])
def test_a_folder_of_runs_or_another_run_is_refused_before_loading(tmp_path, capsys, make, message):
    out = tmp_path / "runs"
    out.mkdir()
    make(out)
    before = sorted(p.name for p in out.rglob("*"))
    assert _collect(out) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in out.rglob("*")) == before


def test_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x")
    assert _collect(tmp_path / "f.txt") == 2
    assert "is a file; pass a folder" in capsys.readouterr().err


@pytest.mark.parametrize("make", [
    lambda d: None,  # a new folder
    lambda d: d.mkdir(),  # an empty one
    lambda d: d.mkdir() or (d / "traces.jsonl").write_text(""),  # an unfinished collect: resumed
    lambda d: d.mkdir() or (d / "collect.json").write_text("{}") or (d / "store").mkdir(),  # a finished one
])
def test_new_empty_and_own_folders_pass(tmp_path, make):
    out = tmp_path / "run"
    make(out)
    with pytest.raises(Loaded):
        _collect(out)
