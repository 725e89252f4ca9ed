"""Every `steerlens ...` command shown in a bash block of the README or the site parses with
the real command-line parser: an option renamed or removed breaks this test, not a reader."""

import re
import shlex
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in FILES:
        for block in BLOCK.findall(path.read_text(encoding="utf-8")):
            for line in block.splitlines():
                for part in line.split("&&"):
                    part = part.strip()
                    if part.startswith("steerlens "):
                        found.append((path.relative_to(ROOT).as_posix(), part))
    return found


COMMANDS = _commands()


@lru_cache(maxsize=1)
def _parser():
    from interp.cli import build_parser

    return build_parser()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 20


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w}:{c[:60]}" for w, c in COMMANDS])
def test_a_documented_command_parses(where, command):
    argv = shlex.split(command, comments=True)[1:]
    try:
        _parser().parse_args(argv)
    except SystemExit as exit:
        pytest.fail(f"{where}: `{command}` does not parse (exit {exit.code})")
