"""The given-versus-default rule (`interp.runs.config.fit_option`): a default that cannot
apply is clamped with a note, a value the user gave is refused; the command line records
which options were typed."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from interp.runs.config import add_config_args, config_from_args, fit_option, is_given, mark_given, option


@dataclass
class Heads:
    verify: int = option(24, "heads verified")
    exact: bool = option(False, "measure every head")


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_config_args(parser, Heads)
    return config_from_args(Heads, parser.parse_args(argv))


def test_a_default_is_clamped_and_the_run_says_so(capsys):
    config = _parse([])
    message = fit_option(config, "verify", 16, "heads screened", doing="verifying all 16 heads exactly")
    assert config.verify == 16
    assert message == "verifying all 16 heads exactly (default --verify 24 > 16 heads screened)"
    assert capsys.readouterr().err == f"note: {message}\n"


def test_a_typed_value_is_refused_even_when_it_equals_the_default(capsys):
    config = _parse(["--verify", "24"])
    with pytest.raises(ValueError, match=r"^--verify 24 is more than the 16 heads screened; pass --verify 16 or "
                                         r"fewer, or --method exact$"):
        fit_option(config, "verify", 16, "heads screened", hint=", or --method exact")
    assert capsys.readouterr().err == ""


def test_a_value_that_fits_is_kept_silently(capsys):
    config = _parse(["--verify", "8", "--exact"])
    assert fit_option(config, "verify", 16, "heads screened") is None and config.verify == 8
    assert is_given(config, "exact") and capsys.readouterr().err == ""


def test_python_configs_count_a_changed_value_as_given_unless_marked():
    assert not is_given(Heads(), "verify") and is_given(Heads(verify=30), "verify")
    assert is_given(mark_given(Heads(), {"verify"}), "verify")
    assert not is_given(mark_given(Heads(verify=30), ()), "verify")
    with pytest.raises(ValueError, match="--verify 30 is more than"):
        fit_option(Heads(verify=30), "verify", 16, "heads screened")
