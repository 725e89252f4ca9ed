"""The command-line reference (docs/cli.md), rendered from the parser itself.

    python -m interp.cli.reference > docs/cli.md

Every command and nested command of `interp.cli.build_parser()` gets a section with its
description and a table of its arguments (names, value, help text, defaults as the help
states them). The options every model command shares are listed once. The text is built
from the parser's actions rather than from argparse's formatted `--help`, whose layout
changes with the terminal width and the Python version; tests/test_cli_reference.py fails
when docs/cli.md differs from what this prints, so the reference cannot drift from the CLI.
"""

from __future__ import annotations

import argparse
import sys

HEADER = """# steerlens command-line reference

Generated from the command-line parser by `python -m interp.cli.reference > docs/cli.md`
(tests/test_cli_reference.py fails when this file is out of date). `steerlens COMMAND --help`
prints the same help in the terminal.
"""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order they were added."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases map to the same parser
                    seen.add(id(sub))
                    out.append((name, helps.get(name, ""), sub))
    return out


def _own_actions(parser: argparse.ArgumentParser, skip: set[str]) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and not (a.option_strings and set(a.option_strings) <= skip)]


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    if action.metavar is not None:
        return str(action.metavar)
    return action.dest.upper() if action.option_strings else action.dest


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(actions: list[argparse.Action]) -> list[str]:
    rows = ["| argument | value | help |", "|---|---|---|"]
    for action in actions:
        names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}` (positional)"
        value = _value(action)
        help_text = (action.help or "") % {"default": action.default, "prog": "steerlens"} \
            if action.help and "%(" in action.help else (action.help or "")
        rows.append(f"| {names} | {f'`{_cell(value)}`' if value else ''} | {_cell(help_text)} |")
    return rows


def _section(path: str, help_line: str, parser: argparse.ArgumentParser, common: dict[str, str]) -> list[str]:
    """`common`: {option: help} of the shared options; a command listing them all is sent to
    their table, except for those it gives a help of its own (`interp.cli.common.option_help`)."""
    options = {s for a in parser._actions for s in a.option_strings}
    shares_common = bool(common) and set(common) <= options
    lines = [f"## `{path}`", ""]
    text = parser.description or help_line
    if text:
        lines += [_cell(text), ""]
    if parser.epilog:  # e.g. the fidelity page (interp.cli.fidelity)
        lines += [_cell(parser.epilog), ""]
    nested = _subcommands(parser)
    if nested:
        lines += ["Subcommands: " + ", ".join(f"`{path} {name}`" for name, _, _ in nested) + ".", ""]
    if shares_common:
        lines += ["Takes the [model and run options](#model-and-run-options).", ""]
    shared = {o for a in parser._actions for o in a.option_strings if common.get(o) == a.help}
    actions = _own_actions(parser, shared if shares_common else set())
    if actions:
        lines += _table(actions) + [""]
    for name, sub_help, sub in nested:
        lines += _section(f"{path} {name}", sub_help, sub, common)
    return lines


def render() -> str:
    """The whole reference as Markdown."""
    from . import build_parser, common_parser

    parser = build_parser()
    common_actions = _own_actions(common_parser(), set())
    common = {s: a.help for a in common_actions for s in a.option_strings}
    commands = _subcommands(parser)
    lines = [HEADER, "## Commands", "", "| command | what it does |", "|---|---|"]
    lines += [f"| `steerlens {name}` | {_cell(help_line)} |" for name, help_line, _ in commands]
    lines += ["", "## Model and run options", "",
              "Shared by every command that loads a model (unless its section says otherwise).", ""]
    lines += _table(common_actions) + [""]
    for name, help_line, sub in commands:
        lines += _section(f"steerlens {name}", help_line, sub, common)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
