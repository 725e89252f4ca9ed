"""`steerlens generate`: generation with steering vectors, ablations and AUSteer masks.

    steerlens generate --model qwen2.5-coder-0.5b-instruct --chat --prompt "How do I bake bread?" \\
        --vector refusal.safetensors@12:4 --compare
    steerlens generate --prompt "Tom has 3 apples" --austeer au.safetensors:8 --json

Every way of editing a generation is a `GenerateOption`: it adds its arguments, reads and
checks its files before the model loads, and turns them into engine edits after. The
built-in ones are steering vectors (`--vector FILE[@LAYERS][:ALPHA]`, repeatable), AUSteer
masks (`--austeer FILE[:ALPHA]`) and directional ablation (`--ablate FILE[@LAYER]`); later
features (MoE expert toggles, ...) call `register_generate_option` from a module that is
imported before this one registers its commands (e.g. their own `interp/<package>/cli.py`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from interp.cli.common import load_model, read_prompt_file
from interp.engine.sampling import SAMPLING, describe

from .apply import POSITIONS, VectorUse, ablation_edits, parse_alpha, parse_layers, parse_vector_spec, steering_edits
from .vectors import SteeringVector


@dataclass
class GenerateOption:
    """An option group of `steerlens generate` that produces engine edits."""

    name: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    prepare: Callable[[argparse.Namespace], object]  # read + validate inputs, before the model loads
    edits: Callable[[object, object, argparse.Namespace], list]  # (model, prepared, args) -> edits


GENERATE_OPTIONS: list[GenerateOption] = []


def register_generate_option(option: GenerateOption) -> None:
    if any(o.name == option.name for o in GENERATE_OPTIONS):
        raise ValueError(f"generate option '{option.name}' is registered twice")
    GENERATE_OPTIONS.append(option)


# ---- built-in option: vectors, AUSteer masks, ablation --------------------------------
def _vector_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("steering")
    group.add_argument("--vector", action="append", default=[], metavar="FILE[@LAYERS][:ALPHA]",
                       help="add a steering vector (repeatable); LAYERS like 8,10 or 8-12, ALPHA a number (default 1)")
    group.add_argument("--austeer", action="append", default=[], metavar="FILE[:ALPHA]",
                       help="AUSteer mask from `steerlens austeer fit` (default alpha 8)")
    group.add_argument("--ablate", action="append", default=[], metavar="FILE[@LAYER]",
                       help="project this vector's direction out of the residual stream at every layer")
    group.add_argument("--positions", default="all", choices=POSITIONS,
                       help="where vectors and masks act: all (every token), prompt (the prompt only), "
                            "generated (tokens fed back after being generated: the FIRST new token is not "
                            "steered, it is predicted at the last prompt token), last+generated (the last "
                            "prompt token and every generated one: steers from the first new token on), "
                            "last (the last prompt token only) (default: all)")
    group.add_argument("--relative", action="store_true",
                       help="alpha is a fraction of the residual norm at each position (additive vectors)")
    group.add_argument("--allow-model-mismatch", action="store_true",
                       help="use vectors made on another checkpoint of the same shape")


def _load_vector(path) -> SteeringVector:
    return SteeringVector.load(path)


def _prepare_vectors(args: argparse.Namespace) -> dict:
    uses, ablations = [], []
    for spec in args.vector:
        path, layers, alpha = parse_vector_spec(spec)
        vector = _load_vector(path)
        uses.append(VectorUse(vector, alpha=alpha, layers=layers, positions=args.positions, relative=args.relative))
    for spec in args.austeer:
        path, layers, alpha = parse_vector_spec(spec, default_alpha=8.0)
        vector = _load_vector(path)
        if vector.kind != "scale":
            raise ValueError(f"{path}: --austeer needs an AUSteer mask (kind 'scale'); this is a '{vector.kind}' "
                             "vector, pass it with --vector")
        uses.append(VectorUse(vector, alpha=alpha, layers=layers, positions=args.positions))
    for spec in args.ablate:
        path, _, rest = spec.partition("@")
        layer = parse_layers(rest)[0] if rest else None
        if rest and len(parse_layers(rest)) != 1:
            raise ValueError(f"--ablate takes one layer's direction (FILE@LAYER), got '{rest}'")
        ablations.append((_load_vector(path), layer))
    for use in uses:  # layer range errors before the model loads, where the vector knows the model
        n_layers = use.vector.model.get("n_layers")
        bad = [layer for layer in use.chosen_layers() if n_layers is not None and layer >= n_layers]
        if bad:
            raise ValueError(f"layer {bad[0]} out of range: the vector's model has layers 0..{n_layers - 1}")
    return {"uses": uses, "ablations": ablations}


def _vector_edits(model, prepared: dict, args: argparse.Namespace) -> list:
    allow = args.allow_model_mismatch
    edits = steering_edits(model, prepared["uses"], allow_other_model=allow)
    for vector, layer in prepared["ablations"]:
        edits += ablation_edits(model, vector, layer=layer, positions=args.positions, allow_other_model=allow)
    return edits


register_generate_option(GenerateOption("vectors", _vector_arguments, _prepare_vectors, _vector_edits))


# ---- the command ------------------------------------------------------------------------
# read without importing this module (see interp.cli): the commands it adds
COMMANDS = {
    'generate': 'generate text, optionally steered',
}


def register(sub, common: argparse.ArgumentParser) -> None:
    gen = sub.add_parser("generate", parents=[common], help=COMMANDS["generate"],
                         description="Generate with steering vectors, AUSteer masks and ablations active at every "
                                     "step (KV cache on). Streams tokens for one prompt.")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", default=None, help="one prompt")
    source.add_argument("--prompts", default=None, help="prompt file: one per line, or JSONL with 'text'")
    gen.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate (default: 64)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default: 0)")
    gen.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (default: none, the whole "
                     "distribution)")
    gen.add_argument("--sampling", choices=SAMPLING, default="neutral",
                     help="neutral: plain softmax(logits / temperature), top-k, min-p, penalties and token bans off; "
                          "model: the checkpoint's generation_config.json decides every knob not given here "
                          "(default: neutral)")
    gen.add_argument("--compare", action="store_true", help="also generate unsteered (same seed), side by side")
    for option in GENERATE_OPTIONS:
        option.add_arguments(gen)
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    if args.prompt is not None and not args.prompt:
        raise ValueError("--prompt is empty; pass some text")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.temperature < 0 or (args.top_p is not None and not 0 < args.top_p <= 1):
        raise ValueError("--temperature must be >= 0 and --top-p in (0, 1]")
    prompts = [args.prompt] if args.prompt is not None else read_prompt_file(args.prompts)
    prepared = [(option, option.prepare(args)) for option in GENERATE_OPTIONS]
    model = load_model(args)
    edits = [edit for option, state in prepared for edit in option.edits(model, state, args)]
    settings = dict(chat=args.chat, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                    top_p=args.top_p, sampling=args.sampling)
    how = describe(args.sampling, args.temperature, args.top_p, model.hf.generation_config)
    stream = len(prompts) == 1 and not args.json and not args.compare
    unsteered = None
    if args.compare:
        unsteered = model.generate(prompts, seed=args.seed, **settings)
    streamer = _streamer(model) if stream else None
    steered = model.generate(prompts, edits=edits, seed=args.seed, streamer=streamer, **settings)
    if stream:
        print()
    if args.json:
        records = [{"prompt": p, "steered": s, **({"unsteered": unsteered.texts[i]} if unsteered else {}),
                    "tokens_per_s": round(steered.tokens_per_s, 2), "sampling": how} for i, (p, s) in enumerate(zip(prompts, steered.texts))]
        print(json.dumps(records[0] if args.prompt is not None else records))
    elif args.compare:
        for prompt, plain, steer in zip(prompts, unsteered.texts, steered.texts):
            print(side_by_side(prompt, plain, steer))
    elif not stream:
        for prompt, text in zip(prompts, steered.texts):
            print(f"### {prompt}\n{text}\n")
    if not args.json:
        print(f"[{len(edits)} edits, {steered.tokens_per_s:.1f} tokens/s; {how}]", file=sys.stderr)
    return 0


def _streamer(model):
    from transformers import TextStreamer

    return TextStreamer(model.tokenizer, skip_prompt=True, skip_special_tokens=True)


def side_by_side(prompt: str, left: str, right: str, width: int | None = None) -> str:
    """Two wrapped columns under the prompt: unsteered | steered."""
    width = width or shutil.get_terminal_size((100, 20)).columns
    column = max(20, (width - 3) // 2)
    lines_left = textwrap.wrap(left.strip(), column) or [""]
    lines_right = textwrap.wrap(right.strip(), column) or [""]
    rows = [f"### {prompt}", f"{'unsteered':<{column}} | steered", f"{'-' * column}-+-{'-' * column}"]
    for i in range(max(len(lines_left), len(lines_right))):
        a = lines_left[i] if i < len(lines_left) else ""
        b = lines_right[i] if i < len(lines_right) else ""
        rows.append(f"{a:<{column}} | {b}")
    return "\n".join(rows) + "\n"


__all__ = ["GENERATE_OPTIONS", "GenerateOption", "cmd_generate", "parse_alpha", "register",
           "register_generate_option", "side_by_side"]
