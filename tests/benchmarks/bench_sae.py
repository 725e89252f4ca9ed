"""Capture with one SAE attached, as a ratio to a plain forward: steerlens vs sae-lens.

    python tests/benchmarks/bench_sae.py [--layers 6] [--d-model 512] [--d-sae 4096] [--batch 8] [--seq 128]
                                         [--repeats 5] [--threads 1] [--device cpu] [--json FILE]

One GPT-2-shaped model with random weights (HF `GPT2LMHeadModel`; vocab 8192, d_mlp = 4 d_model)
and one standard SAE (random weights) on `blocks.{L//2}.hook_resid_post`. Each side runs the
same token batch:
- steerlens: `Model.forward` (plain) vs `run_with_cache([S.hook_sae_acts_post], logits="all")`
  with the SAE attached (error term on);
- sae-lens: `HookedSAETransformer` built from the same weights, `model(tokens)` (no SAE) vs
  `run_with_cache(tokens, names_filter=S.hook_sae_acts_post)` after `add_sae(sae, use_error_term=True)`.
Prints the median wall time of each (after one warm-up), the capture / plain ratio per side,
steerlens' capture of the bare site without an SAE (logits="all": what the engine's capture
itself costs over `forward`) and its SAE capture keeping only the last logits, and the
largest difference between the two sides' activations (asserted below 1e-3). Timings
are not tests: nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def median_time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers as T
    from sae_fixtures import random_sae
    from sae_lens import HookedSAETransformer
    from tiny import tiny_tokenizer
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

    from interp.engine.model import Model, TokenBatch

    torch.manual_seed(0)
    d, heads, vocab = args.d_model, max(1, args.d_model // 64), 8192
    hf_cfg = T.GPT2Config(n_layer=args.layers, n_embd=d, n_head=heads, n_inner=4 * d, vocab_size=vocab,
                          n_positions=max(256, args.seq), resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = T.GPT2LMHeadModel(hf_cfg).eval().to(args.device)
    model = Model(hf, tiny_tokenizer())
    site = f"blocks.{args.layers // 2}.hook_resid_post"
    name = f"{site}.hook_sae_acts_post"
    sae = random_sae(d, site, d_sae=args.d_sae).to(args.device)
    ids = torch.randint(3, vocab, (args.batch, args.seq))
    batch = TokenBatch(ids, torch.ones_like(ids), ["x"] * args.batch)
    tokens = ids.to(args.device)

    cfg = HookedTransformerConfig(n_layers=args.layers, d_model=d, n_heads=heads, d_head=d // heads, d_mlp=4 * d,
                                  d_vocab=vocab, n_ctx=hf_cfg.n_positions, act_fn="gelu_new", normalization_type="LN",
                                  eps=hf_cfg.layer_norm_epsilon, positional_embedding_type="standard",
                                  default_prepend_bos=False, device=args.device)
    tl = HookedSAETransformer(cfg)
    tl.load_state_dict(convert_gpt2_weights(hf, cfg), strict=False)
    tl.eval().to(args.device)

    with torch.inference_mode():
        ours_plain = median_time(lambda: model.forward(batch), args.repeats, args.device)
        ours_site = median_time(lambda: model.run_with_cache(batch, [site], logits="all"), args.repeats, args.device)
        model.attach_sae(sae)
        ours_capture = median_time(lambda: model.run_with_cache(batch, [name], logits="all"), args.repeats, args.device)
        ours_last = median_time(lambda: model.run_with_cache(batch, [name], logits="last"), args.repeats, args.device)
        theirs_plain = median_time(lambda: tl(tokens), args.repeats, args.device)
        tl.add_sae(sae, use_error_term=True)
        theirs_capture = median_time(lambda: tl.run_with_cache(tokens, names_filter=name), args.repeats, args.device)
        _, ours = model.run_with_cache(batch, [name], logits=None)
        _, theirs = tl.run_with_cache(tokens, names_filter=name)
    diff = float((ours[name].to(args.device) - theirs[name]).abs().max())
    assert diff < 1e-3, f"the two sides' activations differ by {diff}"
    numbers = {"device": args.device, "threads": torch.get_num_threads(), "layers": args.layers, "d_model": d,
               "d_sae": args.d_sae, "batch": args.batch, "seq": args.seq,
               "steerlens_plain_s": ours_plain, "steerlens_capture_s": ours_capture,
               "steerlens_ratio": ours_capture / ours_plain,
               "steerlens_site_no_sae_s": ours_site, "steerlens_site_no_sae_ratio": ours_site / ours_plain,
               "steerlens_capture_last_logits_s": ours_last, "steerlens_last_ratio": ours_last / ours_plain,
               "saelens_plain_s": theirs_plain, "saelens_capture_s": theirs_capture,
               "saelens_ratio": theirs_capture / theirs_plain, "max_act_diff": diff}
    for key, value in numbers.items():
        print(f"{key:>22}: {value:.4g}" if isinstance(value, float) else f"{key:>22}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
