"""Steer generation with a behaviour vector at the last token of each step, and measure the
dose-response (RISE, arXiv 2512.23988, section 5).

The edit acts on the residual after the vector's layer at every token that closes a step
(`interp.engine.token_edits.OnTokens` on the tokens whose text contains the separator, and
at the last token of the separator where the tokenizer spells it in several tokens, as
SmolLM2 does with "\\n\\n" before most words; a tokenizer with neither falls back to tokens
ending with the separator's last character). That is the token `saes.traces` takes as a
step's end: the one holding the separator's last character. Modes:

- "project": h' = h - alpha w (w . h), w the unit behaviour vector. alpha > 0 removes the
  behaviour direction (alpha = 1 exactly), alpha < 0 amplifies it. The paper's sign
  convention is inconsistent; read the direction off the measured dose-response.
- "add": h' = h + alpha ||h|| w (alpha as a fraction of the residual norm).

alpha = 0 is exactly the unsteered generation in both modes. For each alpha the sweep
generates greedy traces for the same problems, splits and labels their steps, and reports
behaviour steps per trace, steps per trace and answer accuracy.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from interp.engine.edits import Add
from interp.engine.token_edits import OnTokens, Project
from interp.runs.config import option
from interp.runs.results import RunMeta
from steering.vectors import SteeringVector

from .collect import COLLECT, CollectConfig, build_traces, resid_site
from .labels import Judge, KeywordLabeller
from .result import RiseSteer
from .traces import Problem, make_problems, read_traces_jsonl

MODES = ("project", "add")


@dataclass
class SteerConfig:
    behaviour: str = option("reflection", "behaviour whose vector (from `rise analyze`) steers")
    alphas: list[float] = option(default_factory=lambda: [-1.5, -1.0, 0.0, 1.0, 1.5], help="steering strengths")
    mode: str = option("project", "project: h - alpha w (w.h); add: h + alpha |h| w", choices=MODES)
    layer: int = option(-1, "layer of the vector (-1: the first layer that has one)")
    n: int = option(16, "generated problems to steer on (when no --problems file)")
    max_new_tokens: int = option(256, "tokens generated per trace")
    gen_batch: int = option(8, "traces generated per batch")

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got '{self.mode}'")
        if not self.alphas:
            raise ValueError("--alphas needs at least one value")


AROUND = (("x", "4.", "64", ")", " so"), ("So", "The", " The", "1", "Step", ""))  # text on either side of a separator


def separator_tokens(tokenizer, separator: str) -> tuple[list[int], list[list[int]], str]:
    """(ids of tokens that contain the separator, id sequences that spell it token by token,
    "separator" | "last character") (see module doc).

    The sequences are read off the tokenizer's own offsets for the separator between a few
    typical neighbours ("64" + "\\n\\n" + "So"): SmolLM2, for one, writes "\\n\\n" as one
    token or as "\\n" twice depending on what follows. Raises ValueError when neither exists
    and no token ends with the separator's last character."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    texts = [tokenizer.convert_tokens_to_string([p]) if p is not None else "" for p in pieces]
    ids = [i for i, t in enumerate(texts) if separator in t]
    sequences: list[list[int]] = []
    for before in AROUND[0]:
        for after in AROUND[1]:
            enc = tokenizer(before + separator + after, add_special_tokens=False, return_offsets_mapping=True)
            start, end = len(before), len(before) + len(separator)
            inside = [(i, a, b) for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]) if start <= a < b <= end]
            spans = [(a, b) for _, a, b in inside]
            covers = spans and spans[0][0] == start and spans[-1][1] == end and all(
                b == a2 for (_, b), (a2, _) in zip(spans, spans[1:]))
            if covers and len(inside) > 1 and [i for i, _, _ in inside] not in sequences:
                sequences.append([i for i, _, _ in inside])
    if ids or sequences:
        return ids, sequences, "separator"
    ids = [i for i, t in enumerate(texts) if t.endswith(separator[-1])]
    if not ids:
        raise ValueError(f"the tokenizer has no token containing {separator!r} or ending with {separator[-1]!r}; "
                         "steering at step ends cannot find the steps")
    return ids, [], "last character"


