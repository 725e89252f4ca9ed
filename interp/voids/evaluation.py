"""Multiple-choice accuracy with and without LAC void skipping over an alpha sweep
("Void in Language Models", arXiv 2505.14467; questions and prompts: `interp.voids.mcq`).

    result = evaluate_voids(model, VoidEvalConfig(task="mcq_basic", alphas=[0.5, 0.8, 1.0], skip="real"))
    result.summary()["accuracy"]      # {"0.8": {"no_skip": 0.71, "skip": 0.69}, ...}

Zero-shot, greedy, answer letter read from the logits at the last prompt token (or, with
`answer="generate"`, from greedy text as the paper does). Per batch of questions:

1. detection pass: the unmodified model with the norm tracker; gives the answers without
   skipping and every token's norm deltas. The rule is alpha-independent up to the
   threshold, so each alpha's void map comes from these deltas (`lac_active`);
2. `skip="paper"`: one pass per alpha where the final norm reads the last active layer's
   state (`VoidTracker(paper_skip=True)`); no compute is saved by construction, and the
   answer can only change where the final layer is void at the answer token
   (`answer_final_layer_active` in the summary says how often it is active);
3. `skip="real"`: one pass per alpha where void layers are not applied (`interp.engine.skipping`):
   a layer void for every real token of the batch is not run at all (saved compute), and
   in the layers that do run, void tokens keep their input. The decisions come from pass 1,
   so real skipping needs a full pass first: the net cost is detection + skipped pass, and
   that is reported next to the skipped pass alone. Real skipping is single-pass only (no
   KV cache), hence `answer="logits"`. With "auto", real mode uses one question per batch
   (whole-layer skips need every token of the batch to be void).

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/voids.md.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..runs.config import option
from ..runs.results import Result, RunMeta
from ..engine.skipping import SkipLayers
from .mcq import letter_from_text, letter_token_ids, letters_from_logits, load_questions, mc_prompt
from .rule import LAYER0_RULES, NORM_DTYPES, VoidTracker, lac_active, norm_deltas
from .tables import layer_frequency, used_pct
from .maps import TEMPLATES, _split_rows, check_hookable, uses_template


@dataclass
class VoidEvalConfig:
    task: str = option("mcq_basic", "built-in task name (mcq_basic) or a JSONL file with question, choices, answer")
    alphas: list[float] = option(None, "LAC alphas to sweep", default_factory=lambda: [0.5, 0.8, 1.0])
    skip: str = option("paper", "'paper': final norm reads the last active layer (no compute saved); 'real': void "
                                "layers are not applied, whole layers not run when void for the whole batch",
                       choices=("paper", "real"))
    answer: str = option("logits", "'logits': argmax over the letter tokens at the last prompt token; 'generate': "
                                   "greedy text, first option letter (paper mode only)", choices=("logits", "generate"))
    max_new_tokens: int = option(8, "tokens generated per question with --answer generate")
    layer0: str = option("active", "layer 0 rule (see steerlens voids --help)", choices=LAYER0_RULES)
    norm_dtype: str = option("float32", "precision of norms, deltas and thresholds: float32, or model (the model's "
                                        "dtype, as the paper's code)", choices=NORM_DTYPES)
    template: str = option("chat-flag", "chat template: chat-flag (only with --chat) or paper (whenever the "
                                        "tokenizer has one, as the paper's code)", choices=TEMPLATES)
    limit: int | None = option(None, "use only the first N questions")
    timing_repeats: int = option(1, "real mode: time the plain and each skipped pass this many times, keep the "
                                    "fastest (wall time on a shared CPU is noisy)")

    def validate(self) -> None:
        if not self.alphas:
            raise ValueError("--alphas is empty; pass e.g. --alphas 0.5,0.8,1.0")
        bad = [a for a in self.alphas if not (math.isfinite(a) and a > 0)]
        if bad:
            raise ValueError(f"--alphas must all be positive numbers, got {bad}")
        if self.skip not in ("paper", "real"):
            raise ValueError(f"--skip must be paper or real, got {self.skip!r}")
        if self.answer not in ("logits", "generate"):
            raise ValueError(f"--answer must be logits or generate, got {self.answer!r}")
        if self.skip == "real" and self.answer == "generate":
            raise ValueError("real skipping runs single forward passes (no KV cache): use --answer logits")
        if self.max_new_tokens < 1:
            raise ValueError(f"--max-new-tokens must be at least 1, got {self.max_new_tokens}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {self.limit}")
        if self.layer0 not in LAYER0_RULES:
            raise ValueError(f"--layer0 must be one of {LAYER0_RULES}, got {self.layer0!r}")
        if self.timing_repeats < 1:
            raise ValueError(f"--timing-repeats must be at least 1, got {self.timing_repeats}")
        if self.norm_dtype not in NORM_DTYPES:
            raise ValueError(f"--norm-dtype must be one of {NORM_DTYPES}, got {self.norm_dtype!r}")
        if self.template not in TEMPLATES:
            raise ValueError(f"--template must be one of {TEMPLATES}, got {self.template!r}")


@dataclass
class VoidEvalResult(Result):
    analysis: ClassVar[str] = "voids_eval"
    task: str
    n_questions: int
    alphas: list[float]
    skip: str
    answer: str
    accuracy_no_skip: float
    accuracy_skip: list[float]  # per alpha
    layers_used_prompt: list[float]  # % per alpha
    layers_used_response: list  # % per alpha; None with answer="logits" (no decode steps)
    layers_used_answer_token: list[float]  # % at the last prompt token, which gives the answer
    per_layer_prompt: torch.Tensor  # [A, L] active fraction
    per_layer_response: torch.Tensor  # [A, L] (NaN without decode steps)
    per_layer_answer: torch.Tensor  # [A, L] active fraction at the answer token (last prompt token)
    compute: list  # per alpha: layer calls skipped and seconds (real mode)
    per_question: pd.DataFrame

    def summary(self) -> dict:
        keys = [f"{a:g}" for a in self.alphas]

        def freq(row: torch.Tensor) -> list | None:
            values = [None if math.isnan(v) else round(v, 4) for v in row.tolist()]
            return None if all(v is None for v in values) else values

        return {
            "task": self.task, "n_questions": self.n_questions, "skip": self.skip, "answer": self.answer,
            "accuracy": {k: {"no_skip": self.accuracy_no_skip, "skip": acc} for k, acc in zip(keys, self.accuracy_skip)},
            "layers_used_pct": {k: {"prompt": p, "response": r, "answer_token": t} for k, p, r, t in
                                zip(keys, self.layers_used_prompt, self.layers_used_response,
                                    self.layers_used_answer_token)},
            "per_layer_active": {k: {"prompt": freq(p), "response": freq(r)} for k, p, r in
                                 zip(keys, self.per_layer_prompt, self.per_layer_response)},
            "answer_final_layer_active": {k: round(float(row[-1]), 4) for k, row in zip(keys, self.per_layer_answer)},
            "compute": dict(zip(keys, self.compute)),
        }

    def figures(self) -> dict:
        from .figures import eval_figures

        return eval_figures(self)


def skip_plan(active: torch.Tensor, real: torch.Tensor) -> tuple[list[int], dict[int, torch.Tensor]]:
    """Real-skipping plan of one pass from its void map.

    active [b, p, L] bool, real [b, p] bool -> (layers void for every real token: not run,
    {layer: void real tokens [b, p]} for the layers that run with some void tokens)."""
    void = ~active & real[..., None]  # [b, p, L]
    n_real = int(real.sum())
    whole, tokens = [], {}
    for layer in range(active.shape[-1]):
        count = int(void[..., layer].sum())
        if count == n_real and n_real > 0:
            whole.append(layer)
        elif count:
            tokens[layer] = void[..., layer]
    return whole, tokens


def evaluate_voids(model, config: VoidEvalConfig | None = None, *, chat: bool = False,
                   batch_size: int | str | None = None, progress: bool = False,
                   seed: int | None = None) -> VoidEvalResult:
    config = config or VoidEvalConfig()
    config.validate()
    check_hookable(model)
    questions = load_questions(config.task, config.limit)
    n_choices = [len(q["choices"]) for q in questions]
    letter_ids = letter_token_ids(model, max(n_choices))
    if batch_size in (None, "auto"):
        size = 1 if config.skip == "real" else 8
    else:
        size = int(batch_size)
    chat = uses_template(model, chat, config.template)
    meta = RunMeta(model=model.info, config={**dataclasses.asdict(config), "chat": chat}, seed=seed)
    L, A = model.n_layers, len(config.alphas)
    rows: list[dict] = []
    maps = {a: {"prompt": [], "response": [], "last": []} for a in range(A)}
    compute = [{"layer_calls_run": 0, "layer_calls_skipped": 0, "skip_seconds": 0.0, "full_seconds": 0.0,
                "detect_seconds": 0.0} for _ in range(A)]
    chunks = [list(range(i, min(i + size, len(questions)))) for i in range(0, len(questions), size)]
    for chunk in tqdm(chunks, desc=f"voids eval ({config.skip})", disable=not progress, leave=False):
        batch = model.tokenize([mc_prompt(questions[i], chat) for i in chunk], chat=chat)
        real = batch.attention_mask.bool()  # [b, P]
        detector = VoidTracker(L, 1.0, config.layer0, norm_dtype=config.norm_dtype)
        start = time.perf_counter()
        if config.answer == "logits":
            base = _letters(model.forward(batch, hooks=detector.hooks())[:, -1], letter_ids, n_choices, chunk)
        else:
            gen = model.generate(batch, hooks=detector.hooks(), max_new_tokens=config.max_new_tokens)
            base = [letter_from_text(t, n_choices[i]) for t, i in zip(gen.texts, chunk)]
        detect_seconds = time.perf_counter() - start
        norms = detector.passes[0].norms  # [b, P, L + 1] float32; exact copies of model-dtype norms
        deltas = norm_deltas(norms if config.norm_dtype == "float32" else norms.to(model.dtype))  # [b, P, L]
        full_seconds = _time_plain(model, batch, config.timing_repeats) if config.skip == "real" else 0.0
        rows += _rows(questions, chunk, "no_skip", None, base, None)
        for a, alpha in enumerate(config.alphas):
            active = lac_active(deltas, alpha, config.layer0)  # [b, P, L]
            if config.skip == "paper":
                tracker = VoidTracker(L, alpha, config.layer0, paper_skip=True, norm_dtype=config.norm_dtype)
                if config.answer == "logits":
                    pred = _letters(model.forward(batch, hooks=tracker.hooks())[:, -1], letter_ids, n_choices, chunk)
                else:
                    gen = model.generate(batch, hooks=tracker.hooks(), max_new_tokens=config.max_new_tokens)
                    pred = [letter_from_text(t, n_choices[i]) for t, i in zip(gen.texts, chunk)]
                    maps[a]["response"] += [r["response_active"] for r in _split_rows(model, batch, gen, tracker.passes)]
                compute[a]["layer_calls_run"] += L * len(tracker.passes)
            else:
                pred = _real_pass(model, batch, active, real, letter_ids, n_choices, chunk, compute[a],
                                  config.timing_repeats)
                compute[a]["detect_seconds"] += detect_seconds
                compute[a]["full_seconds"] += full_seconds
            maps[a]["prompt"].append(active.reshape(-1, L)[real.reshape(-1)])
            maps[a]["last"].append(active[:, -1])
            rows += _rows(questions, chunk, config.skip, alpha, pred, active[:, -1].sum(-1).tolist())
    return _result(config, questions, rows, maps, compute, L, meta)


def _letters(logits, letter_ids, n_choices, chunk) -> list[str]:
    out = []
    for row, i in enumerate(chunk):  # questions may differ in their number of choices
        out += letters_from_logits(logits[row : row + 1], letter_ids[: n_choices[i]])
    return out


def _time_plain(model, batch, repeats: int) -> float:
    """Fastest of `repeats` plain passes over the batch (the reference for the skipped pass)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.forward(batch)
        times.append(time.perf_counter() - start)
    return min(times)


