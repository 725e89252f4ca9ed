"""The steps of `steerlens tour`: one small entry per analysis.

A step runs one analysis on the tour's model with settings that show its headline result,
saves the run directory it is given, and returns the result with a one-line key figure:

    @tour_step("sinks", "attention sinks and first-token share", notebook="02_sinks_and_massive.ipynb")
    def sinks_step(model, out_dir: Path, quick: bool) -> tuple[Result, str]:
        result = run_sinks(model, prompts[:4] if quick else prompts, SinkConfig(tokens=32 if quick else 64))
        result.save(out_dir, overwrite=True)
        return result, f"sink rate {result.sink_rate():.1f}%"

Adding an analysis to the tour is adding one such function (and its notebook under
`notebooks/`). The tour loads its model once with eager attention (patterns available,
numbers identical to sdpa), so steps may capture attention patterns. A step that needs a
particular zoo model (a model that refuses, for refusal steering) names it in `model=`:
the tour of the default model runs that step on the named model when it is installed and
skips it otherwise; a tour of a model the user names runs every step on that model. `quick` must keep a step to well under
a minute on two CPU cores with the default 135M model; the full setting stays bounded
(fixed prompt sets and token counts, no open-ended sweeps).

Prompts and targets are chosen so that every step also runs on any model, including tiny
random test models with a character-level tokenizer: where the tour's fact tokens
(" Paris", " London") are not single tokens, the model's own top two predictions are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..runs.results import Result

StepFn = Callable[..., tuple[Result, str]]  # (model, out_dir: Path, quick: bool) -> (result, key figure)


@dataclass(frozen=True)
class TourStep:
    """One analysis of the tour."""

    name: str  # run directory name under the tour folder, and the name `--only` takes
    title: str  # what the summary table calls it
    run: StepFn
    model: str | None = None  # zoo model this step uses on the default tour (skipped if not installed)
    notebook: str | None = None  # notebooks/<file> that explains the analysis


STEPS: dict[str, TourStep] = {}  # in tour order (registration order)


def tour_step(name: str, title: str, *, model: str | None = None, notebook: str | None = None):
    """Register the decorated `(model, out_dir, quick) -> (result, key figure)` function."""

    def register(fn: StepFn) -> StepFn:
        if name in STEPS and STEPS[name].run.__qualname__ != fn.__qualname__:
            raise ValueError(f"tour step {name!r} is already registered by {STEPS[name].run.__qualname__}")
        STEPS[name] = TourStep(name, title, fn, model, notebook)
        return fn

    return register


# ---- shared inputs ----------------------------------------------------------------------

FACT_PROMPTS = [
    "The capital of France is",
    "The Eiffel Tower is located in the city of",
    "The Louvre museum is in the city of",
    "Notre-Dame cathedral stands in the city of",
]
FACT_TARGET, FACT_CONTRAST = " Paris", " London"


def fact_tokens(model, prompts: list[str]) -> tuple[str | int, str | int]:
    """(target, contrast) for DLA and the lens: " Paris" vs " London" where both are single
    tokens, else the model's own top-1 vs top-2 next token after the first prompt (token ids)."""
    from ..dla.directions import single_token_id

    try:
        single_token_id(model, FACT_TARGET)
        single_token_id(model, FACT_CONTRAST, "contrast")
        return FACT_TARGET, FACT_CONTRAST
    except ValueError:
        logits = model.forward(prompts[:1])[0, -1]  # [V]
        first, second = logits.topk(2).indices.tolist()
        return first, second


def _token_text(model, token: str | int) -> str:
    return repr(token if isinstance(token, str) else model.tokenizer.decode([token]))


# ---- steps ------------------------------------------------------------------------------


@tour_step("dla", "direct logit attribution", notebook="01_dla_and_lens.ipynb")
def dla_step(model, out_dir: Path, quick: bool):
    """Which heads and MLPs write logit(Paris) - logit(London) at the last token."""
    from ..dla.attribution import dla

    prompts = FACT_PROMPTS[:2] if quick else FACT_PROMPTS
    target, contrast = fact_tokens(model, prompts)
    result = dla(model, prompts, target, contrast, neurons=not quick, top_k=10)
    result.save(out_dir, overwrite=True)
    top = result.top_components(1)[0]
    return result, (f"{_token_text(model, target)} - {_token_text(model, contrast)} = "
                    f"{result.model_value.mean().item():.2f}; top {top['component']} {top['value']:+.2f}; "
                    f"sum check {result.sum_check:.1e}")


