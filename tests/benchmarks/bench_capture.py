"""Capture overhead on SmolLM2-135M (batch 8 x 128), as ratios to a plain forward pass.

    python tests/benchmarks/bench_capture.py [--model ALIAS] [--repeats 5]

Measured in the same run: plain forward, HF `output_hidden_states=True`, steerlens capture
of every `hook_resid_post`, steerlens capture of every `attn.hook_z`, and an nnsight trace
saving the same residuals. Uses the zoo model when installed; otherwise a randomly
initialised model of the same architecture (same compute), and says so. Prints ratios;
asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def _model(alias: str):
    import interp

    try:
        return interp.load(alias, device="cpu", dtype="float32"), alias
    except Exception as err:  # fall back to the same architecture, random weights
        from transformers import LlamaConfig, LlamaForCausalLM

        from interp.engine.model import Model

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tiny import tiny_tokenizer

        config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                             num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
        hf = LlamaForCausalLM(config).eval()
        return Model(hf, tiny_tokenizer(), info={"spec": "random SmolLM2-shaped"}), f"random init ({err})"


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    model, source = _model(args.model)
    ids = torch.randint(100, 10000, (args.batch, args.seq))
    mask = torch.ones_like(ids)
    inputs = {"input_ids": ids, "attention_mask": mask}
    resid = [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    z_sites = [f"blocks.{layer}.attn.hook_z" for layer in range(model.n_layers)]

    @torch.inference_mode()
    def plain():
        model.hf(**inputs, use_cache=False)

    @torch.inference_mode()
    def hidden_states():
        model.hf(**inputs, use_cache=False, output_hidden_states=True)

    def capture(sites):
        store = {}

        def grab(name):
            def fn(x, hook):
                store[name] = x.detach()
            return fn

        @torch.inference_mode()
        def run():
            with model.hooks([(name, grab(name)) for name in sites]):
                model.hf(**inputs, use_cache=False)
        return run

    lm = model.nnsight()

    def nnsight_trace():
        with torch.inference_mode(), lm.trace(inputs):
            for name in resid:
                envoy = lm
                for part in model.site(name).module_path.split("."):
                    envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
                envoy.output.save()

    base = _time(plain, args.repeats)
    rows = [
        ("plain forward", base),
        ("HF output_hidden_states", _time(hidden_states, args.repeats)),
        ("steerlens: all hook_resid_post", _time(capture(resid), args.repeats)),
        ("steerlens: all attn.hook_z", _time(capture(z_sites), args.repeats)),
        ("nnsight: all decoder-layer outputs", _time(nnsight_trace, args.repeats)),
    ]
    print(f"model: {source}; batch {args.batch} x {args.seq}; CPU threads {torch.get_num_threads()}; "
          f"median of {args.repeats}")
    for name, seconds in rows:
        print(f"{name:<38} {seconds * 1000:8.1f} ms   {seconds / base:5.3f}x")


if __name__ == "__main__":
    main()
