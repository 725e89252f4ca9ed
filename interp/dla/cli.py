"""`steerlens dla` (direct logit attribution) and `steerlens lens` (logit lens).

    steerlens dla --model smollm2-135m-instruct --prompts prompts.txt --target " Paris" --contrast " London" --out runs/dla
    steerlens lens --model smollm2-135m-instruct --prompt "The capital of France is" --target " Paris" --json

Inputs are checked before the model is loaded where they can be (prompt file, option
syntax), and token strings / layer and head numbers right after loading, before any
forward pass.
"""

from __future__ import annotations

import argparse

from ..cli.common import batch_size, check_out, finish, load_model, read_prompt_file, show_progress
from ..cli.fidelity import fidelity_epilog
from ..runs.config import add_config_args, config_from_args

DEFAULT_DLA_PROMPTS = ["The capital of France is"]


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'dla': 'direct logit attribution to heads, MLPs and neurons',
    'lens': 'logit lens: next-token distribution at every layer',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .attribution import DLAConfig
    from .lens import LensConfig

    dla = sub.add_parser("dla", epilog=fidelity_epilog("dla"), parents=[common], help=COMMANDS["dla"],
                         description="Attribute a token's logit (or a logit difference) at the last prompt token "
                                     "to embeddings, every attention head, every MLP (and neuron).")
    dla.add_argument("--prompts", default=None, help="prompt file: one per line, or JSONL with 'text' "
                                                     "(default: 'The capital of France is')")
    add_config_args(dla, DLAConfig)
    dla.set_defaults(func=cmd_dla)

    lens = sub.add_parser("lens", epilog=fidelity_epilog("lens"), parents=[common], help=COMMANDS["lens"],
                          description="Apply the final norm and unembedding to every layer's residual stream.")
    source = lens.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", default=None, help="one prompt text")
    source.add_argument("--prompts", default=None, help="prompt file: one per line, or JSONL with 'text'")
    add_config_args(lens, LensConfig)
    lens.set_defaults(func=cmd_lens)


def cmd_dla(args) -> int:
    from .attribution import DLAConfig, run_dla

    config = config_from_args(DLAConfig, args)  # validates before loading
    prompts = read_prompt_file(args.prompts, DEFAULT_DLA_PROMPTS)
    size = batch_size(args)
    check_out(args.out, "dla")
    model = load_model(args)
    config.check_model(model)
    config.direction(model)  # token errors now, before any forward pass
    result = run_dla(model, prompts, config, chat=args.chat, batch_size=size, progress=show_progress(args), seed=args.seed)
    return finish(result, args, "dla")


def cmd_lens(args) -> int:
    from .lens import LensConfig, run_lens

    config = config_from_args(LensConfig, args)
    if args.prompt is not None:
        if not args.prompt:
            raise ValueError("--prompt is empty; pass some text")
        prompts = [args.prompt]
    else:
        prompts = read_prompt_file(args.prompts)
    size = batch_size(args)
    check_out(args.out, "lens")
    model = load_model(args)
    config.target_token(model)
    result = run_lens(model, prompts, config, chat=args.chat, batch_size=size, progress=show_progress(args), seed=args.seed)
    return finish(result, args, "lens")