@tour_step("lens", "logit lens", notebook="01_dla_and_lens.ipynb")
def lens_step(model, out_dir: Path, quick: bool):
    """The layer at which the answer becomes the lens' top-1 prediction."""
    from ..dla.lens import logit_lens

    prompts = FACT_PROMPTS[:2] if quick else FACT_PROMPTS
    target, _ = fact_tokens(model, prompts)
    result = logit_lens(model, prompts, target, positions="all")  # the full grid for the explorer
    result.save(out_dir, overwrite=True)
    first = result.summary()["first_top1_layer"][0]
    where = f"top-1 from {first}" if first else "never top-1"
    return result, f"{_token_text(model, target)} {where}; last-layer check {result.final_layer_check:.1e}"


SINK_PROMPTS_QUICK = 4  # of the 16 shipped natural-text prompts (interp/data/sinks_text.txt)


@tour_step("sinks", "attention sinks", notebook="02_sinks_and_massive.ipynb")
def sinks_step(model, out_dir: Path, quick: bool):
    """How many heads park their attention on the first token, on natural and random text."""
    from ..sinks.measure import SinkConfig, default_prompts, run_sinks

    prompts = default_prompts()[:SINK_PROMPTS_QUICK] if quick else default_prompts()
    result = run_sinks(model, prompts, SinkConfig(tokens=32 if quick else 64))
    result.save(out_dir, overwrite=True)
    s = result.summary()
    random = f", {s['sink_rate_random']:.0f}% on random tokens" if s.get("sink_rate_random") is not None else ""
    return result, f"sink rate {s['sink_rate']:.0f}% of heads{random}; {len(s['sink_heads'])} sink heads"


@tour_step("massive", "massive activations", notebook="02_sinks_and_massive.ipynb")
def massive_step(model, out_dir: Path, quick: bool):
    """Residual entries thousands of times the median: where, written by what, needed or not."""
    from ..massive.activations import massive_activations
    from ..sinks.measure import default_prompts

    prompts = default_prompts()[:SINK_PROMPTS_QUICK] if quick else default_prompts()
    result = massive_activations(model, prompts, tokens=32 if quick else 64, intervene=not quick)
    result.save(out_dir, overwrite=True)
    s = result.summary()
    if s["first_massive_layer"] is None:
        return result, f"none by Sun et al.'s criterion; largest max/median {s['max_ratio']:.0f}x at L{s['max_ratio_layer']}"
    group = s["groups"][0]
    key = (f"from L{group['first_layer']}: dims {group['dims'][:3]}, |a| {group['massive_value']:.0f}, "
           f"{s['max_ratio']:.0f}x median")
    origin = (s["origin"] or [{}])[0]
    if origin.get("sublayer"):
        key += f"; written by L{origin['layer']} {origin['sublayer']}"
    if s.get("ppl"):
        key += f"; ppl {s['ppl']['original']:.1f}, zeroed {s['ppl']['zero']:.3g}, mean-set {s['ppl']['mean']:.1f}"
    return result, key


VOID_PROMPTS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "How many legs does a spider have?",
    "Write one sentence about the sea.",
]


def _has_chat_template(model) -> bool:
    return bool(getattr(model.tokenizer, "chat_template", None))


@tour_step("voids", "LAC void layers", notebook="03_voids.ipynb")
def voids_step(model, out_dir: Path, quick: bool):
    """Share of (token, layer) pairs the LAC rule finds active, prompt vs response."""
    from ..voids.maps import VoidConfig, run_voids

    prompts = VOID_PROMPTS[:2] if quick else VOID_PROMPTS
    result = run_voids(model, prompts, VoidConfig(max_new_tokens=12 if quick else 32), chat=_has_chat_template(model))
    result.save(out_dir, overwrite=True)
    used = result.layers_used_pct()
    return result, f"layers used at alpha 0.8: prompt {used['prompt']:.0f}%, response {used['response']:.0f}%"


@tour_step("voids_eval", "accuracy with void layers skipped", notebook="03_voids.ipynb")
def voids_eval_step(model, out_dir: Path, quick: bool):
    """Multiple-choice accuracy with and without the void layers (paper-mode skipping)."""
    from ..voids.evaluation import VoidEvalConfig, evaluate_voids

    config = VoidEvalConfig(alphas=[0.8], limit=8) if quick else VoidEvalConfig()
    result = evaluate_voids(model, config, chat=_has_chat_template(model))
    result.save(out_dir, overwrite=True)
    s = result.summary()
    alpha = "0.8" if "0.8" in s["accuracy"] else next(iter(s["accuracy"]))
    accuracy = s["accuracy"][alpha]
    return result, (f"accuracy {accuracy['no_skip']:.2f}, {accuracy['skip']:.2f} with void layers skipped "
                    f"(alpha {alpha}, {s['n_questions']} questions)")


