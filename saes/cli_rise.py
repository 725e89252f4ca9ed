"""`steerlens rise ...`: sparse autoencoders on reasoning steps (RISE, arXiv 2512.23988), see `saes`.

    steerlens rise collect --model M [--problems FILE | --n N] [--layer L] --out DIR   # traces + step activations
    steerlens rise train --run DIR [--preset paper] [--resume]                         # sae-lens SAETrainer
    steerlens rise analyze --run DIR [--json]          # diagnostics, behaviours, geometry, behaviour vectors
    steerlens rise steer --run DIR --behaviour reflection --alphas=-1.5,-1,0,1,1.5 [--json]
    steerlens rise confidence --run DIR [--json]       # latent offset minimising answer entropy, confidence vector
    steerlens generate --model M --prompt "..." --vector DIR/vectors/reflection_layer12.safetensors:-4

Each stage reads the run directory the previous one wrote. `analyze` and `steer` load the
model the run was collected with unless --model says otherwise; their results are saved
under the run (`analysis/`, `steer-<behaviour>-<mode>/`) unless --out is given.
"""

from __future__ import annotations

import argparse
import codecs
import json
import sys
from pathlib import Path

from interp.cli.common import batch_size, check_out, finish, load_model, print_summary, show_progress
from interp.cli.fidelity import fidelity_epilog
from interp.runs.config import add_config_args, config_from_args, given_options

# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'rise': 'RISE: SAEs on reasoning steps, behaviour vectors, step-level steering',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .analyze import AnalyzeConfig
    from .collect import CollectConfig
    from .confidence import ConfidenceConfig
    from .steer import SteerConfig
    from .train import PRESETS, TrainConfig

    rise = sub.add_parser("rise", epilog=fidelity_epilog("rise"), help=COMMANDS["rise"])
    rsub = rise.add_subparsers(dest="rise_command", metavar="ACTION")
    rise.set_defaults(func=lambda args: rise.print_help() or 0)

    collect = rsub.add_parser("collect", epilog=fidelity_epilog("rise"), parents=[common], help="generate or read traces, capture step activations",
                              description="Traces from --problems (JSONL: question [+ response, answer]) or --n "
                                          "generated problems; the residual after --layer at each step-end token. "
                                          "--out is the run directory (resumes if it exists).")
    collect.add_argument("--problems", default=None, help="JSONL with 'question' and optional 'response', 'answer'")
    collect.add_argument("--layer", default=None, help="layer(s) to capture, comma-separated (default: the middle)")
    add_config_args(collect, CollectConfig, skip=("layers",))
    collect.set_defaults(func=cmd_collect)

    train = rsub.add_parser("train", epilog=fidelity_epilog("rise"), help="train an SAE per captured layer with sae-lens' SAETrainer")
    train.add_argument("--run", required=True, help="run directory of `rise collect`")
    train.add_argument("--layer", default=None, help="layers to train, comma-separated (default: all captured)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.add_argument("--preset", default="default", choices=tuple(PRESETS),
                       help="named settings: default (TopK, k = 32: a sparse SAE, see docs/rise.md) or paper "
                            "(RISE's ReLU + L1, L1 2e-3); options given here override the preset's "
                            "(default: default)")
    add_config_args(train, TrainConfig)
    train.set_defaults(func=cmd_train)

    analyze = rsub.add_parser("analyze", epilog=fidelity_epilog("rise"), parents=[common], help="diagnostics, behaviours, geometry, vectors")
    analyze.add_argument("--run", required=True, help="run directory of `rise collect` + `rise train`")
    add_config_args(analyze, AnalyzeConfig)
    analyze.set_defaults(func=cmd_analyze)

    steer = rsub.add_parser("steer", epilog=fidelity_epilog("rise"), parents=[common], help="dose-response of steering at step ends")
    steer.add_argument("--run", required=True, help="run directory with behaviour vectors (`rise analyze`)")
    steer.add_argument("--problems", default=None, help="JSONL with 'question' and 'answer' (default: --n generated)")
    add_config_args(steer, SteerConfig)
    steer.set_defaults(func=cmd_steer)

    conf = rsub.add_parser("confidence", epilog=fidelity_epilog("rise"), parents=[common], help="confidence vector: a latent offset minimising "
                           "answer entropy, and its dose-response",
                           description="Adam over an offset of the SAE's latents at step-end tokens that minimises "
                                       "the mean next-token entropy at the answer tokens of the run's traces; the "
                                       "top latents' decoder mean is the confidence vector (saved under "
                                       "<run>/vectors/), steered at step ends on held-out problems over --alphas.")
    conf.add_argument("--run", required=True, help="run directory of `rise collect` + `rise train`")
    add_config_args(conf, ConfidenceConfig)
    conf.set_defaults(func=cmd_confidence)


