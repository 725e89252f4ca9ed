"""`experts_scan`: behaviour-specific MoE experts, found by association, ranked causally.

MoTE (arXiv 2502.11096, section 3) scores experts by how much more often the router picks
them on prompts that show a behaviour (fTRI); selection only shows correlation, since a
token-specific input changes routing in every layer. The scan therefore:

1. routes both prompt sets and scores every (layer, expert) (`association`);
2. switches each of the `candidates` best-associated experts off alone, one batch row per
   (candidate, target prompt), and measures the behaviour on the target prompts; with
   `force_on` it also forces each on alone over the other prompts;
3. ranks the candidates by causal effect = baseline - value with the expert off (positive:
   the expert drives the behaviour), keeping the association scores beside it;
4. evaluates baseline, the top-N off, N random experts off (several seeds; the candidates
   are excluded from the draw) and the top-N forced on (at most top_k per layer), on both
   prompt sets, plus perplexity on benign text when `perplexity_texts` is given.

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/experts.md.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..engine.experts import expert_toggles, experts_per_layer
from ..metrics.perplexity import perplexity
from ..metrics.refusal import classify_response
from ..runs.config import fit_option, option
from ..runs.results import RunMeta
from .association import associate, candidates, routing_counts, with_responses
from .behaviour import METRICS, Behaviour, measure
from .result import ExpertsResult


@dataclass
class ExpertsConfig:
    metric: str = option("refusal", "behaviour metric: refusal rate of greedy generations, "
                         "probability / argmax rate of --behaviour-token as the next token, or "
                         "logit_diff between --behaviour-token and --contrast-token", choices=METRICS)
    behaviour_token: str | None = option(None, "token whose next-token probability is the behaviour "
                                         "(with the default --metric refusal, a token switches it to prob)")
    contrast_token: str | None = option(None, "second token of --metric logit_diff (required with it, "
                                              "unused otherwise)")
    candidates: int = option(16, "best-associated experts tested causally, each alone")
    top_n: int = option(4, "experts switched off / forced on together in the evaluation")
    random_seeds: int = option(3, "random control draws of top-n experts switched off")
    score: str = option("ftri", "association score that picks candidates", choices=("ftri", "risk_diff"))
    permutations: int = option(1000, "label permutations for each expert's p-value")
    over_generated: bool = option(False, "count routing over each prompt's greedy response too "
                                  "(up to --max-new-tokens tokens), not only over the prompt")
    force_on: bool = option(True, "also force each candidate on alone over the other prompts")
    max_new_tokens: int = option(32, "tokens generated per prompt for --metric refusal")
    rows_per_batch: int = option(64, "batch rows per pass of the causal screen")
    seed: int = option(0, "seed of the permutations and the random control")

    def validate(self) -> None:
        """ValueError naming the flag of the first count below 1 (checked before loading)."""
        for name in ("candidates", "top_n", "random_seeds", "permutations", "max_new_tokens", "rows_per_batch"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.top_n > self.candidates:
            raise ValueError(f"--top-n {self.top_n} is more than --candidates {self.candidates}: the top-n experts "
                             f"are the best of the candidates; pass --candidates {self.top_n} or a smaller --top-n")


def experts_scan(model, target: Sequence[str], other: Sequence[str], config: ExpertsConfig | None = None,
                 *, chat: bool = False, perplexity_texts: Sequence[str] | None = None,
                 batch_size="auto", progress: bool = False) -> ExpertsResult:
    """Scan `model` for experts of the behaviour the `target` prompts show and `other` lack.

    Raises ValueError before any work for a dense model, an empty prompt set, a metric
    without its token or a token that is not one token.
    """
    config = config or ExpertsConfig()
    target, other = list(target), list(other)
    shape = experts_per_layer(model) if model.spec.moe else {}
    if not shape:
        raise ValueError(f"'{model.info.get('spec', model.spec.family)}' is a dense {model.spec.family} model; "
                         "experts scan needs a mixture-of-experts model (Mixtral, Qwen2-MoE, Qwen3-MoE, "
                         "OLMoE, DeepSeek-V3, GPT-OSS), e.g. --model Qwen/Qwen3-30B-A3B")
    if not target or not other:
        raise ValueError(f"experts scan needs target and other prompts; got {len(target)} target and "
                         f"{len(other)} other")
    config.validate()
    _fit_model(config, shape)
    metric = "prob" if config.behaviour_token and config.metric == "refusal" else config.metric
    behaviour = Behaviour(metric, config.behaviour_token, config.contrast_token, config.max_new_tokens, chat)
    behaviour.check(model)
    meta = RunMeta(model=dict(model.info), config={**asdict(config), "metric": metric}, seed=config.seed)
    layers = sorted(shape)

    def counts(prompts):
        if config.over_generated:
            prompts = with_responses(model, prompts, chat=chat, max_new_tokens=config.max_new_tokens)
        return routing_counts(model, prompts, chat=chat, batch_size=batch_size, progress=progress)

    with meta.timed("association"):
        scores = associate(counts(target), counts(other), config.permutations, config.seed)
    pool = candidates(scores, layers, min(config.candidates, sum(e for e, _ in shape.values())), config.score)

    def run(prompts, toggles):
        return measure(model, prompts, behaviour, toggles, config.rows_per_batch, progress)

    with meta.timed("causal"):
        base_t, *off_values = run(target, [((), ())] + [([c], ()) for c in pool]).tolist()
        base_o = run(other, [((), ())]).item()
        on_values = run(other, [((), [c]) for c in pool]).tolist() if config.force_on else [None] * len(pool)
    rows = []
    for (layer, expert), off, on in zip(pool, off_values, on_values):
        li = layers.index(layer)
        rows.append(dict(layer=layer, expert=expert, effect=base_t - off, effect_on=None if on is None else on - base_o,
                         score=float(scores["ftri"][li, expert]), risk_diff=float(scores["risk_diff"][li, expert]),
                         p_value=float(scores["p_value"][li, expert]), off_value=off, on_value=on))
    rows.sort(key=lambda r: -r["effect"])

    with meta.timed("evaluation"):
        effects = _evaluate(model, rows, pool, shape, config, run, target, other, perplexity_texts, (base_t, base_o))
    return ExpertsResult(layers=layers, n_experts=[shape[layer][0] for layer in layers],
                         top_k=[shape[layer][1] for layer in layers], metric=behaviour.label,
                         n_target=len(target), n_other=len(other), experts=rows, effects=effects,
                         **{k: v for k, v in scores.items()}, meta=meta)


def _fit_model(config: ExpertsConfig, shape: dict) -> None:
    """--top-n and --candidates against the model's experts (`fit_option`: a default is
    clamped with a note, a given value refused): the random control draws --top-n experts
    outside the candidates, so top-n <= half the experts and candidates <= experts - top-n."""
    total = sum(n for n, _ in shape.values())
    what = f"experts ({total} in {len(shape)} MoE layers)"
    fit_option(config, "top_n", total // 2, f"experts, half of the {total} (a random control of as many must remain)")
    fit_option(config, "candidates", total - config.top_n,
               f"{what} less the --top-n {config.top_n} of the random control")
    if config.top_n > config.candidates:
        raise ValueError(f"--top-n {config.top_n} is more than --candidates {config.candidates} on this model; "
                         f"pass --top-n {config.candidates} or fewer")


def split_by_refusal(model, prompts: Sequence[str], *, chat: bool = False,
                     max_new_tokens: int = 32) -> tuple[list[str], list[str]]:
    """(refused, answered) prompts by the model's own greedy answers (interp.metrics.refusal);
    answers classified 'other' (empty, degenerate) join neither set."""
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts to split by refusal")
    texts = model.generate(prompts, chat=chat, max_new_tokens=max_new_tokens).texts
    labels = [classify_response(t) for t in texts]
    return ([p for p, label in zip(prompts, labels) if label == "refusal"],
            [p for p, label in zip(prompts, labels) if label == "answer"])


def _evaluate(model, rows, pool, shape, config, run, target, other, texts, baseline) -> dict:
    top = [(r["layer"], r["expert"]) for r in rows[: config.top_n]]
    on, per_layer = [], {}
    for layer, expert in top:  # a layer selects at most top_k experts
        if per_layer.get(layer, 0) < shape[layer][1]:
            on.append((layer, expert))
            per_layer[layer] = per_layer.get(layer, 0) + 1
    rng = random.Random(config.seed)
    everything = [(layer, e) for layer, (n, _) in shape.items() for e in range(n) if (layer, e) not in set(pool)]
    draws = []
    for _ in range(config.random_seeds):
        draw = _draw(rng, everything, len(top), shape)
        if draw:
            draws.append(draw)
    conditions = [("baseline", (), ()), ("top_off", top, ()), ("top_on", (), on)]
    conditions += [(f"random_off_{i}", draw, ()) for i, draw in enumerate(draws)]
    toggles = [(off, on_) for _, off, on_ in conditions]
    values_t, values_o = run(target, toggles).tolist(), run(other, toggles).tolist()
    effects = {name: {"target": t, "other": o} for (name, _, _), t, o in zip(conditions, values_t, values_o)}
    effects["baseline"] = {"target": baseline[0], "other": baseline[1]}  # the screen's own pass
    effects["experts"] = {"top_off": [list(x) for x in top], "top_on": [list(x) for x in on],
                          "random_off": [[list(x) for x in d] for d in draws]}
    if texts:
        for name, off, on_ in conditions:
            edits = expert_toggles(model, off, on_) if (off or on_) else []
            effects[name]["perplexity"] = perplexity(model, list(texts), edits=edits).ppl
    return effects


def _draw(rng: random.Random, pool: list, n: int, shape) -> list:
    """n distinct random experts that leave every layer at least top_k selectable."""
    for _ in range(100):
        draw = rng.sample(pool, min(n, len(pool)))
        per_layer: dict[int, int] = {}
        for layer, _ in draw:
            per_layer[layer] = per_layer.get(layer, 0) + 1
        if all(shape[layer][0] - k >= shape[layer][1] for layer, k in per_layer.items()):
            return draw
    return []
