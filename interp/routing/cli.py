"""`steerlens routing` (policy-gate routing, "How Alignment Routes", arXiv 2604.04385).

    steerlens routing --model qwen2.5-coder-0.5b-instruct --n 120 --steps screen,interchange --out runs/routing --json

Options are checked before the model loads (pairs file with line numbers, --n against the
statistics' minimum, --layers syntax, --steps names), then against the model (chat
template, --layers range) before any forward pass; --verify/--verify-random/--ig-steps given
with a --method that ignores them are refused. An option whose default may not fit the model
(--verify, --verify-random, --top-k, --amplifiers, --null-heads) is clamped to what the model
has when left to its default, and the run says so on stderr ("verifying all 16 heads
exactly (default --verify 24 > 16 heads screened (4 layers x 4))"); the same value typed is
refused (`RoutingConfig.fit_model`).
How we differ from the authors' code, and the options that reproduce it:
docs/fidelity/routing.md.
Runs on the same --out resume: completed steps are not recomputed. With --resume the options
not given are the stored run's (its model, seed, steps, pairs and chat setting too; a run is
saved before its first new step computes), so an interrupted command need not be retyped:
`steerlens routing --out DIR --resume`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..cli.common import batch_size, check_out, finish, load_model, option_help, own_option, show_progress
from ..runs.config import add_config_args, config_from_args, field_default

# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'routing': 'policy-gate routing: interchange screen, gate, knockout, modulation, cipher collapse',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .config import RoutingConfig

    routing = sub.add_parser("routing", parents=[common], help=COMMANDS["routing"],
                             description="Find the refusal gate head by per-head interchange on matched harmful/"
                                         "benign pairs, then its amplifiers (knockout cascade), the dose-response "
                                         "of the probe direction and the collapse of routing under a cipher.",
                             epilog="Where this differs from the authors' code (gregfrank/how-alignment-routes) "
                                    "and the options that reproduce it (--align paper, --generation-config "
                                    "model): docs/fidelity/routing.md. Choosing --method: docs/routing.md.")
    routing.add_argument("--pairs", default=None, help="JSONL of {harmful, benign, category} pairs "
                                                       "(default: the shipped interp/data/refusal_pairs.jsonl)")
    routing.add_argument("--no-chat", dest="no_chat", action="store_true",
                         help="send the raw request texts (models without a chat template); the default wraps "
                              "each request in the chat template (--chat, the default here)")
    add_config_args(routing, RoutingConfig)
    # the shared --chat reads as opt-in elsewhere; here it is the default
    option_help(routing, "--chat", "wrap each request in the chat template (the default here; --no-chat to turn "
                                   "it off)")
    routing.add_argument("--resume", action="store_true",
                         help="continue the routing run in --out (after an interruption, or to add steps): its "
                              "finished steps are kept, and every option not given here (--model, --seed, --bos, "
                              "--steps, --pairs and --chat included) is the one the run was last started with. Without --resume a run in --out "
                              "is extended only when the options given match it")
    options = {f.name for f in dataclasses.fields(RoutingConfig)}
    for action in routing._actions:
        if action.dest in options:  # None when not given, so an explicit value can be told from the default
            action.default = None
    for shared in ("--seed", "--bos"):  # the same, on routing's own copies of the shared options
        own_option(routing, shared, default=None)
    routing.set_defaults(func=cmd_routing)


# options only some methods read; given explicitly with another method they would be ignored
_SCREEN_ONLY = {"verify": "--verify", "verify_random": "--verify-random", "ig_steps": "--ig-steps"}
_READ_BY = {"verify": ("atp+exact", "ig+exact"), "verify_random": ("atp+exact", "ig+exact"),
            "ig_steps": ("ig", "ig+exact")}


def _check_method_options(args, given: list[str]) -> None:
    """One-line error when --verify/--verify-random/--ig-steps (`given`) come with a --method
    that ignores them."""
    method = args.method
    dests = {flag: dest for dest, flag in _SCREEN_ONLY.items()}
    ignored = [flag for flag in given if method not in _READ_BY[dests[flag]]]
    if ignored:
        readers = sorted({m for flag in ignored for m in _READ_BY[dests[flag]]})
        raise ValueError(f"{' and '.join(ignored)} only apply to --method {' or '.join(readers)}; --method {method} "
                         f"ignores them: drop {' and '.join(ignored)} or change --method")


def cmd_routing(args) -> int:
    from .config import RoutingConfig
    from .pairs import Pair, load_pairs
    from .pipeline import run_routing

    if args.chat and args.no_chat:
        raise ValueError("--chat and --no-chat contradict each other; pass one (routing uses the chat template "
                         "unless --no-chat)")
    check_out(args.out, "routing")  # a routing run there is resumed; a folder of runs is refused now
    given = [flag for dest, flag in _SCREEN_ONLY.items() if getattr(args, dest, None) is not None]
    stored = _stored_run(args) if args.resume else None
    if stored is not None:
        _options_from_run(args, stored)
    for f in dataclasses.fields(RoutingConfig):  # options neither given nor resumed: the defaults
        if getattr(args, f.name, None) is None:
            setattr(args, f.name, field_default(f))
    args.seed = 0 if args.seed is None else args.seed
    args.bos = "default" if args.bos is None else args.bos
    _check_method_options(args, given)
    args.chat = stored.chat if stored is not None and not (args.chat or args.no_chat) else not args.no_chat
    config = config_from_args(RoutingConfig, args)  # validates before loading
    if stored is not None and args.pairs is None:
        if config.n > len(stored.pairs):
            raise ValueError(f"the run in {args.out} holds {len(stored.pairs)} pairs; --n {config.n} would be "
                             "another run: pass --pairs and a new --out")
        pairs = [Pair(**p) for p in stored.pairs]
    else:
        pairs = load_pairs(args.pairs, config.n)
    size = batch_size(args)
    model = load_model(args)
    result = run_routing(model, pairs, config, chat=args.chat, out=args.out, seed=args.seed, batch_size=size,
                         progress=show_progress(args))
    if args.json:  # the readable summary lists them; next to JSON, say them on stderr
        for line in result.summary()["warnings"]:
            print(f"warning: {line}", file=sys.stderr)
    return finish(result, args, "routing")


def _stored_run(args):
    """The routing run in --out to resume; ValueError (one line) when --out holds none, or
    holds one that cannot be read. A run is saved before its first step computes, so an
    interrupted call always leaves one to resume."""
    from pathlib import Path

    from ..runs.results import MANIFEST, RunLoadError
    from .result import RoutingResult

    if args.out is None:
        raise ValueError("--resume needs --out: the folder of the run to continue")
    if not (Path(args.out) / MANIFEST).is_file():
        raise ValueError(f"--resume: no routing run in {args.out} to resume; check the folder, or drop --resume to "
                         "start a run there")
    try:
        return RoutingResult.load(args.out)
    except RunLoadError as err:
        raise ValueError(f"--resume: the run in {args.out} cannot be read ({err}); pass a new --out") from None


def _options_from_run(args, stored) -> None:
    """Fill each option not given (None) with the stored run's value (model, seed and --bos
    included); say on stderr what the resumed run uses beyond the defaults."""
    from .config import RoutingConfig

    recorded = stored.meta.config or {}
    taken = []
    if args.model is None and stored.meta.model.get("spec"):
        args.model = stored.meta.model["spec"]
        taken.append(f"--model {args.model}")
    if args.seed is None:
        args.seed = stored.meta.seed
        taken += [f"--seed {args.seed}"] if args.seed else []
    if args.bos is None:
        args.bos = stored.meta.model.get("bos_policy", "default")
        taken += [f"--bos {args.bos}"] if args.bos != "default" else []
    if not (args.chat or args.no_chat) and not stored.chat:
        taken.append("--no-chat")
    method = args.method if args.method is not None else recorded.get("method")
    for f in dataclasses.fields(RoutingConfig):
        if getattr(args, f.name, None) is None and f.name in recorded:
            setattr(args, f.name, recorded[f.name])
            if recorded[f.name] != field_default(f) and (f.name not in _SCREEN_ONLY or method in _READ_BY[f.name]):
                value = recorded[f.name]
                taken.append(f"--{f.name.replace('_', '-')} {','.join(value) if isinstance(value, list) else value}")
    if args.pairs is None:
        taken.append(f"(the run's {len(stored.pairs)} pairs)")
    print(f"--resume: continuing the run in {args.out} with {' '.join(taken)}", file=sys.stderr)