def _layers(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--layer takes comma-separated integers, got '{text}'") from None


def _run(path: str, need: str) -> Path:
    run = Path(path)
    if not (run / "collect.json").is_file():
        raise ValueError(f"{run} is not a RISE run (no collect.json); {need}")
    return run


def _model(args, run: Path):
    if args.model is None:
        args.model = json.loads((run / "collect.json").read_text())["model"].get("spec")
    return load_model(args)


def cmd_collect(args) -> int:
    from .collect import COLLECT, STORE, TRACES, CollectConfig, collect

    if not args.out:
        raise ValueError("--out DIR is required: the run directory every later stage reads")
    args.separator = codecs.decode(args.separator, "unicode_escape")  # "\n\n" typed on a command line
    # a new folder, or one this command started (resumed); never another run or a folder of runs
    check_out(args.out, "rise collect", resumes=(COLLECT, TRACES, STORE))
    config = config_from_args(CollectConfig, args, layers=_layers(args.layer))
    if args.problems is not None and not Path(args.problems).is_file():
        raise ValueError(f"{args.problems}: problems file not found")
    model = load_model(args)
    collect(model, config, args.out, problems_file=args.problems, chat=args.chat, batch_size=batch_size(args),
            seed=args.seed, progress=show_progress(args))
    facts = json.loads((Path(args.out) / "collect.json").read_text())
    print_summary({k: facts[k] for k in ("n_traces", "n_steps", "sites", "d_model")} | {"run_dir": args.out}, args)
    return 0


def cmd_train(args) -> int:
    from .analyze import sae_folder
    from .collect import STORE, resid_site
    from .train import PRESETS, TrainConfig, train_layer

    run = _run(args.run, f"run `steerlens rise collect --out {args.run}` first")
    given = given_options(args)
    config = config_from_args(TrainConfig, args, **{k: v for k, v in PRESETS[args.preset].items() if k not in given})
    captured = json.loads((run / "collect.json").read_text())["config"]["layers"]
    layers = _layers(args.layer) or captured
    missing = sorted(set(layers) - set(captured))
    if missing:
        raise ValueError(f"--layer {missing} was not captured; the run has layers {captured}")
    out = {}
    for layer in layers:
        folder = train_layer(run / STORE, resid_site(layer), sae_folder(run, layer), config, seed=args.seed,
                             resume=args.resume, progress=show_progress(args))
        record = json.loads((folder / "training.json").read_text())
        out[str(layer)] = {"folder": str(folder), "final": record["curve"][-1] if record["curve"] else None,
                           "throughput": record["throughput"]}
    print_summary({"layers": out}, args)
    return 0


def cmd_analyze(args) -> int:
    from .analyze import AnalyzeConfig, analyze, trained_layers

    run = _run(args.run, f"run `steerlens rise collect --out {args.run}` first")
    trained_layers(run)  # fails before loading the model
    config = config_from_args(AnalyzeConfig, args)
    check_out(args.out, "rise")
    model = _model(args, run)
    result = analyze(model, run, config, seed=args.seed, progress=show_progress(args))
    for line in result.warnings():  # also in the summary; on stderr so --json output shows it too
        print(f"warning: {line}", file=sys.stderr)
    args.out = args.out or str(run / "analysis")
    return finish(result, args, "rise")


def cmd_steer(args) -> int:
    from .steer import SteerConfig, steer

    run = _run(args.run, "collect, train and analyze it first")
    config = config_from_args(SteerConfig, args)
    if not any((run / "vectors").glob(f"{config.behaviour}_layer*.safetensors")):
        raise ValueError(f"no '{config.behaviour}' vector in {run / 'vectors'}; run `steerlens rise analyze --run "
                         f"{run}` first (a behaviour gets a vector only when some latent is specific to it)")
    check_out(args.out, "rise-steer")
    model = _model(args, run)
    result = steer(model, run, config, problems_file=args.problems, seed=args.seed, progress=show_progress(args))
    args.out = args.out or str(run / f"steer-{config.behaviour}-{config.mode}")
    return finish(result, args, "rise-steer")


def cmd_confidence(args) -> int:
    from .analyze import trained_layers
    from .confidence import ConfidenceConfig
    from .confidence_run import confidence

    run = _run(args.run, f"run `steerlens rise collect --out {args.run}` first")
    layers = trained_layers(run)  # these checks fail before loading the model
    config = config_from_args(ConfidenceConfig, args)
    config.validate()
    if config.layer >= 0 and config.layer not in layers:
        raise ValueError(f"--layer {config.layer} has no trained SAE in {run}; trained layers: {layers}")
    check_out(args.out, "rise-confidence")
    model = _model(args, run)
    result = confidence(model, run, config, seed=args.seed, progress=show_progress(args))
    args.out = args.out or str(run / "confidence")
    return finish(result, args, "rise-confidence")
