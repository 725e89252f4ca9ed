"""The `steerlens` command line.

Subcommands live next to what they run: every `cli.py` of a subpackage (`interp/dla/cli.py`,
...), every top-level `cli_*.py` of `steering`, `saes` and `app`, and the modules of this
package (`core`, `tour`) may define `register(subparsers, common)` and add their commands
there, so adding an analysis never touches this file. `common` is a parent parser
with the options every model command shares (--model, --device, --dtype, --batch-size,
--attn, --chat, --bos, --json, --out).

Start-up stays fast because a command module also declares, as a literal read from its
source without importing it, `COMMANDS = {"name": "one-line help"}`: `steerlens --help`
lists commands from those alone, and `steerlens NAME ...` imports only the modules that
declare NAME (so torch loads only for a command that needs it). A module with no COMMANDS
is imported every time; `None` as a help means the module extends a command another
module adds (e.g. `models pull`, or a `generate` option from an analysis).

Errors that are the user's (bad input, missing files, unknown models) print one line
`steerlens: error: ...` and exit 2, before any work starts where possible
(set STEERLENS_DEBUG=1 for the traceback). Progress bars go to stderr; when it is not a
terminal they print as occasional plain lines (`interp.cli.progress`).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import pkgutil
import sys

from .progress import line_progress

PACKAGES = ("interp", "steering", "saes", "app")


class UserError(Exception):
    """An error caused by the command's input; printed as one line."""


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("model and run options")
    group.add_argument("--model", "-m", default=None,
                       help="zoo alias, .gguf file, save_pretrained folder or hub id (default: smollm2-135m-instruct)")
    group.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    group.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: bf16 on GPU, float32 on CPU)")
    group.add_argument("--batch-size", default="auto", help="prompts per forward pass, or 'auto' (default: auto)")
    group.add_argument("--attn", default=None, choices=("eager", "sdpa"),
                       help="attention implementation (patterns need eager)")
    group.add_argument("--chat", action="store_true", help="wrap each prompt in the chat template")
    group.add_argument("--bos", default="default", choices=("default", "always", "never"),
                       help="BOS policy: tokenizer default, always prepend, never prepend")
    group.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    group.add_argument("--out", default=None, help="run directory (default: ./runs/<analysis>-<timestamp>/)")
    group.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    group.add_argument("--device-map", default=None,
                       help="split the model over devices with accelerate: auto, balanced or sequential "
                            "(default: the whole model on --device)")
    group.add_argument("--max-memory", default=None,
                       help="per-device limits for --device-map, e.g. 0=20GiB,1=20GiB,cpu=64GiB")
    return common


def _package_dirs(package: str) -> list[str]:
    """Folders of a top-level package, found without importing it (its __init__ may be heavy)."""
    spec = importlib.util.find_spec(package)
    return list(spec.submodule_search_locations or []) if spec is not None else []


def _command_files() -> dict[str, str]:
    """{module name: source file} of every command module, found on disk without importing."""
    found = {f"{__name__}.{info.name}": os.path.join(info.module_finder.path, f"{info.name}.py")
             for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")}
    for package in PACKAGES:
        for folder in _package_dirs(package):
            for info in pkgutil.iter_modules([folder]):
                if info.name.startswith("cli_") and not info.ispkg:
                    found[f"{package}.{info.name}"] = os.path.join(folder, f"{info.name}.py")
                elif info.ispkg and os.path.isfile(os.path.join(folder, info.name, "cli.py")):
                    found[f"{package}.{info.name}.cli"] = os.path.join(folder, info.name, "cli.py")
    return dict(sorted(found.items()))


def _command_modules() -> list[str]:
    return list(_command_files())


def _declared_commands(path: str) -> dict[str, str | None] | None:
    """A module's `COMMANDS = {name: one-line help}` read from its source, or None.

    `None` as a help marks a command the module extends rather than adds (its `register`
    needs the parser another module made, e.g. `models pull`); modules without COMMANDS
    are always imported; modules without a `register` function add nothing ({})."""
    try:
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
    except (OSError, SyntaxError):
        return None
    if not any(isinstance(node, ast.FunctionDef) and node.name == "register" for node in tree.body):
        return {}  # a helper module (common options, the reference): it adds no command
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "COMMANDS" for t in targets) and node.value is not None:
                return ast.literal_eval(node.value)
    return None


def _declarations() -> dict[str, dict[str, str | None] | None]:
    """{command module: its COMMANDS (None: declares none)}, from the sources alone."""
    return {name: _declared_commands(path) for name, path in _command_files().items()}


def _register(sub, common: argparse.ArgumentParser, modules: list[str]) -> None:
    for name in modules:
        module = importlib.import_module(name)
        if hasattr(module, "register"):  # common, reference and friends only help
            module.register(sub, common)


class Parser(argparse.ArgumentParser):
    """Every steerlens parser: options must be spelled in full (`--prompt` is not taken for
    `--prompts`). Subcommand parsers are made of the same class (argparse's default
    `parser_class`), so the top parser decides for all of them."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


def _top_parser() -> argparse.ArgumentParser:
    return Parser(
        prog="steerlens",
        description="Interpretability analyses and steering for Hugging Face language models.",
    )


def build_parser(command: str | None = None, declarations: dict | None = None) -> argparse.ArgumentParser:
    """The parser with every command (`command=None`), or with only the modules that
    declare `command` in their COMMANDS (plus those that declare nothing), so running one
    command imports only what it needs. The full parser imports every analysis."""
    declarations = _declarations() if declarations is None else declarations
    modules = [name for name, declared in declarations.items()
               if command is None or declared is None or command in declared]
    parser = _top_parser()
    _register(parser.add_subparsers(dest="command", metavar="COMMAND"), common_parser(), modules)
    return parser


def _summary_parser(declarations: dict | None = None) -> argparse.ArgumentParser:
    """`steerlens` / `steerlens --help` / an unknown command: the command list from the
    modules' COMMANDS alone, imported only for modules that declare none (fast: no torch)."""
    declarations = _declarations() if declarations is None else declarations
    parser = _top_parser()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _register(sub, common_parser(), [name for name, declared in declarations.items() if declared is None])
    for declared in declarations.values():
        for command, help_text in (declared or {}).items():
            if help_text is not None and command not in sub.choices:
                sub.add_parser(command, help=help_text, add_help=False)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
        if arg in ("-h", "--help"):
            return None
    return None


def _quiet_transformers() -> None:
    """Our own bars show progress; keep stderr to one line on errors. Set through the
    environment, which transformers reads when (and if) a command imports it, so a
    command that needs no model never pays for importing it."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (e.g. main() called from Python)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _requested_command(argv)
    declarations = _declarations()  # one scan of the sources serves both parsers
    known = {c for declared in declarations.values() for c in (declared or {})}
    parser = build_parser(command, declarations) if command in known else _summary_parser(declarations)
    args = parser.parse_args(argv)
    _quiet_transformers()
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with line_progress():  # stderr to a file or pipe: bars print occasional lines, not \r frames
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("steerlens: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `steerlens ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (UserError, ValueError, FileNotFoundError, KeyError) as err:
        if os.environ.get("STEERLENS_DEBUG"):
            raise
        message = (str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)) or type(err).__name__
        print(f"steerlens: error: {message}", file=sys.stderr)
        return 2
