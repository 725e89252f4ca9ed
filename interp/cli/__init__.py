"""The `steerlens` command line.

Subcommands live next to what they run: every `cli.py` of a subpackage (`interp/dla/cli.py`,
...), every top-level `cli_*.py` of `steering`, `saes` and `app`, and the modules of this
package (`core`, `tour`) may define `register(subparsers, common)` and add their commands
there, so adding an analysis never touches this file. `common` is a parent parser
with the options every model command shares (--model, --device, --dtype, --batch-size,
--attn, --chat, --bos, --json, --out).

Errors that are the user's (bad input, missing files, unknown models) print one line
`steerlens: error: ...` and exit 2, before any work starts where possible
(set STEERLENS_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

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
    return common


def _command_modules() -> list[str]:
    names = [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    for package in PACKAGES:
        try:
            mod = importlib.import_module(package)
        except ImportError:
            continue
        for info in pkgutil.iter_modules(mod.__path__):
            if info.name.startswith("cli_"):
                names.append(f"{package}.{info.name}")
            elif info.ispkg and any(sub.name == "cli" and not sub.ispkg for sub in
                                    pkgutil.iter_modules([os.path.join(path, info.name) for path in mod.__path__])):
                names.append(f"{package}.{info.name}.cli")
    return sorted(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steerlens",
        description="Interpretability analyses and steering for Hugging Face language models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_parser()
    for name in _command_modules():
        module = importlib.import_module(name)
        if hasattr(module, "register"):  # common, reference and friends only help
            module.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bars show progress; keep stderr to one line on errors
    hf_logging.set_verbosity_error()
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("steerlens: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, FileNotFoundError, KeyError) as err:
        if os.environ.get("STEERLENS_DEBUG"):
            raise
        message = (str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)) or type(err).__name__
        print(f"steerlens: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
