"""Core commands: `steerlens sites`, `steerlens trace`."""

from __future__ import annotations

import argparse
import fnmatch
import json
import time

from .common import batch_size, load_model, out_dir, print_summary, read_prompt_file, show_progress

DEFAULT_TRACE_PROMPTS = [
    "The capital of France is",
    "Water boils at a temperature of",
    "Once upon a time, in a small village,",
    "The quick brown fox jumps over the lazy dog.",
]


# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'sites': 'list the hook sites a model offers',
    'trace': 'capture sites over prompts into an activation store',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    sites = sub.add_parser("sites", parents=[common], help=COMMANDS["sites"])
    sites.add_argument("--layer", type=int, default=None, help="only this layer's sites")
    sites.set_defaults(func=cmd_sites)

    trace = sub.add_parser("trace", parents=[common], help=COMMANDS["trace"])
    trace.add_argument("--prompts", default=None, help="prompt file: one per line, or JSONL with 'text'")
    trace.add_argument("--sites", default="blocks.*.hook_resid_post",
                       help="comma-separated site names or globs (default: blocks.*.hook_resid_post)")
    trace.add_argument("--positions", default="all",
                       help="'all', 'last' or comma-separated ints (negative from the end) (default: all)")
    trace.add_argument("--resume", action="store_true",
                       help="continue an interrupted trace in --out (same prompts, sites, batch size, model, "
                            "dtype, --bos and --chat template: a store made otherwise is refused, naming what "
                            "differs); without it an existing store there is refused")
    trace.set_defaults(func=cmd_trace)


def cmd_sites(args) -> int:
    model = load_model(args)
    if args.layer is not None and not 0 <= args.layer < model.n_layers:
        raise ValueError(f"--layer {args.layer} out of range: model has layers 0..{model.n_layers - 1}")
    names = model.sites(args.layer)
    if args.json:
        print(json.dumps([{"site": n, "layer": model.site(n).layer, "module": model.site(n).module_path,
                           "io": model.site(n).io, "editable": model.site(n).editable} for n in names]))
        return 0
    for name in names:
        site = model.site(name)
        print(f"{name:<40} {site.io:<12} {site.module_path}")
    return 0


def parse_positions(text: str):
    if text in ("all", "last"):
        return text
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--positions must be 'all', 'last' or comma-separated ints, got '{text}'") from None


def expand_sites(model, spec: str) -> list[str]:
    """Comma-separated names or globs -> site names in forward order."""
    available = model.sites()
    chosen: list[str] = []
    for pattern in (p.strip() for p in spec.split(",") if p.strip()):
        matches = fnmatch.filter(available, pattern) if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise ValueError(f"no site matches '{pattern}' (see `steerlens sites`)")
        for name in matches:
            model.site(name)
        chosen.extend(matches)
    return list(dict.fromkeys(chosen))


def cmd_trace(args) -> int:
    """Capture into a store; under torchrun / accelerate launch each process takes its share
    of the batches and rank 0 prints the summary (see interp.engine.distributed)."""
    from ..engine.distributed import barrier, check_enough_items, join, launched_ranks, leave, rank_device

    prompts = read_prompt_file(args.prompts, DEFAULT_TRACE_PROMPTS)
    positions = parse_positions(args.positions)
    size = batch_size(args)
    ranks = launched_ranks()
    check_enough_items(len(prompts), ranks)  # every rank fails alike, before joining the group
    if ranks.distributed and not args.out:
        raise ValueError("a multi-process trace needs --out: one store directory every process can reach")
    path = out_dir(args, "trace")
    if (path / "index.json").is_file() and not args.resume:
        raise ValueError(f"{path} already holds a store; pass --resume to continue it, or choose another --out")
    join(ranks)
    try:
        barrier(ranks)  # nobody writes before every rank has checked the directory
        args.device = rank_device(args.device, ranks)
        return _trace(args, prompts, positions, size, path, ranks)
    finally:
        leave(ranks)


def _trace(args, prompts, positions, size, path, ranks) -> int:
    from ..engine.store import capture_to_store

    start = time.perf_counter()
    model = load_model(args)
    loaded = time.perf_counter() - start
    sites = expand_sites(model, args.sites)
    start = time.perf_counter()
    store = capture_to_store(model, prompts, sites, path, positions, chat=args.chat, batch_size=size,
                             progress=show_progress(args), ranks=ranks)
    captured = time.perf_counter() - start
    if not ranks.is_main:
        return 0
    shapes, rows = {}, 0
    for shard in store.shards():
        rows += int(shard["prompt_index"].shape[0])
        for name in sites:
            if name in shard:
                shapes[name] = list(shard[name].shape[1:])
    first_prompt = model.tokenize(prompts[:1], chat=args.chat)
    summary = {
        "model": model.info.get("spec"), "family": model.spec.family, "layers": model.n_layers,
        "d_model": model.d_model, "heads": model.n_heads, "kv_heads": model.n_kv_heads,
        "device": str(model.device), "dtype": str(model.dtype).replace("torch.", ""),
        "bos_added": first_prompt.bos_added, "chat": args.chat,
        "prompts": len(prompts), "rows": rows, "sites": len(sites), "row_shape": shapes,
        "load_s": round(loaded, 2), "capture_s": round(captured, 2), "store": str(path),
        "processes": ranks.world,
    }
    print_summary(summary, args, None)
    return 0