@tour_step("austeer", "AUSteer: steering a few atomic units", notebook="04_steering_and_austeer.ipynb")
def austeer_step(model, out_dir: Path, quick: bool):
    """Arithmetic accuracy: no steering vs a whole-layer vector vs AUSteer's top-k coordinates."""
    from steering import AUSteerEvalConfig, get_task, run_austeer_eval

    stride = max(1, model.n_layers // 3)
    if quick:
        config = AUSteerEvalConfig(ks=[8], alphas=[8.0, 32.0], block_alphas=[4.0], block_layer_stride=stride,
                                   n_train=16, n_val=8, n_test=16)
    else:
        config = AUSteerEvalConfig(ks=[8, 32], alphas=[8.0, 32.0], block_alphas=[2.0, 8.0],
                                   block_layer_stride=max(1, model.n_layers // 6), n_train=100, n_val=32, n_test=64)
    result = run_austeer_eval(model, get_task("arithmetic"), config, progress=False)
    result.save(out_dir, overwrite=True)
    rows = {(r["method"], r["k"]): r["test_accuracy"] for r in result.summary()["table"]}
    best_k = max((k for method, k in rows if method == "austeer"), key=lambda k: rows[("austeer", k)])
    block = next(v for (method, _), v in rows.items() if method == "block-mean-diff")
    return result, (f"arithmetic test accuracy: none {rows[('none', 0)]:.2f}, whole layer {block:.2f}, "
                    f"AUSteer k={best_k} {rows[('austeer', best_k)]:.2f}")


@tour_step("refusal_steer", "refusal direction: add and ablate", model="qwen2.5-coder-0.5b-instruct",
           notebook="04_steering_and_austeer.ipynb")
def refusal_steer_step(model, out_dir: Path, quick: bool):
    """A difference-of-means refusal direction added to benign requests and ablated from harmful ones."""
    from steering.refusal_steer import RefusalSteerConfig, run_refusal_steer

    config = RefusalSteerConfig(alphas=[1.0], max_new_tokens=12, n_test=12) if quick else RefusalSteerConfig()
    result = run_refusal_steer(model, config)
    result.save(out_dir, overwrite=True)
    rate = {(r["prompts"], r["condition"], r["alpha"]): r["refusal_rate"] for r in result.table.to_dict("records")}
    alpha = config.alphas[0]
    return result, (f"L{result.layer}: benign refused {rate[('benign', 'baseline', 0.0)]:.0%} -> "
                    f"{rate[('benign', 'add', alpha)]:.0%} with the direction added; harmful refused "
                    f"{rate[('harmful', 'baseline', 0.0)]:.0%} -> {rate[('harmful', 'ablate', 0.0)]:.0%} "
                    "with it ablated")


SKILL_VECTOR = "direction-0.safetensors"  # skill direction 0 (alpha 1 = one corpus std), next to the skills run


@tour_step("skills", "model-native skill basis", notebook="07_skill_basis.ipynb")
def skills_step(model, out_dir: Path, quick: bool):
    """PCA of mean-pooled layer outputs over a mixed arithmetic / code / prose set: the variance
    the first directions explain and the keywords that set the poles of direction 0 apart."""
    from steering.skills import SkillFitConfig, corpus_from_records, default_prompts, fit_skills, make_corpus

    prompts = default_prompts()
    records = ([{**p, "text": p["prompt"]} for p in prompts] if quick  # quick: the prompts alone, no generation
               else make_corpus(model, prompts, max_new_tokens=48, progress=False))
    result = fit_skills(model, corpus_from_records(records), SkillFitConfig(k=5 if quick else 10), progress=False)
    result.save(out_dir, overwrite=True)
    result.vector(0).save(out_dir / SKILL_VECTOR)  # a steering vector for this model: the explorer's playground lists it
    s, d = result.summary(), result.directions[0]
    return result, (f"{s['k']} directions explain {s['explained_variance_total']:.0%} of {s['n_texts']} texts; "
                    f"direction 0: {', '.join(d['keywords_pos'][:3]) or '-'} vs {', '.join(d['keywords_neg'][:3]) or '-'}")


@tour_step("experts", "MoE experts of a behaviour (MoTE)", notebook="08_mote_experts.ipynb")
def experts_step(model, out_dir: Path, quick: bool):
    """On an MoE model: experts of refusal (shipped harmful vs benign requests, chat template),
    ranked by the effect of switching each off alone. A dense tour model has no experts, so the
    step runs on the planted tiny MoE (interp.experts.planted, about 5 s) instead."""
    from ..experts.planted import BEHAVIOUR_TOKEN, planted_model
    from ..experts.scan import ExpertsConfig, experts_scan
    from ..metrics.refusal import refusal_pairs

    if model.spec.moe:
        pairs = refusal_pairs("test")[: 6 if quick else 16]
        target, other = [p["harmful"] for p in pairs], [p["benign"] for p in pairs]
        config = ExpertsConfig(candidates=4 if quick else 16, max_new_tokens=12 if quick else 32)
        where, chat = "", bool(getattr(model.tokenizer, "chat_template", None))
    else:
        model, where, chat = planted_model(), " (planted MoE: the tour model is dense)", False
        target, other = ["ab#", "hello@", "x$", "zz@"], ["abc", "hello", "xyz", "zz"]
        config = ExpertsConfig(behaviour_token=BEHAVIOUR_TOKEN, candidates=6, top_n=1, permutations=200)
    result = experts_scan(model, target, other, config, chat=chat)
    result.save(out_dir, overwrite=True)
    first, effects = result.experts[0], result.effects
    return result, (f"top expert L{first['layer']}E{first['expert']}{where}: {result.metric} "
                    f"{effects['baseline']['target']:.2f} -> {effects['top_off']['target']:.2f} with the top "
                    f"{config.top_n} off, {sum(result.random_off()) / max(len(result.random_off()), 1):.2f} "
                    "with random ones off")


@tour_step("rise", "RISE: SAE on reasoning steps, behaviour latents", notebook="06_rise_saes.ipynb")
def rise_step(model, out_dir: Path, quick: bool):
    """Step-end activations of worked arithmetic traces (the shipped examples when quick, the
    model's own step-by-step answers otherwise), a small ReLU + L1 SAE trained with sae-lens,
    and the latents that win the reflection steps."""
    from saes import example_traces_file
    from saes.analyze import AnalyzeConfig, analyze
    from saes.collect import CollectConfig, collect, resid_site
    from saes.train import TrainConfig, train_layer

    work = out_dir.parent / f".{out_dir.name}-collect"  # hidden: not listed as a run of its own
    layer = model.n_layers // 2
    collect(model, CollectConfig(layers=[layer], n=12, max_new_tokens=160), work,
            problems_file=str(example_traces_file()) if quick else None,
            chat=bool(getattr(model.tokenizer, "chat_template", None)), progress=False)
    d_sae = max(16, model.d_model // 4) if quick else 0
    train_layer(work / "store", resid_site(layer), work / "sae" / f"layer_{layer}",
                TrainConfig(architecture="standard", d_sae=d_sae, batch_size=32, steps=150 if quick else 600, lr=3e-3, l1_coefficient=0.3,
                            checkpoints=0), resume=True, progress=False)
    result = analyze(model, work, AnalyzeConfig(min_count=1, ce_traces=4 if quick else 16), progress=False)
    result.save(out_dir, overwrite=True)
    s = result.summary()
    top = s["behaviours"].get("reflection") or []
    return result, (f"L{layer} SAE: FVU {s['sae']['fvu']:.2f}, L0 {s['sae']['l0']:.1f}, CE recovered "
                    f"{s['sae']['ce_recovered']:.2f}; reflection latents "
                    f"{', '.join(str(r['latent']) for r in top[:3]) or 'none'}")


@tour_step("routing", "policy-gate routing: interchange screen for the refusal gate",
           notebook="05_policy_routing.ipynb")
def routing_step(model, out_dir: Path, quick: bool):
    """Per-head interchange on matched harmful / benign requests: the gate is the head whose
    benign z_h most lowers the NLL of the benign answer after the harmful prompt."""
    from ..routing.config import RoutingConfig
    from ..routing.pairs import load_pairs
    from ..routing.pipeline import run_routing

    config = (RoutingConfig(n=8, steps=["interchange"], verify=8, permutations=1000, bootstrap=200) if quick
              else RoutingConfig(n=24, steps=["screen", "interchange", "knockout"]))
    result = run_routing(model, load_pairs(), config, chat=_has_chat_template(model))
    result.save(out_dir, overwrite=True)
    summary = result.summary()
    gate = summary["gate"]
    caveat = "; but " + summary["warnings"][0] if summary["warnings"] else ""
    measured = sum(1 for row in summary["heads"] if row["exact"])
    family = (f", family-wise p={gate['p_family']:.3g} over the {measured} heads measured exactly"
              if gate.get("p_family") else "")
    return result, (f"gate L{gate['layer']}H{gate['head']}: necessity {gate['necessity_pct']:.1f}% of the "
                    f"harmful-benign NLL gap (p={gate['p_value']:.3g}{family}), sufficiency "
                    f"{gate['sufficiency_pct']:.1f}%{caveat}")
