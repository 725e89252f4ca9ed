"""Steering along skill directions: proxy ranking, then an alpha sweep with a damage check.

Each direction becomes a multi-layer "ffn" steering vector (`SkillBasisResult.vector`):
layer l's slice of the component, times alpha, is added to layer l's MLP output at every
position (`positions="all"`), as in the paper. Measures are the toolkit's own:

- proxy intervention (cheap, picks the directions worth using): the mean negative
  log-likelihood of the right answers of `n_val` validation items of the task, teacher
  forced (one forward pass, no generation), with the direction added at +alpha and
  -alpha; a direction's gain is the best drop of that NLL over the two poles;
- task metric: exact-match accuracy of greedy answers (`steering.austeer_eval.task_accuracy`
  on the arithmetic task of `steering.tasks`), and pass@k from `samples` sampled answers per
  item (the unbiased estimator of Chen et al. 2021: 1 - C(n - c, k) / C(n, k));
- damage: perplexity of held-out text (`interp.metrics.perplexity` on its shipped sample, which
  is not part of any skill corpus) with the same edit on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from interp.runs.config import option
from interp.metrics.perplexity import perplexity, sample_texts, token_nll
from interp.runs.results import Result, RunMeta

from ..apply import POSITIONS, VectorUse, steering_edits
from ..austeer_eval import task_accuracy
from ..tasks import Task, TaskItem
from .result import SCALES, SkillBasisResult


@dataclass
class SkillSteerConfig:
    directions: list[int] = option(default_factory=list, help="directions to sweep (default: the best `top` "
                                                                "by the proxy ranking)")
    top: int = option(3, "directions to sweep when --directions is not given")
    alphas: list[float] = option(default_factory=lambda: [-1.0, -0.3, 0.3, 1.0],
                                 help="steering strengths (0, no steering, is always measured)")
    scale: str = option("std", "alpha unit: std (corpus standard deviations along the direction) or unit "
                               "(the unit component, the paper's alpha)", choices=SCALES)
    positions: str = option("all", "where the vector is added (the paper: all)", choices=POSITIONS)
    proxy: bool = option(True, "rank every direction by the proxy intervention first")
    proxy_alpha: float = option(0.3, "alpha of the proxy intervention (both poles)")
    n_val: int = option(16, "task items for the proxy ranking")
    n_test: int = option(32, "task items for accuracy and pass@k")
    pass_k: int = option(4, "k of pass@k")
    samples: int = option(4, "sampled answers per item for pass@k (>= pass_k; 0 skips pass@k)")
    temperature: float = option(0.8, "sampling temperature for pass@k")
    ppl_texts: int = option(12, "held-out texts for the perplexity check")
    ppl_max_tokens: int = option(128, "tokens per held-out text")
    eval_batch_size: int = option(32, "prompts per generate call")

    def validate(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got '{self.scale}'")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got '{self.positions}'")
        if not self.alphas or not all(math.isfinite(a) for a in self.alphas):
            raise ValueError("alphas need at least one finite value")
        if self.top < 1 or self.n_val < 1 or self.n_test < 1 or self.ppl_texts < 1 or self.eval_batch_size < 1:
            raise ValueError("top, n_val, n_test, ppl_texts and eval_batch_size must be >= 1")
        if self.samples and (self.pass_k < 1 or self.samples < self.pass_k):
            raise ValueError(f"pass@k needs 1 <= pass_k <= samples, got pass_k={self.pass_k}, samples={self.samples}")
        if self.samples and self.temperature <= 0:
            raise ValueError("pass@k samples need temperature > 0")


@dataclass
class SkillSteerResult(Result):
    analysis: ClassVar[str] = "skills-steer"
    task: str
    scale: str
    pass_k: int
    baseline: dict  # accuracy, pass_at_k, ppl without steering
    table: pd.DataFrame  # direction, alpha, accuracy, pass_at_k, ppl, delta_* (alpha 0 rows = baseline)
    proxy: pd.DataFrame | None  # direction, nll_pos, nll_neg, base_nll, gain, best_pole, rank

    def summary(self) -> dict:
        rows = self.table[self.table["alpha"] != 0]
        # "best" only when steering helped; ties go to the least damage (lowest perplexity)
        gains = rows[rows["delta_accuracy"] > 0].sort_values(["delta_accuracy", "ppl"], ascending=[False, True])
        best = gains.iloc[0] if len(gains) else None
        out = {"task": self.task, "scale": self.scale, "baseline": self.baseline,
               "sweep": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                         for r in self.table.to_dict("records")]}
        out["best"] = None  # no setting raised accuracy over the baseline
        if best is not None:
            out["best"] = {"direction": int(best["direction"]), "alpha": float(best["alpha"]),
                           "delta_accuracy": round(float(best["delta_accuracy"]), 4), "ppl": round(float(best["ppl"]), 3)}
        if self.proxy is not None:
            out["proxy_ranking"] = [{"direction": int(r["direction"]), "best_pole": r["best_pole"],
                                     "gain": round(float(r["gain"]), 5)} for r in self.proxy.to_dict("records")]
        return out

    def figures(self) -> dict:
        from .figures import proxy_figure, steering_effect_figure

        figures = {"steering_effect": steering_effect_figure(self.table, "accuracy")}
        if self.table["pass_at_k"].notna().any():
            figures["steering_pass_at_k"] = steering_effect_figure(self.table, "pass_at_k")
        if self.proxy is not None:
            figures["proxy"] = proxy_figure(self.proxy)
        return figures


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def sampled_pass_at_k(model, task: Task, items: list[TaskItem], edits=(), *, samples: int, k: int,
                      temperature: float, chat: bool = False, batch_size: int = 32, seed: int = 0) -> float:
    """Mean pass@k over items, from `samples` sampled answers per item with `edits` on."""
    prompts = [item.prompt for item in items for _ in range(samples)]
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        out = model.generate(prompts[start:start + batch_size], edits=edits, chat=chat, temperature=temperature,
                             max_new_tokens=task.max_new_tokens, seed=seed + start)
        texts += out.texts
    scores = []
    for i, item in enumerate(items):
        correct = sum(task.is_correct(t, item) for t in texts[i * samples:(i + 1) * samples])
        scores.append(pass_at_k(samples, correct, k))
    return sum(scores) / len(scores)


def answer_nll(model, items: list[TaskItem], edits=(), chat: bool = False) -> float:
    """Mean NLL of the right answers' tokens given their prompts (teacher forced)."""
    prompts = [model.chat_prompt(i.prompt) if chat else i.prompt for i in items]
    full = [p + " " + i.answer for p, i in zip(prompts, items)]
    batch = model.tokenize(full, formatted=chat)
    prompt_lengths = model.tokenize(prompts, formatted=chat).lengths
    n_answer = torch.tensor([f - p for f, p in zip(batch.lengths, prompt_lengths)]).clamp_min(1)  # [b]
    nll, valid = token_nll(model, batch, edits)  # [b, P-1]: column j predicts token j+1
    cols = torch.arange(nll.shape[1])[None, :]
    answer = (cols >= nll.shape[1] - n_answer[:, None]) & valid  # left padding: answers end every row
    return float(nll[answer].double().mean())


