"""Help and parsing nits: no "(default: None)", no abbreviated options, shared options keep their help."""

import argparse
import re
from pathlib import Path

import pytest

from interp.cli import build_parser, main
from interp.cli.reference import render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def parser():
    return build_parser()


def _parsers(parser):
    stack = [("steerlens", parser)]
    while stack:
        path, current = stack.pop()
        yield path, current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += [(f"{path} {name}", sub) for name, sub in action.choices.items()]


def _command(parser, words):
    """The (sub)command parser `words` name, and the words after it."""
    current, rest = parser, list(words)
    while rest:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or rest[0] not in subs[0].choices:
            break
        current = subs[0].choices[rest.pop(0)]
    return current, rest


def test_no_help_says_default_none(parser):
    assert "(default: None)" not in render()
    experts, _ = _command(parser, ["experts", "scan"])
    (contrast,) = [a for a in experts._actions if "--contrast-token" in a.option_strings]
    assert "logit_diff" in contrast.help and "None" not in contrast.help


def test_every_parser_refuses_abbreviations(parser, capsys):
    assert all(not sub.allow_abbrev for _, sub in _parsers(parser))
    for argv in (["dla", "--prompt", "x", "--model", "never-loaded"], ["vector", "make", "--dat", "x.jsonl"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and f"unrecognized arguments: {argv[-4 if argv[0] == 'dla' else -2]}" in \
            capsys.readouterr().err


def test_commands_writing_a_file_say_so_and_others_keep_the_shared_help(parser):
    def help_of(words, option):
        sub, _ = _command(parser, words)
        return next(a.help for a in sub._actions if option in a.option_strings)
    assert help_of(["vector", "make"], "--out").startswith("vector file to write (.safetensors")
    assert help_of(["austeer", "fit"], "--out").startswith("mask file to write (.safetensors")
    assert help_of(["skills", "select"], "--out").startswith("JSONL file")
    assert help_of(["dla"], "--out").startswith("run directory")  # the overrides did not leak
    assert help_of(["dla"], "--chat") == "wrap each prompt in the chat template"
    assert "the default here" in help_of(["routing"], "--chat")
    assert "| `--out` | `OUT` | vector file to write (.safetensors" in render()


def test_docs_spell_every_option_in_full(parser):
    """Every `steerlens COMMAND ... --option` in the README and docs/ names an option of that command."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for path in texts:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in re.finditer(r"steerlens ((?:[\w.:/=,<>@+-]+ ?)+)", line):
                sub, rest = _command(parser, match.group(1).split())
                if sub is parser:
                    continue
                known = {o for a in sub._actions for o in a.option_strings}
                for word in rest:
                    if word.startswith("--"):
                        checked += 1
                        assert word.split("=")[0] in known, f"{path.name}:{number}: {word} is not an option of " \
                                                            f"`{match.group(0).split(' --')[0]}`"
    assert checked > 20