def _real_pass(model, batch, active, real, letter_ids, n_choices, chunk, stats: dict, repeats: int) -> list[str]:
    whole, tokens = skip_plan(active, real)
    times = []
    for _ in range(repeats):  # fastest of a few: wall time on a shared CPU is noisy
        start = time.perf_counter()
        with SkipLayers(model, whole=whole, tokens=tokens) as skipping:
            logits = model.forward(batch)[:, -1]
        times.append(time.perf_counter() - start)
    stats["skip_seconds"] += min(times)
    stats["layer_calls_run"] += skipping.layer_calls_run
    stats["layer_calls_skipped"] += skipping.layer_calls_skipped
    return _letters(logits, letter_ids, n_choices, chunk)


def _rows(questions, chunk, mode, alpha, predicted, answer_active) -> list[dict]:
    return [{"question": i, "category": questions[i].get("category", ""), "mode": mode,
             "alpha": float("nan") if alpha is None else alpha, "predicted": predicted[k] or "",
             "answer": questions[i]["answer"], "correct": predicted[k] == questions[i]["answer"],
             "answer_token_active": -1 if answer_active is None else int(answer_active[k])}
            for k, i in enumerate(chunk)]


def _result(config, questions, rows, maps, compute, L, meta) -> VoidEvalResult:
    table = pd.DataFrame(rows)
    base = table[table["mode"] == "no_skip"]
    accuracy = []
    for alpha in config.alphas:
        accuracy.append(float(table[(table["mode"] == config.skip) & (table["alpha"] == alpha)]["correct"].mean()))
    used_prompt, used_response, used_last, freq_prompt, freq_response, freq_last = [], [], [], [], [], []
    for a in range(len(config.alphas)):
        prompt = torch.cat(maps[a]["prompt"])[None]  # [1, tokens, L]
        ones = torch.ones(prompt.shape[:2], dtype=torch.bool)
        used_prompt.append(used_pct(prompt, ones))
        last = torch.cat(maps[a]["last"])[None]  # [1, questions, L]
        every = torch.ones(last.shape[:2], dtype=torch.bool)
        used_last.append(used_pct(last, every))
        freq_last.append(layer_frequency(last, every))
        freq_prompt.append(layer_frequency(prompt, ones))
        response = [r for r in maps[a]["response"] if r.shape[0]]
        if response:
            stacked = torch.cat(response)[None]
            mask = torch.ones(stacked.shape[:2], dtype=torch.bool)
            used_response.append(used_pct(stacked, mask))
            freq_response.append(layer_frequency(stacked, mask))
        else:
            used_response.append(None)
            freq_response.append(torch.full((L,), float("nan")))
    return VoidEvalResult(
        task=config.task, n_questions=len(questions), alphas=[float(a) for a in config.alphas], skip=config.skip,
        answer=config.answer, accuracy_no_skip=float(base["correct"].mean()), accuracy_skip=accuracy,
        layers_used_prompt=used_prompt, layers_used_response=used_response, layers_used_answer_token=used_last,
        per_layer_prompt=torch.stack(freq_prompt), per_layer_response=torch.stack(freq_response),
        per_layer_answer=torch.stack(freq_last),
        compute=[_compute_summary(c, config.skip) for c in compute], per_question=table, meta=meta)


def _compute_summary(stats: dict, skip: str) -> dict:
    total = stats["layer_calls_run"] + stats["layer_calls_skipped"]
    out = {"layer_calls_skipped_frac": stats["layer_calls_skipped"] / total if total else 0.0}
    if skip == "real" and stats["skip_seconds"] > 0:
        out.update({
            "skip_pass_seconds": round(stats["skip_seconds"], 4),
            "full_pass_seconds": round(stats["full_seconds"], 4),
            "skip_pass_speedup": round(stats["full_seconds"] / stats["skip_seconds"], 4),
            "net_seconds_with_detection": round(stats["skip_seconds"] + stats["detect_seconds"], 4),
        })
    return out
