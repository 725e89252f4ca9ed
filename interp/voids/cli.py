"""`steerlens voids` (LAC void detection) and `steerlens voids eval` (accuracy vs alpha).

    steerlens voids --model smollm2-135m-instruct --prompts prompts.txt --alpha 0.8 --max-new-tokens 32 --chat --out runs/voids
    steerlens voids eval --model smollm2-135m-instruct --task mcq_basic --alphas 0.5,0.8,1.0 --skip real --chat --json

How this differs from the authors' code, and the options that reproduce it:
docs/fidelity/voids.md.

`eval` is an optional sub-command of `voids`; options go after the word `eval`. Inputs are
checked before the model is loaded (alpha, prompt file, task file), the model's layers
right after loading.
"""

from __future__ import annotations

import argparse

from ..cli.common import batch_size, check_out, finish, load_model, read_prompt_file, show_progress
from ..cli.fidelity import fidelity_epilog
from ..runs.config import add_config_args, config_from_args


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'voids': 'LAC void detection: inactive layers per token and phase',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .evaluation import VoidEvalConfig
    from .maps import VoidConfig

    voids = sub.add_parser("voids", parents=[common], help=COMMANDS["voids"],
                           description="Apply the LAC rule (Void in Language Models, arXiv 2505.14467) in the prefill "
                                       "pass and every decode step of greedy generation; save token x layer maps. "
                                       "The paper's settings: --norm-dtype model --template paper --skip paper "
                                       "--layer0 sign, and --max-new-tokens N+1 for its max_seq_length N.",
                           epilog=fidelity_epilog("voids"))
    voids.add_argument("--prompts", default=None, help="prompt file: one per line, or JSONL with 'text'")
    add_config_args(voids, VoidConfig)
    voids.set_defaults(func=cmd_voids)
    nested = voids.add_subparsers(dest="voids_command", metavar="eval")
    ev = nested.add_parser("eval", parents=[common], help="multiple-choice accuracy with and without void skipping",
                           description="Zero-shot multiple-choice accuracy with and without LAC void skipping for "
                                       "each alpha, plus the % of layers used.",
                               epilog=fidelity_epilog("voids"))
    add_config_args(ev, VoidEvalConfig)
    ev.set_defaults(func=cmd_eval)


def cmd_voids(args) -> int:
    from .maps import VoidConfig, run_voids

    config = config_from_args(VoidConfig, args)
    if args.prompts is None:
        raise ValueError("no prompts: pass --prompts FILE (or use 'steerlens voids eval' for the accuracy sweep)")
    prompts = read_prompt_file(args.prompts)
    size = batch_size(args)
    check_out(args.out, "voids")
    model = load_model(args)
    result = run_voids(model, prompts, config, chat=args.chat, batch_size=size, progress=show_progress(args), seed=args.seed)
    return finish(result, args, "voids")


def cmd_eval(args) -> int:
    from .evaluation import VoidEvalConfig, evaluate_voids
    from .mcq import load_questions

    config = config_from_args(VoidEvalConfig, args)
    load_questions(config.task, config.limit)  # a bad task file fails before the model loads
    size = batch_size(args)
    check_out(args.out, "voids_eval")
    model = load_model(args)
    result = evaluate_voids(model, config, chat=args.chat, batch_size=size, progress=show_progress(args), seed=args.seed)
    return finish(result, args, "voids_eval")
