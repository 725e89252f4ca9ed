"""Passes after the prompts' shared prefix vs whole passes, on the routing steps' real prompts.

    python tests/benchmarks/bench_shared_prefix.py [--model ALIAS] [--n 32] [--threads 2] [--json FILE]

On the shipped refusal pairs (chat template on), in one run and on the same prompts:
- head DLA at the last prompt token (`interp.dla.decompose.head_dla`, the DLA screen, the
  knockout and the cipher contrast), on plain harmful prompts and on their cipher
  encodings (`interp.routing.cipher.cipher_prompt`: a long shared preamble), whole passes vs
  `shared_prefix=True`;
- the knockout's re-measure of one knocked-out head from the layer before it
  (`StartAt` + `Zero`), whole vs after the prefix.
Prints the shared prefix length, the mean prompt length, process CPU seconds of each
variant, the ratio, and the largest difference between the two (they must agree to float
rounding; asserted at 1e-4 logit units). Timings are not tests: nothing asserts a speed.

Measured 2026-12-01, Qwen2.5-Coder-0.5B-Instruct, n=16, 1 thread on a shared 2-core CPU:
plain prompts (prefix 24 of 39.4 tokens) 8.9 -> 5.7 CPU s (1.57x); cipher prompts (prefix
130 of 158 tokens) 33.2 -> 8.7 (3.81x); knockout of L12H0 from L11 4.7 -> 2.8 (1.68x);
largest difference 5.1e-5 logit units.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--n", type=int, default=32, help="harmful prompts of the shipped pairs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import interp
    from interp.dla.decompose import head_dla, head_sites
    from interp.dla.directions import vector_direction
    from interp.engine.edits import Zero
    from interp.engine.resume import StartAt
    from interp.engine.shared_prefix import common_prefix_length
    from interp.routing.cipher import cipher_prompt
    from interp.routing.pairs import load_pairs

    model = interp.load(args.model, device="cpu", dtype="float32")
    harmful = [p.harmful for p in load_pairs(n=args.n)]
    direction = vector_direction(model, torch.randn(model.d_model, generator=torch.Generator().manual_seed(0)))
    rows = []

    def compare(label, prompts, **kwargs):
        batch = model.tokenize(prompts, chat=True)
        whole, w_wall, w_cpu = timed(lambda: head_dla(model, batch, direction, **kwargs))
        shared, s_wall, s_cpu = timed(lambda: head_dla(model, batch, direction, shared_prefix=True, **kwargs))
        diff = float((whole - shared).abs().max())
        assert diff < 1e-4, f"{label}: shared prefix differs from whole passes by {diff}"
        row = {"case": label, "prompts": len(prompts), "shared_prefix": common_prefix_length(batch),
               "mean_tokens": float(batch.attention_mask.sum(-1).float().mean()), "whole_cpu_s": w_cpu,
               "shared_cpu_s": s_cpu, "whole_wall_s": w_wall, "shared_wall_s": s_wall,
               "speedup_cpu": w_cpu / s_cpu, "max_abs_diff": diff}
        rows.append(row)
        print(f"{label:<28} prefix {row['shared_prefix']:>3} of {row['mean_tokens']:6.1f} tokens  "
              f"whole {w_cpu:7.1f} CPU s  shared {s_cpu:7.1f} CPU s  {row['speedup_cpu']:4.2f}x  "
              f"max |diff| {diff:.1e}", flush=True)

    compare("head DLA, plain harmful", harmful)
    compare("head DLA, cipher harmful", [cipher_prompt(t) for t in harmful])
    layer = model.n_layers // 2
    batch = model.tokenize(harmful, chat=True)
    _, clean = model.run_with_cache(batch, [s for s in head_sites(model)
                                     if s.startswith("blocks.") and int(s.split(".")[1]) < layer - 1]
                                    + [f"blocks.{layer - 1}.hook_resid_pre"], positions="all", logits=None)
    compare(f"knockout L{layer}H0 from L{layer - 1}", harmful, edits=[Zero(f"blocks.{layer}.attn.hook_z", heads=[0])],
            start=StartAt(layer - 1, clean))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "threads": torch.get_num_threads(),
                                               "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
