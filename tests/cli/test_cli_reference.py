"""docs/cli.md is generated from the CLI parser and must not drift from it."""

import argparse
from pathlib import Path

from interp.cli.reference import render

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_up_to_date():
    checked_in = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert checked_in == render(), "docs/cli.md is stale: run `python -m interp.cli.reference > docs/cli.md`"


def test_every_command_and_option_is_in_the_reference():
    from interp.cli import build_parser
    from interp.cli.reference import _subcommands

    text = render()
    stack = [("steerlens", build_parser())]
    while stack:
        path, parser = stack.pop()
        for name, _, sub in _subcommands(parser):
            assert f"## `{path} {name}`" in text
            stack.append((f"{path} {name}", sub))
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}`" in text, (path, option)