def step_edit(vector, layer: int, alpha: float, mode: str, token_ids: list[int], sequences=()):
    """The engine edit steering at step-end tokens: those in `token_ids` and the last token
    of each of `sequences` (see module doc)."""
    site = resid_site(layer)
    w = vector / vector.norm().clamp_min(1e-12)
    inner = Project(site, direction=w, alpha=alpha) if mode == "project" else Add(site, vector=w, alpha=alpha,
                                                                                   relative=True)
    return OnTokens(site, edit=inner, token_ids=token_ids, sequences=sequences)


def steer(model, run: str | Path, config: SteerConfig, *, problems_file: str | None = None, judge: Judge | None = None,
          seed: int = 0, progress: bool = True) -> RiseSteer:
    """Dose-response of `config.behaviour` steering (see module doc). Raises ValueError when
    the run has no vector for the behaviour, or it does not fit `model`."""
    config.validate()
    run = Path(run)
    if not (run / COLLECT).is_file():
        raise ValueError(f"{run} is not a RISE run (no {COLLECT})")
    facts = json.loads((run / COLLECT).read_text())
    path, layer = _vector_file(run, config)
    vector = SteeringVector.load(path)
    vector.check_model(model)
    problems = ([Problem(q, a) for q, _, a in read_traces_jsonl(problems_file)] if problems_file
                else make_problems(config.n, seed + 1))
    separator = facts["config"]["separator"]
    token_ids, sequences, trigger = separator_tokens(model.tokenizer, separator)
    gen = CollectConfig(layers=[layer], separator=separator, max_new_tokens=config.max_new_tokens,
                        gen_batch=config.gen_batch)
    judge = judge or KeywordLabeller()
    meta = RunMeta(model=dict(facts["model"]), config=config.__dict__ | {"trigger": trigger}, seed=seed)
    rows, samples = [], {}
    for alpha in config.alphas:
        edit = step_edit(vector.vectors[layer], layer, alpha, config.mode, token_ids, sequences)
        with meta.timed("generate"):
            traces = build_traces(_Steered(model, [edit]), problems, [None] * len(problems), gen, facts["chat"],
                                  progress)
        labels = Counter()
        for t in traces:
            labels.update(judge(s.text, t.question) for s in t.steps)
        n = len(traces)
        scored = [t.correct for t in traces if t.correct is not None]
        rows.append({"alpha": alpha, "behaviour_steps": labels[config.behaviour] / n,
                     "steps_by_label": {k: v / n for k, v in labels.items()},
                     "mean_steps": sum(len(t.steps) for t in traces) / n,
                     "accuracy": sum(scored) / len(scored) if scored else None, "traces": n})
        samples[str(alpha)] = [t.response for t in traces[:2]]
    return RiseSteer(config.behaviour, layer, config.mode, list(config.alphas), rows, samples, str(path), meta=meta)


@dataclass
class _Steered:
    """The model as `build_traces` sees it, generating with `edits` on."""

    model: object
    edits: list = field(default_factory=list)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, prompts, **kwargs):
        return self.model.generate(prompts, edits=self.edits, **kwargs)


def _vector_file(run: Path, config: SteerConfig) -> tuple[Path, int]:
    found = sorted((run / "vectors").glob(f"{config.behaviour}_layer*.safetensors"))
    layers = {int(p.stem.rsplit("layer", 1)[1]): p for p in found}
    if config.layer >= 0:
        if config.layer not in layers:
            raise ValueError(f"no {config.behaviour} vector for layer {config.layer} in {run / 'vectors'}; "
                             f"it has layers {sorted(layers) or 'none'} (run `rise analyze` first)")
        return layers[config.layer], config.layer
    if not layers:
        have = sorted({p.stem.rsplit('_layer', 1)[0] for p in (run / "vectors").glob("*.safetensors")})
        raise ValueError(f"no '{config.behaviour}' vector in {run / 'vectors'} (behaviours with vectors: "
                         f"{', '.join(have) or 'none'}); run `rise analyze --run {run}` first, or pick another")
    layer = min(layers)
    return layers[layer], layer
