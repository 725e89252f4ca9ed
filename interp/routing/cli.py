"""`steerlens routing` (policy-gate routing, "How Alignment Routes", arXiv 2604.04385).

    steerlens routing --model qwen2.5-coder-0.5b-instruct --n 120 --steps screen,interchange --out runs/routing --json

Options are checked before the model loads (pairs file with line numbers, --n against the
statistics' minimum, --layers syntax, --steps names), then against the model (chat
template, --layers range, --verify against the heads screened) before any forward pass;
--verify/--verify-random given with a --method that ignores them are refused.
Runs on the same --out resume: completed steps are not recomputed.
"""

from __future__ import annotations

import argparse
import sys

from ..cli.common import batch_size, check_out, finish, load_model, option_help, show_progress
from ..runs.config import add_config_args, config_from_args

# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'routing': 'policy-gate routing: interchange screen, gate, knockout, modulation, cipher collapse',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .config import RoutingConfig

    routing = sub.add_parser("routing", parents=[common], help=COMMANDS["routing"],
                             description="Find the refusal gate head by per-head interchange on matched harmful/"
                                         "benign pairs, then its amplifiers (knockout cascade), the dose-response "
                                         "of the probe direction and the collapse of routing under a cipher.")
    routing.add_argument("--pairs", default=None, help="JSONL of {harmful, benign, category} pairs "
                                                       "(default: the shipped interp/data/refusal_pairs.jsonl)")
    routing.add_argument("--no-chat", dest="no_chat", action="store_true",
                         help="send the raw request texts (models without a chat template); the default wraps "
                              "each request in the chat template (--chat, the default here)")
    add_config_args(routing, RoutingConfig)
    # the shared --chat reads as opt-in elsewhere; here it is the default
    option_help(routing, "--chat", "wrap each request in the chat template (the default here; --no-chat to turn "
                                   "it off)")
    for action in routing._actions:
        if action.dest in _SCREEN_ONLY:  # None when not given, so an explicit value can be told from the default
            action.default = None
    routing.set_defaults(func=cmd_routing)


# options only --method atp+exact reads; given explicitly with another method they would be ignored
_SCREEN_ONLY = {"verify": "--verify", "verify_random": "--verify-random"}


def _check_method_options(args) -> None:
    """One-line error when --verify/--verify-random are given with a --method that ignores them;
    options not given take RoutingConfig's defaults."""
    from .config import RoutingConfig

    given = [flag for dest, flag in _SCREEN_ONLY.items() if getattr(args, dest, None) is not None]
    method = getattr(args, "method", "atp+exact")
    if given and method != "atp+exact":
        why = "measures every head exactly" if method == "exact" else "only estimates (no head is re-measured)"
        raise ValueError(f"{' and '.join(given)} only apply to --method atp+exact; --method {method} {why}: "
                         f"drop {' and '.join(given)} or use --method atp+exact")
    for dest in _SCREEN_ONLY:
        if getattr(args, dest, None) is None:
            setattr(args, dest, getattr(RoutingConfig, dest))


def cmd_routing(args) -> int:
    from .config import RoutingConfig
    from .pairs import load_pairs
    from .pipeline import run_routing

    if args.chat and args.no_chat:
        raise ValueError("--chat and --no-chat contradict each other; pass one (routing uses the chat template "
                         "unless --no-chat)")
    args.chat = not args.no_chat
    _check_method_options(args)
    config = config_from_args(RoutingConfig, args)  # validates before loading
    pairs = load_pairs(args.pairs, config.n)
    size = batch_size(args)
    check_out(args.out, "routing")  # a routing run there is resumed; a folder of runs is refused now
    model = load_model(args)
    result = run_routing(model, pairs, config, chat=args.chat, out=args.out, seed=args.seed, batch_size=size,
                         progress=show_progress(args))
    if args.json:  # the readable summary lists them; next to JSON, say them on stderr
        for line in result.summary()["warnings"]:
            print(f"warning: {line}", file=sys.stderr)
    return finish(result, args, "routing")
