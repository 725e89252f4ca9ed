"""The effect of a confidence vector: steer at step ends on held-out problems and measure
(RISE, arXiv 2512.23988, section 5).

The held-out problems are first generated unsteered (the reference traces). For each alpha
the edit is h + alpha |h| v at every step-end token (`saes.steer.step_edit`, mode "add";
alpha = 0 is the unsteered model), and the dose-response row holds, averaged over traces
with a 95% interval (normal approximation, mean +- 1.96 sd / sqrt(n)):
- on the reference traces with two or more steps, read teacher-forced with the edit on (the
  same text at every alpha; the edit fires at every separator the text holds, the prompt's
  included, as in generation; None when no reference trace has two steps):
  - `answer_entropy`: what the search minimised, on held-out text: the mean next-token
    entropy (nats) at the answer tokens (the last step) of each trace;
  - `answer_entropy_change`: the same minus each trace's unsteered value (paired);
- on the problems generated greedily with the edit on:
  - `entropy`: the mean next-token entropy (nats) over the response's tokens, read back
    teacher-forced under the same edit (the distributions the generation sampled from: the
    edit depends only on the tokens fed);
  - `reflection`, `backtracking`: steps per trace with that keyword label (`saes.labels`);
  - `accuracy`: answers equal to the problem's (with a Wilson interval, `interp.metrics.intervals`);
  - `length`: response tokens.
The trace is re-tokenised from its text for the read-back; a tokenizer that would split the
generated text differently shifts a few positions, not the mean.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from interp.engine.tokens import pad_rows
from interp.metrics.intervals import wilson

from .collect import CollectConfig, build_traces
from .confidence import answer_batch, mean_entropy
from .labels import KeywordLabeller
from .steer import _Steered, separator_tokens, step_edit
from .traces import Problem, Trace, token_at_char

BEHAVIOURS = ("reflection", "backtracking")


def interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean with a 95% normal-approximation interval."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = 1.96 * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def response_entropies(model, traces: list[Trace], edits: list, chat: bool, rows_per_pass: int = 4) -> list[float]:
    """Mean next-token entropy (nats) over each trace's response tokens, with `edits` on."""
    out = []
    for start in range(0, len(traces), rows_per_pass):
        chunk = traces[start:start + rows_per_pass]
        encoded = [model.tokenizer(t.text, add_special_tokens=not chat)["input_ids"] for t in chunk]
        first = [token_at_char(model.tokenizer, t.text, len(t.prompt), add_special_tokens=not chat) for t in chunk]
        predicted = [max(len(ids) - f, 1) for ids, f in zip(encoded, first)]
        keep = max(predicted) + 1
        batch = pad_rows([torch.tensor(ids) for ids in encoded], [""] * len(chunk), False,
                         model.tokenizer.pad_token_id)
        logits, _ = model.run_with_cache(batch, [], "all", edits, logits=keep, batch_size=len(chunk))
        for b, n in enumerate(predicted):
            mask = torch.zeros(1, keep, dtype=torch.bool)
            mask[0, keep - 1 - n:keep - 1] = True
            out.append(float(mean_entropy(logits[b:b + 1], mask.to(logits.device))))
    return out


def answer_entropies(model, traces: list[Trace], edits: list, chat: bool, rows_per_pass: int = 4) -> list[float]:
    """Mean next-token entropy (nats) at each trace's answer tokens (its last step), with
    `edits` on; traces with fewer than two steps are left out (see `saes.confidence.answer_batch`)."""
    traces = [t for t in traces if len(t.steps) >= 2]
    out = []
    for start in range(0, len(traces), rows_per_pass):
        data = answer_batch(model, traces[start:start + rows_per_pass], chat, 1 << 30)
        logits, _ = model.run_with_cache(data.batch, [], "all", edits, logits=data.keep,
                                         batch_size=data.batch.input_ids.shape[0])
        out += [float(mean_entropy(logits[b:b + 1], data.answer_mask[b:b + 1].to(logits.device)))
                for b in range(logits.shape[0])]
    return out


def dose_response(model, vector: torch.Tensor, layer: int, alphas: list[float], problems: list[Problem],
                  separator: str, chat: bool, max_new_tokens: int, gen_batch: int,
                  progress: bool = True) -> tuple[list[dict], dict]:
    """(one row per alpha (see module doc), {alpha: first two responses})."""
    token_ids, sequences, _ = separator_tokens(model.tokenizer, separator)
    gen = CollectConfig(layers=[layer], separator=separator, max_new_tokens=max_new_tokens, gen_batch=gen_batch)
    judge = KeywordLabeller()

    reference = build_traces(model, problems, [None] * len(problems), gen, chat, progress)  # unsteered
    base = answer_entropies(model, reference, [], chat)
    rows, samples = [], {}
    for alpha in alphas:
        edits = [step_edit(vector, layer, alpha, "add", token_ids, sequences)]
        traces = reference if alpha == 0 else build_traces(_Steered(model, edits), problems, [None] * len(problems),
                                                           gen, chat, progress)
        entropy = response_entropies(model, traces, edits, chat)
        forced = base if alpha == 0 else answer_entropies(model, reference, edits, chat)  # alpha 0 edits nothing
        counts = [Counter(judge(s.text, t.question) for s in t.steps) for t in traces]
        lengths = [len(model.tokenizer(t.response, add_special_tokens=False)["input_ids"]) for t in traces]
        scored = [t.correct for t in traces if t.correct is not None]
        row = {"alpha": alpha, "traces": len(traces), "answer_traces": len(forced)}
        for name, values in [("answer_entropy", forced), ("answer_entropy_change", [f - b for f, b in zip(forced, base)]),
                             ("entropy", entropy), ("length", lengths), *[(b, [c[b] for c in counts]) for b in BEHAVIOURS]]:
            # no reference trace with two steps: nothing to read (None, not NaN, in the run's JSON)
            row[name], row[f"{name}_low"], row[f"{name}_high"] = interval([float(v) for v in values]) if values \
                else (None, None, None)
        row["accuracy"] = sum(scored) / len(scored) if scored else None
        row["accuracy_low"], row["accuracy_high"] = wilson(sum(scored), len(scored)) if scored else (None, None)
        rows.append(row)
        samples[str(alpha)] = [t.response for t in traces[:2]]
    return rows, samples


def monotone(rows: list[dict], key: str = "entropy") -> str:
    """Whether `key` moves one way over increasing alpha: "falling", "rising", else "mixed";
    "" when a row did not measure it."""
    values = [r[key] for r in sorted(rows, key=lambda r: r["alpha"])]
    if any(v is None for v in values):
        return ""
    steps = [b - a for a, b in zip(values, values[1:])]
    if steps and all(s < 0 for s in steps):
        return "falling"
    if steps and all(s > 0 for s in steps):
        return "rising"
    return "mixed"
