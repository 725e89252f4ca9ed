"""`steerlens vector ...` and `steerlens austeer ...`: make, inspect and convert vectors.

    steerlens vector make --model M --data pairs.jsonl --layers 8,10 --method mean-diff --out v.safetensors
    steerlens vector info v.safetensors
    steerlens vector export-gguf v.safetensors v.gguf      # llama.cpp --control-vector
    steerlens vector import-gguf v.gguf v.safetensors
    steerlens austeer fit --model M --task arithmetic --site ffn --k 32 --out au.safetensors
    steerlens austeer eval --model M --task arithmetic --site ffn --ks 2,8,32,100 --json
    steerlens refusal-steer --model qwen2.5-coder-0.5b-instruct --layer 12 --alphas 1,2,4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from interp.cli.common import batch_size, check_out, finish, load_model, option_help, print_summary, show_progress
from interp.cli.fidelity import fidelity_epilog
from interp.runs.config import add_config_args, config_from_args

from .apply import parse_layers


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'vector': 'make, inspect and convert steering vectors',
    'austeer': 'AUSteer: fit and evaluate steering of a few atomic units',
    'refusal-steer': 'add / ablate a difference-of-means refusal direction (chat model)',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .austeer import AUSteerOptions
    from .austeer_eval import AUSteerEvalConfig
    from .contrast import ContrastConfig
    from .refusal_steer import RefusalSteerConfig

    vector = sub.add_parser("vector", help=COMMANDS["vector"])
    vsub = vector.add_subparsers(dest="vector_command", metavar="ACTION")
    vector.set_defaults(func=lambda args: _help(vector))

    make = vsub.add_parser("make", epilog=fidelity_epilog("refusal-direction"), parents=[common], help="build a vector from contrast data",
                           description="Difference of means or PCA of paired differences between positive and "
                                       "negative texts, at chosen layers. --out is the vector file (.safetensors).")
    make.add_argument("--data", default=None, help="JSONL with 'positive' and 'negative' fields per line")
    make.add_argument("--positive", default=None, help="plain-text file of positive texts (with --negative)")
    make.add_argument("--negative", default=None, help="plain-text file of negative texts (with --positive)")
    add_config_args(make, ContrastConfig, skip=("layers",))
    make.add_argument("--layers", default=None, help="layers, e.g. 8,10 or 8-12 (default: the middle layer)")
    option_help(make, "--out", "vector file to write (.safetensors; required); use it with generate --vector")
    make.set_defaults(func=cmd_make)

    info = vsub.add_parser("info", help="describe a vector file")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    export = vsub.add_parser("export-gguf", help="write a llama.cpp control vector (--control-vector)")
    export.add_argument("file")
    export.add_argument("out")
    export.set_defaults(func=cmd_export)

    imp = vsub.add_parser("import-gguf", help="read a llama.cpp control vector into a .safetensors vector")
    imp.add_argument("file")
    imp.add_argument("out")
    imp.set_defaults(func=cmd_import)

    austeer = sub.add_parser("austeer", help=COMMANDS["austeer"], epilog=fidelity_epilog("austeer"))
    asub = austeer.add_subparsers(dest="austeer_command", metavar="ACTION")
    austeer.set_defaults(func=lambda args: _help(austeer))
    fit = asub.add_parser("fit", parents=[common], help="score coordinates on contrastive triples, keep the top k",
                          description="--out is the mask file (.safetensors); use it with generate --austeer. "
                                      "--tie-break paper --capture-dtype float16 --positive-text paper selects the "
                                      "authors' units (zijian678/AUSteer steer.py).",
                          epilog=fidelity_epilog("austeer"))
    _task_arguments(fit)
    fit.add_argument("--site", default="ffn", choices=("attention", "ffn", "layer"), help="atomic-unit site (default: ffn)")
    fit.add_argument("--k", type=int, default=32, help="coordinates to keep (default: 32)")
    fit.add_argument("--n-train", type=int, default=150, help="triples to fit on (default: 150)")
    add_config_args(fit, AUSteerOptions)
    option_help(fit, "--out", "mask file to write (.safetensors; required); use it with generate --austeer")
    fit.set_defaults(func=cmd_austeer_fit)
    ev = asub.add_parser("eval", parents=[common], help="test accuracy: none vs block-level vs AUSteer at several k",
                         epilog=fidelity_epilog("austeer"))
    _task_arguments(ev)
    add_config_args(ev, AUSteerEvalConfig)
    ev.set_defaults(func=cmd_austeer_eval)

    refusal = sub.add_parser("refusal-steer", parents=[common],
                             help=COMMANDS["refusal-steer"], epilog=fidelity_epilog("refusal-direction"),
                             description="Builds the direction on the train half of the shipped harmful/benign "
                                         "pairs, then reports keyword refusal rates on the test half.")
    add_config_args(refusal, RefusalSteerConfig)
    refusal.set_defaults(func=cmd_refusal_steer)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _task_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--task", default=None, help="built-in task: arithmetic, yesno, compare (default: arithmetic)")
    source.add_argument("--data", default=None, help="JSONL task file with prompt, answer, wrong fields")


def _task(args):
    from .tasks import get_task, task_from_file

    return task_from_file(args.data) if args.data else get_task(args.task or "arithmetic")


def _out_file(args, suffix: str) -> Path:
    if not args.out:
        raise ValueError(f"--out FILE{suffix} is required: where to write the result")
    out = Path(args.out)
    if out.suffix != suffix:
        raise ValueError(f"--out must end in {suffix}, got '{out}'")
    return out


def cmd_make(args) -> int:
    from .contrast import ContrastConfig, make_vector, read_contrast_data

    layers = parse_layers(args.layers) if args.layers else []
    config = config_from_args(ContrastConfig, args, layers=layers)
    out = _out_file(args, ".safetensors")
    positives, negatives = read_contrast_data(args.data, args.positive, args.negative)
    model = load_model(args)
    vector = make_vector(model, positives, negatives, config, chat=args.chat, batch_size=batch_size(args),
                         progress=show_progress(args))
    vector.save(out)
    print_summary({**vector.summary(), "file": str(out)}, args)
    return 0


def cmd_info(args) -> int:
    from .vectors import SteeringVector

    summary = SteeringVector.load(args.file).summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    for key, value in summary.items():
        print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return 0


def cmd_export(args) -> int:
    from .gguf_io import export_gguf
    from .vectors import SteeringVector

    path = export_gguf(SteeringVector.load(args.file), args.out)
    print(f"wrote {path} (llama.cpp: --control-vector {path})")
    return 0


def cmd_import(args) -> int:
    from .vectors import import_gguf

    vector = import_gguf(args.file)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ValueError(f"output must end in .safetensors, got '{out}'")
    vector.save(out)
    print(f"wrote {out} (layers {vector.layers}, width {vector.width})")
    return 0


def cmd_austeer_fit(args) -> int:
    from .austeer import AUSteerOptions, fit_austeer
    from .tasks import triples

    if args.k < 1 or args.n_train < 2:
        raise ValueError("--k must be >= 1 and --n-train >= 2")
    options = config_from_args(AUSteerOptions, args)
    options.validate()
    out = _out_file(args, ".safetensors")
    task = _task(args)
    train = task.split(args.n_train, 0, 0, seed=args.seed)["train"]
    model = load_model(args)
    vector = fit_austeer(model, triples(train), site=args.site, k=args.k, chat=args.chat,
                         batch_size=batch_size(args), progress=show_progress(args),
                         config={"task": task.name, "seed": args.seed}, options=options)
    vector.save(out)
    summary = vector.summary()
    summary.pop("extras", None)
    print_summary({**summary, "file": str(out)}, args)
    return 0


def cmd_austeer_eval(args) -> int:
    from .austeer_eval import AUSteerEvalConfig, run_austeer_eval

    config = config_from_args(AUSteerEvalConfig, args)
    task = _task(args)
    task.split(config.n_train, config.n_val, config.n_test, seed=args.seed)  # size errors before loading
    check_out(args.out, "austeer-eval")
    model = load_model(args)
    result = run_austeer_eval(model, task, config, chat=args.chat, batch_size=batch_size(args),
                              progress=show_progress(args), seed=args.seed)
    if not args.json:
        print(result.table.to_string(index=False), file=sys.stdout)
    return finish(result, args, "austeer-eval")


def cmd_refusal_steer(args) -> int:
    from .refusal_steer import RefusalSteerConfig, run_refusal_steer

    config = config_from_args(RefusalSteerConfig, args)
    check_out(args.out, "refusal-steer")
    model = load_model(args)
    result = run_refusal_steer(model, config, batch_size=batch_size(args), seed=args.seed)
    if not args.json:
        print(result.table.to_string(index=False))
    return finish(result, args, "refusal-steer")
