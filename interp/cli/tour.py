"""`steerlens tour`: run every analysis on one model and print where the runs are.

    steerlens tour --quick                                   # default zoo model, a few minutes on CPU
    steerlens tour --model qwen2.5-coder-0.5b-instruct --out runs/qwen-tour
    steerlens tour --only dla,lens --model path/to/saved_model_folder

Prints progress per step on stderr, then a table (analysis, key figure, run dir, time) and
the command that opens the explorer on the tour's folder. Exit status 1 when a step failed.
"""

from __future__ import annotations

import argparse
import json


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'tour': 'run every analysis on one model, one run directory each, then open the explorer',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    from .tour_steps import STEPS

    tour = sub.add_parser(
        "tour", help=COMMANDS["tour"],
        description="Run every analysis steerlens has on one model (default: the offline SmolLM2-135M-Instruct), "
                    "write one run directory per analysis under --out, print a summary table and the command "
                    f"that opens the explorer. Steps: {', '.join(STEPS)}.")
    tour.add_argument("--model", "-m", default=None,
                      help="zoo alias, .gguf file, save_pretrained folder or hub id (default: smollm2-135m-instruct)")
    tour.add_argument("--out", default=None, metavar="DIR",
                      help="folder for the run directories (default: ./runs/tour-<timestamp>/)")
    tour.add_argument("--quick", action="store_true",
                      help="small settings: a few minutes on two CPU cores with the default model")
    tour.add_argument("--only", default=None, metavar="STEPS",
                      help=f"comma-separated steps to run (default: all: {','.join(STEPS)})")
    tour.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    tour.add_argument("--dtype", default=None,
                      help="float32, bfloat16, float16 (default: bf16 on GPU, float32 on CPU)")
    tour.add_argument("--seed", type=int, default=0, help="random seed set before every step (default: 0)")
    tour.add_argument("--json", action="store_true", help="print the report as one JSON document on stdout")
    tour.set_defaults(func=cmd_tour)


def cmd_tour(args) -> int:
    from .tour_run import run_tour, select_steps

    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    if args.only is not None and not only:
        raise ValueError("--only is empty; pass step names such as dla,lens")
    select_steps(only)  # unknown names fail before the model loads
    report = run_tour(args.model, args.out, args.quick, only=only, device=args.device, dtype=args.dtype,
                      seed=args.seed)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        mode = "quick " if report.quick else ""
        print(f"\nsteerlens {mode}tour of {report.model} (load {report.load_seconds:.1f} s)\n")
        print(report.table())
        print(f"\nopen the explorer on these runs:\n\n    {report.explorer_command()}\n")
    return 0 if report.ok else 1
