"""Helpers every subcommand shares: load the model, read prompts, save and print a result.

Subcommand modules (`interp/<package>/cli.py`, `steering/cli_*.py`, ...) call these so that every analysis behaves the same:
`--out` optional (default `./runs/<analysis>-<timestamp>/`, path printed, on stderr when
`--json` is given so stdout stays one JSON document), `--json` prints the result's
summary, and without it a readable plain-text summary is printed (laid out by
`interp.cli.text.summary_lines`; a result may define `text_summary()`, a dict arranged for
reading, e.g. sorted and trimmed, printed instead of `summary()`).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from ..runs.results import Result, default_run_dir

DEFAULT_MODEL = "smollm2-135m-instruct"


def option_help(parser: argparse.ArgumentParser, option: str, text: str) -> None:
    """Give one command its own help for a shared option (e.g. --out when it names a file)."""
    own_option(parser, option, help=text)


def own_option(parser: argparse.ArgumentParser, option: str, **changes) -> None:
    """Give one command its own copy of a shared option with `changes` (help=, default=).

    `parents=[common]` hands every command the same action objects, so the action is
    copied first: the other commands keep the shared one."""
    old = parser._option_string_actions[option]
    new = copy.copy(old)
    for name, value in changes.items():
        setattr(new, name, value)
    for name in old.option_strings:
        parser._option_string_actions[name] = new
    parser._actions[parser._actions.index(old)] = new
    for group in parser._action_groups:
        if old in group._group_actions:
            group._group_actions[group._group_actions.index(old)] = new


def load_model(args: argparse.Namespace, attn: str | None = None):
    """The model named by --model (default: the zoo's default) with the common options."""
    import interp

    from ..models.loading import parse_max_memory

    spec = getattr(args, "model", None) or DEFAULT_MODEL
    max_memory = parse_max_memory(getattr(args, "max_memory", None))
    if max_memory and not getattr(args, "device_map", None):
        raise ValueError("--max-memory limits a split model: add --device-map auto")
    return interp.load(spec, device=args.device, dtype=args.dtype,
                       attn_implementation=attn or getattr(args, "attn", None), bos=getattr(args, "bos", "default"),
                       device_map=getattr(args, "device_map", None), max_memory=max_memory)


def read_prompt_file(path: str | None, default: list[str] | None = None) -> list[str]:
    """Prompts from a file (plain lines or JSONL `text`), or the default list."""
    from ..runs.prompts import read_prompts

    if path is None:
        if default is None:
            raise ValueError("no prompts: pass --prompts FILE")
        return list(default)
    return read_prompts(path)


def batch_size(args: argparse.Namespace) -> int | str:
    value = getattr(args, "batch_size", "auto")
    if value in (None, "auto"):
        return "auto"
    try:
        size = int(value)
    except ValueError:
        raise ValueError(f"--batch-size must be a positive integer or 'auto', got '{value}'") from None
    if size < 1:
        raise ValueError(f"--batch-size must be a positive integer or 'auto', got '{value}'")
    return size


def show_progress(args: argparse.Namespace) -> bool:
    """Progress goes to stderr, with or without --json: redrawn in place on a terminal, else as
    occasional plain lines (`interp.cli.progress`), so stdout holds only the result (one JSON
    document with --json) and a log of stderr shows how far a long run got. `2>/dev/null`
    silences it."""
    return True


def check_out(out: str | Path | None, analysis: str, resumes: tuple[str, ...] = ()) -> None:
    """Refuse, before the model loads, an --out that this run could not be written to: a file,
    another analysis's run, or a folder of other things (e.g. a folder of runs), the same
    folders `Result.save` refuses at the end. `resumes`: names an unfinished run of this
    command leaves in its folder; a folder holding one of them is that run, to be resumed.
    None (no --out: a new default folder) passes."""
    from ..runs.results import _check_replaceable

    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file; pass a folder for the run")
    if path.is_dir() and not any((path / name).exists() for name in resumes):
        _check_replaceable(path, analysis)


def out_dir(args: argparse.Namespace, analysis: str) -> Path:
    return Path(args.out) if getattr(args, "out", None) else default_run_dir(analysis)


def finish(result: Result, args: argparse.Namespace, analysis: str, extra: dict | None = None) -> int:
    """Save the run, then print its JSON summary (--json) or a readable one."""
    path = result.save(out_dir(args, analysis), overwrite=True)
    text_view = getattr(result, "text_summary", None)
    shown = result.summary() if getattr(args, "json", False) or text_view is None else text_view()
    print_summary({**shown, **(extra or {}), "run_dir": str(path)}, args, path)
    return 0


def print_summary(summary: dict, args: argparse.Namespace, path: Path | None = None) -> None:
    if getattr(args, "json", False):
        if path is not None:
            print(f"run saved to {path}", file=sys.stderr)
        print(json.dumps(summary, default=_jsonable))
        return
    from .text import summary_lines

    for line in summary_lines({k: v for k, v in summary.items() if not (k == "run_dir" and path is not None)}):
        print(line)
    if path is not None:
        print(f"run saved to {path}")


def _jsonable(obj):
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj.tolist()
    except ImportError:
        pass
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