def direction_edits(model, basis: SkillBasisResult, direction: int, alpha: float, scale: str,
                    positions: str = "all") -> list:
    vector = basis.vector(direction, scale)
    return steering_edits(model, [VectorUse(vector, alpha=alpha, positions=positions)])


def proxy_ranking(model, basis: SkillBasisResult, items: list[TaskItem], alpha: float, scale: str = "std",
                  positions: str = "all", chat: bool = False, progress: bool = False) -> pd.DataFrame:
    """Every direction ranked by its best drop of the answer NLL at +alpha or -alpha."""
    base = answer_nll(model, items, (), chat)
    rows = []
    for d in tqdm(range(basis.k), desc="proxy", disable=not progress, leave=False):
        nll = {pole: answer_nll(model, items, direction_edits(model, basis, d, sign * alpha, scale, positions), chat)
               for pole, sign in (("+", 1.0), ("-", -1.0))}
        pole = "+" if nll["+"] <= nll["-"] else "-"
        rows.append({"direction": d, "base_nll": base, "nll_pos": nll["+"], "nll_neg": nll["-"],
                     "gain": base - nll[pole], "best_pole": pole})
    frame = pd.DataFrame(rows).sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)
    frame["rank"] = range(1, len(frame) + 1)
    return frame


def run_skill_steer(model, basis: SkillBasisResult, task: Task, config: SkillSteerConfig | None = None, *,
                    chat: bool = False, progress: bool = True, seed: int = 0) -> SkillSteerResult:
    """Proxy ranking (optional), then the alpha sweep of the chosen directions."""
    config = config or SkillSteerConfig()
    config.validate()
    for d in config.directions:
        basis._check(d)
    basis.vector(0).check_model(model)  # the basis was made on this model
    split = task.split(0, config.n_val, config.n_test, seed=seed)
    held_out = sample_texts()[:config.ppl_texts]
    meta = RunMeta(model=dict(model.info), config={**asdict(config), "task": task.name, "chat": chat,
                                                   "basis_model": basis.meta.model.get("spec")}, seed=seed)
    proxy = None
    if config.proxy:
        with meta.timed("proxy"):
            proxy = proxy_ranking(model, basis, split["val"], config.proxy_alpha, config.scale, config.positions,
                                  chat, progress)
    directions = list(config.directions) or (proxy["direction"].tolist()[:config.top] if proxy is not None
                                             else list(range(min(config.top, basis.k))))

    def measure(edits) -> dict:
        accuracy = task_accuracy(model, task, split["test"], edits, chat, config.eval_batch_size)[0]
        passk = (sampled_pass_at_k(model, task, split["test"], edits, samples=config.samples, k=config.pass_k,
                                   temperature=config.temperature, chat=chat, batch_size=config.eval_batch_size,
                                   seed=seed) if config.samples else None)
        ppl = perplexity(model, held_out, edits=edits, max_tokens=config.ppl_max_tokens).ppl
        return {"accuracy": accuracy, "pass_at_k": passk, "ppl": ppl}

    alphas = sorted({float(a) for a in config.alphas if a != 0})
    bar = tqdm(total=1 + len(directions) * len(alphas), desc="skills-steer", disable=not progress, leave=False)
    with meta.timed("sweep"):
        baseline = measure(())
        bar.update(1)
        rows = []
        for d in directions:
            rows.append({"direction": d, "alpha": 0.0, **baseline})
            for alpha in alphas:
                rows.append({"direction": d, "alpha": alpha,
                             **measure(direction_edits(model, basis, d, alpha, config.scale, config.positions))})
                bar.update(1)
    bar.close()
    table = pd.DataFrame(rows)
    for metric in ("accuracy", "pass_at_k", "ppl"):
        base = baseline[metric]
        table[f"delta_{metric}"] = table[metric] - base if base is not None else None
    table["pass_at_k"] = table["pass_at_k"].astype(float)
    table["delta_pass_at_k"] = table["delta_pass_at_k"].astype(float)
    return SkillSteerResult(task=task.name, scale=config.scale, pass_k=config.pass_k, baseline=baseline,
                            table=table, proxy=proxy, meta=meta)
