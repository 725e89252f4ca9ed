"""`steerlens routing` option checks that run before the model loads."""

import pytest

import interp.routing.cli as routing_cli
from interp.cli import main


class Loaded(Exception):
    """Raised instead of loading the model: the options passed every check before it."""


@pytest.fixture
def no_model(monkeypatch):
    def load(args):
        raise Loaded(args.verify, args.verify_random)
    monkeypatch.setattr(routing_cli, "load_model", load)


@pytest.mark.parametrize("method, extra, flags", [
    ("exact", ["--verify", "3"], "--verify"),
    ("exact", ["--verify-random", "0"], "--verify-random"),
    ("exact", ["--verify", "24", "--verify-random", "24"], "--verify and --verify-random"),
    ("atp", ["--verify", "3"], "--verify"),
    ("atp", ["--verify-random", "5"], "--verify-random"),
    ("ig", ["--verify", "3"], "--verify"),
    ("atp+exact", ["--ig-steps", "3"], "--ig-steps"),
    ("exact", ["--ig-steps", "3"], "--ig-steps"),
])
def test_verify_options_with_a_method_that_ignores_them_are_one_line_errors(no_model, tmp_path, capsys,
                                                                              method, extra, flags):
    code = main(["routing", "--method", method, *extra, "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    readers = "ig or ig+exact" if flags == "--ig-steps" else "atp+exact or ig+exact"
    assert f"{flags} only apply to --method {readers}" in err and f"--method {method}" in err
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("extra, verify", [
    (["--method", "exact"], (24, 8)),
    (["--method", "atp"], (24, 8)),
    (["--verify", "3", "--verify-random", "0"], (3, 0)),
    (["--method", "atp+exact", "--verify", "5"], (5, 8)),
    (["--method", "ig+exact", "--verify", "5", "--ig-steps", "3"], (5, 8)),
    (["--method", "ig", "--ig-steps", "2", "--align", "paper", "--generation-config", "model"], (24, 8)),
])
def test_defaults_and_the_methods_options_pass_the_check(no_model, extra, verify):
    with pytest.raises(Loaded) as loaded:
        main(["routing", *extra])
    assert loaded.value.args == verify


def test_ig_steps_below_one_is_refused_before_loading(no_model, capsys):
    assert main(["routing", "--method", "ig", "--ig-steps", "0"]) == 2
    assert "--ig-steps must be at least 1" in capsys.readouterr().err
