"""`steerlens --help` and `steerlens models` answer without importing torch or transformers,
and every command module's COMMANDS literal (read without importing it) matches what its
`register` adds, so lazy dispatch can never lose or misroute a command."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from interp import cli

PROBE = """
import sys
from interp.cli import main
try:
    code = main({argv!r})
except SystemExit as exit:
    code = exit.code
print("HEAVY", sorted(m for m in ("torch", "transformers", "pandas", "numpy") if m in sys.modules))
sys.exit(code or 0)
"""


@pytest.mark.parametrize("argv", [["--help"], [], ["models", "--json"], ["models", "pull", "--help"],
                                  ["no-such-command"]])
def test_light_commands_import_no_torch_or_transformers(argv):
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    heavy = [line for line in out.stdout.splitlines() if line.startswith("HEAVY")]
    assert heavy == ["HEAVY []"], out.stdout + out.stderr
    if argv[:1] == ["no-such-command"]:
        assert out.returncode == 2 and "invalid choice" in out.stderr
    else:
        assert out.returncode == 0, out.stderr
    if argv == ["models", "--json"]:
        rows = json.loads(out.stdout.splitlines()[0])
        assert {row["alias"] for row in rows} >= {"smollm2-135m-instruct"}


def test_declared_commands_match_what_each_module_registers():
    for name, path in cli._command_files().items():
        declared = cli._declared_commands(path)
        module = importlib.import_module(name)
        if not hasattr(module, "register"):
            assert declared == {}, name
            continue
        assert declared is not None, f"{name} defines register but no COMMANDS literal"
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        if any(help_text is None for help_text in declared.values()):  # extends commands of other modules
            continue
        module.register(sub, cli.common_parser())
        assert set(sub.choices) == set(declared), name
        for command, action in zip(sub.choices, sub._choices_actions):
            assert action.help == declared[action.dest], (name, command)


def test_the_summary_lists_every_command_the_full_parser_has():
    full = cli.build_parser()._subparsers._group_actions[0].choices
    summary = cli._summary_parser()._subparsers._group_actions[0].choices
    assert set(full) == set(summary)


def test_one_command_imports_only_its_own_modules():
    parser = cli.build_parser("models")
    assert set(parser._subparsers._group_actions[0].choices) == {"models"}
