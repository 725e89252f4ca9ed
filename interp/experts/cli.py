"""`steerlens experts scan` and the `--experts-off` / `--experts-on` options of `steerlens generate`.

    steerlens experts scan --model Qwen/Qwen3-30B-A3B --target harmful.txt --other harmless.txt --chat --out DIR
    steerlens experts scan --model M --target T.txt --other O.txt --behaviour-token " sorry" --json
    steerlens experts scan --model M --prompts mixed.txt --split-by-refusal --out DIR
    steerlens experts scan --model M --chat      # the shipped harmful vs benign requests, refusal rate
    steerlens generate --model M --prompt "..." --experts-off 3:17,5:2 --experts-on 7:1

Prompt files are plain text (one prompt per line) or JSONL with a `text` field.
`--split-by-refusal` generates greedy answers to `--prompts` and uses the refused ones as the
target set, the answered ones as the other set (interp.metrics.refusal). `--json` prints the
summary: `experts` ranked by causal effect ({layer, expert, effect, effect_on, score,
risk_diff, p_value}) and `effects` (the behaviour value of each condition on both sets).
"""

from __future__ import annotations

import argparse
import sys

from ..cli.common import DEFAULT_MODEL, batch_size, check_out, finish, load_model, read_prompt_file, show_progress
from ..cli.fidelity import fidelity_epilog
from ..runs.config import add_config_args, config_from_args

# read without importing this module (see interp.cli): the commands it adds (None: extends)
COMMANDS = {
    'experts': 'MoE experts of a behaviour: association, causal toggles (MoTE)',
    'generate': None,
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .scan import ExpertsConfig

    experts = sub.add_parser("experts", help=COMMANDS["experts"], epilog=fidelity_epilog("experts"),
                             description="Behaviour-specific mixture-of-experts experts (MoTE, arXiv 2502.11096).")
    scan = experts.add_subparsers(dest="experts_command", metavar="SUBCOMMAND", required=True).add_parser(
        "scan", parents=[common], help="association scores, then each candidate toggled alone",
        epilog=fidelity_epilog("experts"),
        description="Score every (layer, expert) by selection frequency on --target vs --other prompts, "
                    "switch the best-associated ones off one at a time, rank them by the change in the "
                    "behaviour, and evaluate top-N off / random-N off / top-N forced on.")
    scan.add_argument("--target", default=None, help="prompts that show the behaviour (text lines or JSONL 'text'); "
                                                     "without --target/--other: the shipped harmful (target) and "
                                                     "benign (other) requests")
    scan.add_argument("--other", default=None, help="prompts that do not")
    scan.add_argument("--prompts", default=None, help="with --split-by-refusal: one mixed prompt set")
    scan.add_argument("--split-by-refusal", action="store_true",
                      help="split --prompts by whether the model's greedy answer is a refusal")
    scan.add_argument("--perplexity-texts", default=None,
                      help="benign text file: perplexity under each condition (quality check)")
    add_config_args(scan, ExpertsConfig, skip=("seed",))
    scan.set_defaults(func=cmd_scan)


def _prompt_sets(args) -> tuple[list[str], list[str] | None, list[str] | None]:
    if args.split_by_refusal:
        if args.prompts is None or args.target or args.other:
            raise ValueError("--split-by-refusal takes one --prompts FILE (no --target / --other)")
        return read_prompt_file(args.prompts), None, None
    if args.target is None and args.other is None and args.prompts is None:
        from ..metrics.refusal import refusal_pairs

        pairs = refusal_pairs()  # the shipped harmful / benign requests
        return [], [p["harmful"] for p in pairs], [p["benign"] for p in pairs]
    if args.target is None or args.other is None:
        raise ValueError("pass --target FILE and --other FILE (or --prompts FILE --split-by-refusal, "
                         "or neither for the shipped harmful / benign requests)")
    target, other = read_prompt_file(args.target), read_prompt_file(args.other)
    for name, prompts in (("--target", target), ("--other", other)):
        if not prompts:
            raise ValueError(f"{name} file has no prompts")
    return [], target, other


def cmd_scan(args) -> int:
    from .scan import ExpertsConfig, experts_scan, split_by_refusal

    config = config_from_args(ExpertsConfig, args, seed=args.seed)
    mixed, target, other = _prompt_sets(args)
    texts = read_prompt_file(args.perplexity_texts) if args.perplexity_texts else None
    _refuse_known_dense(args.model or DEFAULT_MODEL)
    check_out(args.out, "experts")
    model = load_model(args)
    if mixed:
        target, other = split_by_refusal(model, mixed, chat=args.chat, max_new_tokens=config.max_new_tokens)
    result = experts_scan(model, target, other, config, chat=args.chat, perplexity_texts=texts,
                          batch_size=batch_size(args), progress=show_progress(args))
    for line in result.warnings():
        print(f"warning: {line}", file=sys.stderr)
    return finish(result, args, "experts")


def _refuse_known_dense(spec: str) -> None:
    """A zoo alias or a local folder whose architecture is dense: one line before loading."""
    import json
    from pathlib import Path

    from ..arch import spec_for_model_type
    from ..models.zoo import ZOO

    config = Path(spec) / "config.json"
    if spec in ZOO:
        model_type = ZOO[spec].architecture
    elif config.is_file():
        model_type = json.loads(config.read_text()).get("model_type")
    else:
        return  # a hub id or a GGUF file: the scan checks the loaded model
    try:
        arch = spec_for_model_type(model_type)
    except ValueError:
        return  # the loader names unsupported architectures
    if not arch.moe:
        raise ValueError(f"'{spec}' is a dense {arch.family} model; experts scan needs a mixture-of-experts "
                         "model (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, DeepSeek-V3, GPT-OSS), "
                         "e.g. --model Qwen/Qwen3-30B-A3B")


# ---- steerlens generate --experts-off / --experts-on -----------------------------------------
def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("MoE experts")
    group.add_argument("--experts-off", default=None, metavar="L:E,L:E",
                       help="switch these experts off (excluded from top-k; the router renormalises the rest)")
    group.add_argument("--experts-on", default=None, metavar="L:E,L:E", help="always select these experts")


def _prepare(args):
    from ..engine.experts import parse_experts

    return parse_experts(getattr(args, "experts_off", None)), parse_experts(getattr(args, "experts_on", None))


def _edits(model, prepared, args) -> list:
    from ..engine.experts import expert_toggles

    off, on = prepared
    return expert_toggles(model, off, on) if (off or on) else []


def _register_generate_option() -> None:
    try:
        from steering.cli_steering import GenerateOption, register_generate_option
    except ImportError:  # a lean install without the steering package has no generate command
        return
    register_generate_option(GenerateOption("experts", _generate_arguments, _prepare, _edits))


_register_generate_option()
