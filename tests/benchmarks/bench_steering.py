"""Cost of steering during generation, as ratios to unsteered generation in the same run.

    python tests/benchmarks/bench_steering.py [--model ALIAS] [--tokens 48] [--batch 4] [--repeats 5]

Measured, interleaved round-robin so load changes hit every variant alike (median of
`--repeats` rounds, greedy, fixed length, KV cache on):
- steerlens `generate` without edits (the reference),
- one steering vector added at one layer's output (`Add` at blocks.{L/2}.hook_resid_post),
- an AUSteer mask (k = 32 coordinates of the MLP output spread over layers, `Scale` edits),
- nnsight `generate` without edits and with the same vector added at every step.
Uses the zoo model when installed, else a random model of the same shape (and says so).
Prints ratios; asserts nothing (timings are not tests). Target: steered / unsteered <= 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from steering import AUSteerScores, SteeringVector, VectorUse, select, steering_edits


def _model(alias: str):
    import interp

    try:
        return interp.load(alias, device="cpu", dtype="float32"), alias
    except Exception as err:  # same architecture, random weights
        from transformers import LlamaConfig, LlamaForCausalLM

        from interp.engine.model import Model
        from tiny import tiny_tokenizer

        config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                             num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
        return Model(LlamaForCausalLM(config).eval(), tiny_tokenizer(), info={"spec": "random"}), f"random init ({err})"


def nnsight_generate(lm, prompts, layer: int, vector: torch.Tensor | None, tokens: int):
    """nnsight generate, adding `vector` to one decoder layer's output at every step."""
    with lm.generate(prompts, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False) as tracer:
        if vector is not None:
            for _ in tracer.iter[0:tokens]:  # a bounded range: code after an open-ended loop never runs
                block = lm.model.layers[layer]
                output = block.output
                if isinstance(output, tuple):
                    block.output = (output[0] + vector, *output[1:])
                else:
                    block.output = output + vector
        ids = tracer.result.save()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-nnsight", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 is far steadier on a shared, oversubscribed CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, source = _model(args.model)
    prompts = ["The history of the city begins", "A good recipe for bread needs", "In the morning I like to",
               "The main idea of the theory is"][: args.batch]
    layer = model.n_layers // 2
    direction = torch.randn(model.d_model) * 2.0
    vector = SteeringVector.from_tensor(direction, layers=[layer], model=model)
    scores = AUSteerScores(torch.randn(model.n_layers, model.d_model).clamp(-1, 1),
                           torch.rand(model.n_layers, model.d_model), 0)
    mask = select(scores, 32, site="ffn", model=model)
    variants = {
        "unsteered": [],
        "vector": steering_edits(model, [VectorUse(vector, alpha=1.0)]),
        "austeer": steering_edits(model, [VectorUse(mask, alpha=8.0)]),
    }
    runs = {name: (lambda edits=edits: model.generate(prompts, edits=edits, max_new_tokens=args.tokens,
                                                        stop_at_eos=False)) for name, edits in variants.items()}
    if not args.no_nnsight:
        lm = model.nnsight()
        runs["nnsight unsteered"] = lambda: nnsight_generate(lm, prompts, layer, None, args.tokens)
        runs["nnsight vector"] = lambda: nnsight_generate(lm, prompts, layer, direction, args.tokens)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    if not args.no_nnsight:  # the two implementations of the edit must agree token for token
        same = torch.equal(runs["vector"]().sequences, nnsight_generate(lm, prompts, layer, direction, args.tokens).cpu())
        print(f"nnsight and steerlens steered tokens identical: {same}")
    n_tokens = args.tokens * len(prompts)
    print(f"model: {source}; {len(prompts)} prompts x {args.tokens} new tokens; {args.repeats} rounds; "
          f"threads={torch.get_num_threads()}")
    for name, seconds in median.items():
        reference = median["nnsight unsteered"] if name == "nnsight vector" else median["unsteered"]
        print(f"{name:<20} {n_tokens / seconds:8.1f} tokens/s   time ratio to its unsteered run: "
              f"{seconds / reference:.3f}")


if __name__ == "__main__":
    main()
