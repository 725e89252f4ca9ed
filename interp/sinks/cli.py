"""`steerlens sinks` (attention sinks).

    steerlens sinks --model smollm2-135m-instruct [--prompts FILE] [--eps 0.3] [--tokens 64] --out DIR [--json]

Defaults to the shipped natural-text prompts (interp/data/sinks_text.txt). `sinks` loads
the model with eager attention (patterns are not available from fused kernels);
`--attn sdpa` is refused before loading. `steerlens massive` and `steerlens emergence`
live in interp/massive/cli.py.
"""

from __future__ import annotations

import argparse

from ..cli.common import batch_size, check_out, finish, load_model, read_prompt_file, show_progress
from ..cli.fidelity import fidelity_epilog
from ..runs.config import add_config_args, config_from_args


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'sinks': 'attention sinks: sink rate, first-token share, value drain',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .measure import SinkConfig

    sinks = sub.add_parser("sinks", epilog=fidelity_epilog("sinks"), parents=[common], help=COMMANDS["sinks"],
                           description="Gu et al. sink importance and sink rate, first-token attention share, "
                                       "value-state drain, residual peak and secondary sinks (eager attention).")
    sinks.add_argument("--prompts", default=None, help="natural-text prompt file, one per line or JSONL 'text' "
                                                       "(default: the shipped interp/data/sinks_text.txt)")
    add_config_args(sinks, SinkConfig)
    sinks.set_defaults(func=cmd_sinks)


def _prompts(path):
    from .measure import default_prompts

    return read_prompt_file(path) if path is not None else default_prompts()


def cmd_sinks(args) -> int:
    from .measure import SinkConfig, run_sinks

    if getattr(args, "attn", None) not in (None, "eager"):
        raise ValueError(f"sinks needs attention patterns, which --attn {args.attn} never materialises: "
                         "drop --attn (sinks loads the model with eager attention)")
    config = config_from_args(SinkConfig, args)
    prompts = _prompts(args.prompts)
    size = batch_size(args)
    check_out(args.out, "sinks")
    model = load_model(args, attn="eager")
    result = run_sinks(model, prompts, config, chat=args.chat, batch_size=size, progress=show_progress(args), seed=args.seed)
    return finish(result, args, "sinks")
