"""`steerlens massive` (massive activations) and `steerlens emergence` (their emergence over training).

    steerlens massive --model smollm2-135m-instruct [--prompts FILE] --out DIR [--intervene] [--json]
    steerlens emergence --checkpoints ckpts.jsonl [--prompts FILE] --out DIR [--json]

How they differ from the authors' code, and the options that reproduce it:
docs/fidelity/massive.md. Both default to the shipped natural-text prompts (interp/data/sinks_text.txt).
`massive --intervene` evaluates perplexity on interp/data/ppl_sample.txt unless `--ppl-file`
names another text file.
"""

from __future__ import annotations

import argparse

from ..cli.common import batch_size, check_out, finish, load_model, read_prompt_file, show_progress
from ..cli.fidelity import fidelity_epilog
from ..runs.config import add_config_args, config_from_args


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'massive': 'massive activations: where, origin, ablation',
    'emergence': 'fit the emergence of massive activations over training checkpoints',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .activations import MassiveConfig

    massive = sub.add_parser("massive", parents=[common], help=COMMANDS["massive"],
                             description="Sun et al. massive activations per layer, the sublayer that writes them "
                                         "and (--intervene) perplexity with them zeroed vs set to their mean. Reports "
                                         "the pooled top entries and median (every token of every prompt) and, "
                                         "next to them, the paper's per-sequence statistic (each prompt's own top "
                                         "--seq-top and median, averaged over prompts: seq_top, seq_median).",
                             epilog=fidelity_epilog("massive"))
    massive.add_argument("--prompts", default=None, help="prompt file (reference corpus), one per line or JSONL "
                                                         "'text' (default: the shipped interp/data/sinks_text.txt)")
    add_config_args(massive, MassiveConfig)
    massive.set_defaults(func=cmd_massive)

    emergence = sub.add_parser("emergence", parents=[common], help=COMMANDS["emergence"],
                               description="Per-layer ratio max|h| / median|h| at each checkpoint, fitted with "
                                           "f(t) = A exp(-lambda x) log(x) + K, x = gamma t + t0 (--model is unused).",
                               epilog=fidelity_epilog("massive"))
    emergence.add_argument("--checkpoints", required=True,
                           help="JSONL file, one {\"step\": N, \"model\": SPEC} per line (at least 5)")
    emergence.add_argument("--prompts", default=None, help="prompt file (default: the shipped natural text)")
    emergence.add_argument("--tokens", type=int, default=64, help="prompts are cut to this many tokens (default: 64)")
    emergence.set_defaults(func=cmd_emergence)


def _prompts(path):
    from ..sinks.measure import default_prompts

    return read_prompt_file(path) if path is not None else default_prompts()


def cmd_massive(args) -> int:
    from .activations import MassiveConfig, run_massive
    from ..metrics.perplexity import read_text_file

    config = config_from_args(MassiveConfig, args)
    prompts = _prompts(args.prompts)
    ppl_texts = read_text_file(config.ppl_file) if config.intervene and config.ppl_file else None
    size = batch_size(args)
    check_out(args.out, "massive")
    model = load_model(args)
    result = run_massive(model, prompts, config, chat=args.chat, batch_size=size, progress=show_progress(args),
                         seed=args.seed, ppl_texts=ppl_texts)
    return finish(result, args, "massive")


def cmd_emergence(args) -> int:
    from .emergence import run_emergence
    from ..runs.prompts import read_records

    records = read_records(args.checkpoints, required=("step", "model"))
    if len(records) < 5:
        raise ValueError(f"{args.checkpoints}: the emergence fit needs at least 5 checkpoints, got {len(records)}")
    bad = [r["step"] for r in records if not isinstance(r["step"], (int, float)) or r["step"] < 0]
    if bad:
        raise ValueError(f"{args.checkpoints}: steps must be numbers >= 0, got {bad}")
    if args.tokens < 1:
        raise ValueError(f"--tokens must be at least 1, got {args.tokens}")
    prompts = _prompts(args.prompts)
    load_kwargs = {"device": args.device, "dtype": args.dtype, "bos": args.bos}
    check_out(args.out, "emergence")
    result = run_emergence([(r["step"], str(r["model"])) for r in records], prompts, tokens=args.tokens,
                           load_kwargs=load_kwargs)
    return finish(result, args, "emergence")
