"""Throughput of the heavy passes (tokens/s) at several batch sizes, against a plain forward.

    python tests/benchmarks/bench_throughput.py --device cuda --out bench.json      # GPU machine
    python tests/benchmarks/bench_throughput.py --tiny --batch-sizes 1,4 --seq 16   # CPU smoke run

Measured in the same run, per batch size (random token ids, `--seq` tokens per row, no
padding): the plain HF forward (the baseline), `run_with_cache` of every layer's
`hook_resid_post` kept on the device and copied to the CPU store path (`to_cpu=True`, float32:
pinned, non-blocking copies), greedy generation of `--new-tokens` tokens without edits and
with an `Add` steering edit on the middle layer at every step. Tokens/s count prompt tokens
for forwards and new tokens for generation; ratios are against the plain forward (captures)
and the unsteered generation (steering) of the same batch size. The model is the offline
Qwen 0.5B zoo model (`--model`), its bf16 default on GPUs; `--tiny` uses a tiny random
Qwen2 instead (a smoke test of the script, numbers meaningless). The interchange (routing)
screen is not on this branch and is not measured. Results go to `--out` as JSON; asserts
nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, repeats: int) -> float:
    fn()  # warm-up (kernels, allocator, caches)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _model(args):
    if args.tiny:
        from tiny import tiny_model

        model = tiny_model("qwen2", attn="sdpa")
        if args.device:
            model.hf.to(args.device)
        return model, "tiny random qwen2"
    import interp

    return interp.load(args.model, device=args.device, dtype=args.dtype), args.model


def measure(model, size: int, args, sites: list[str], steer) -> dict:
    """Median seconds of each pass at one batch size, as tokens/s and ratios (see the docstring)."""
    from interp.engine.model import TokenBatch

    device = model.device
    ids = torch.randint(3, min(model.d_vocab, 10_000), (size, args.seq))
    batch = TokenBatch(ids, torch.ones_like(ids), ["x"] * size)
    inputs = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}

    @torch.inference_mode()
    def plain():
        model.hf(**inputs, use_cache=False)

    def generate(edits):
        return lambda: model.generate(batch, edits=edits, max_new_tokens=args.new_tokens, stop_at_eos=False)

    seconds = {
        "forward": _time(plain, device, args.repeats),
        "capture_on_device": _time(lambda: model.run_with_cache(batch, sites, logits=None, batch_size=size),
                                   device, args.repeats),
        "capture_to_cpu": _time(lambda: model.run_with_cache(batch, sites, logits=None, to_cpu=True,
                                                             dtype=torch.float32, batch_size=size),
                                device, args.repeats),
        "generate": _time(generate([]), device, args.repeats),
        "generate_steered": _time(generate(steer), device, args.repeats),
    }
    prompt_tokens, new_tokens = size * args.seq, size * args.new_tokens
    row = {"batch_size": size}
    for name, value in seconds.items():
        row[f"{name}_tokens_per_s"] = round((new_tokens if name.startswith("generate") else prompt_tokens) / value, 1)
    row["capture_on_device_ratio"] = round(seconds["capture_on_device"] / seconds["forward"], 3)
    row["capture_to_cpu_ratio"] = round(seconds["capture_to_cpu"] / seconds["forward"], 3)
    row["steered_generation_ratio"] = round(seconds["generate_steered"] / seconds["generate"], 3)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--tiny", action="store_true", help="tiny random model: check the script runs")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--seq", type=int, default=128, help="prompt tokens per row")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench_throughput.json")
    args = parser.parse_args()
    from interp.engine.edits import Add

    torch.manual_seed(0)
    model, source = _model(args)
    device = model.device
    sites = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    steer = [Add(f"blocks.{model.n_layers // 2}.hook_resid_post", vector=torch.randn(model.d_model), alpha=2.0,
                 positions="last+generated")]
    rows = []
    for size in (int(s) for s in args.batch_sizes.split(",")):
        row = measure(model, size, args, sites, steer)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {
        "model": source, "device": str(device), "dtype": str(model.dtype).removeprefix("torch."),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "seq": args.seq, "new_tokens": args.new_tokens, "repeats": args.repeats,
        "sites_captured": len(sites), "interchange_screen": "not measured (no routing screen on this branch)",
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
