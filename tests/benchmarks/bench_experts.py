"""Expert toggles: cost of a toggled forward pass and of the batched causal screen.

    python tests/benchmarks/bench_experts.py [--candidates 16] [--prompts 8] [--repeats 3]

A randomly initialised Qwen3-MoE (8 layers, d=256, 32 experts, top-4; no MoE checkpoint
can be downloaded here) on CPU. Measured in the same run: a plain forward pass, the same
pass with 8 experts switched off (re-selection in every MoE layer), and the single-expert
screen of `--candidates` candidates over `--prompts` prompts run batched (one row per
(candidate, prompt), `interp.experts.behaviour.measure`) against one pass per candidate.
Prints ratios; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def _model():
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    from interp.engine.model import Model

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tiny import tiny_tokenizer

    torch.manual_seed(0)
    config = Qwen3MoeConfig(vocab_size=128, hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
                            num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, head_dim=32,
                            num_experts=32, num_experts_per_tok=4, norm_topk_prob=True, decoder_sparse_step=1,
                            mlp_only_layers=[], pad_token_id=0, bos_token_id=1, eos_token_id=2)
    hf = Qwen3MoeForCausalLM(config).eval()
    with torch.no_grad():
        for module in hf.modules():
            if type(module).__name__.endswith("Experts"):
                for p in module.parameters():
                    p.normal_(0, 0.02)
    return Model(hf, tiny_tokenizer(), info={"spec": "random Qwen3-MoE"})


def _time(fn, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from interp.engine.experts import expert_toggles
    from interp.experts.behaviour import Behaviour, measure

    model = _model()
    prompts = [f"prompt number {i} with some words" for i in range(args.prompts)]
    off = expert_toggles(model, off=[(layer, 3) for layer in range(8)])
    plain = _time(lambda: model.forward(prompts), args.repeats)
    toggled = _time(lambda: model.forward(prompts, edits=off), args.repeats)
    behaviour = Behaviour("prob", "a")
    toggles = [([(c % 8, c // 8)], ()) for c in range(args.candidates)]
    batched = _time(lambda: measure(model, prompts, behaviour, toggles, rows_per_batch=1024), args.repeats)
    looped = _time(lambda: [measure(model, prompts, behaviour, [t]) for t in toggles], args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.prompts}")
    print(f"plain forward                  {plain * 1e3:8.1f} ms   1.00x")
    print(f"8 experts off (all layers)     {toggled * 1e3:8.1f} ms   {toggled / plain:.2f}x")
    print(f"screen, {args.candidates} candidates batched  {batched * 1e3:8.1f} ms   {batched / plain:.2f}x")
    print(f"screen, one pass per candidate {looped * 1e3:8.1f} ms   {looped / plain:.2f}x "
          f"(batched is {looped / batched:.2f}x faster)")


if __name__ == "__main__":
    main()
