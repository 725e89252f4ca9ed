"""Behaviour metrics measured per batch row, with expert toggles that differ between rows.

    refusal     1 if the greedy continuation is a refusal (interp.metrics.refusal), else 0
    prob        probability of `token` as the next token after the prompt
    argmax      1 if `token` is the most likely next token, else 0
    logit_diff  logit(token) - logit(token_b) for the next token

`measure(model, prompts, behaviour, toggles)` runs every (prompt, toggle set) pair as one
batch row, so N single-expert candidates cost one batched pass over N x prompts rows
(chunked to `rows_per_batch`), not N separate runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..engine.experts import Expert, expert_toggles
from ..metrics.refusal import classify_response

METRICS = ("refusal", "prob", "argmax", "logit_diff")


@dataclass
class Behaviour:
    """What to measure; `token`/`token_b` are strings that must encode to one token each."""

    metric: str = "refusal"
    token: str | None = None
    token_b: str | None = None
    max_new_tokens: int = 32
    chat: bool = False

    def check(self, model) -> None:
        """ValueError before any work when the metric or its tokens do not fit the model."""
        if self.metric not in METRICS:
            raise ValueError(f"unknown behaviour metric '{self.metric}': use one of {', '.join(METRICS)}")
        if self.metric in ("prob", "argmax", "logit_diff") and self.token is None:
            raise ValueError(f"metric '{self.metric}' needs a behaviour token (--behaviour-token)")
        if self.metric == "logit_diff" and self.token_b is None:
            raise ValueError("metric 'logit_diff' needs a second token (--contrast-token)")
        for text in (self.token, self.token_b):
            if text is not None:
                token_id(model, text)

    @property
    def label(self) -> str:
        if self.metric == "refusal":
            return "refusal rate"
        if self.metric == "logit_diff":
            return f"logit({self.token!r}) - logit({self.token_b!r})"
        return f"{self.metric} of {self.token!r}"


def token_id(model, text: str) -> int:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"behaviour token {text!r} is {len(ids)} tokens for this tokenizer; give one token")
    return int(ids[0])


def _row_values(model, texts: list[str], edits, behaviour: Behaviour) -> torch.Tensor:
    if behaviour.metric == "refusal":
        out = model.generate(texts, edits=edits, chat=behaviour.chat, max_new_tokens=behaviour.max_new_tokens)
        return torch.tensor([float(classify_response(t) == "refusal") for t in out.texts])
    logits = model.forward(texts, edits=edits, chat=behaviour.chat)[:, -1].float().cpu()
    a = token_id(model, behaviour.token)
    if behaviour.metric == "prob":
        return logits.softmax(-1)[:, a]
    if behaviour.metric == "argmax":
        return (logits.argmax(-1) == a).float()
    return logits[:, a] - logits[:, token_id(model, behaviour.token_b)]


def measure(model, prompts: Sequence[str], behaviour: Behaviour,
            toggles: Sequence[tuple[Sequence[Expert], Sequence[Expert]]] = (((), ()),),
            rows_per_batch: int = 64, progress: bool = False) -> torch.Tensor:
    """Mean behaviour value [len(toggles)] over `prompts`, one (off, on) toggle set each.

    Rows are (toggle set, prompt) pairs, run `rows_per_batch` at a time; each toggle set acts
    only on its own rows. Every toggle set is checked against the model first (ValueError on
    a bad index).
    """
    prompts, toggles = list(prompts), list(toggles)
    if not prompts:
        raise ValueError("no prompts to measure the behaviour on")
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
    for off, on in toggles:
        if off or on:
            expert_toggles(model, off, on)
    pairs = [(t, p) for t in range(len(toggles)) for p in range(len(prompts))]
    values = torch.empty(len(pairs))
    starts = range(0, len(pairs), rows_per_batch)
    for start in tqdm(starts, desc="experts", disable=not progress, leave=False):
        chunk = pairs[start:start + rows_per_batch]
        texts = [prompts[p] for _, p in chunk]
        edits = []
        for t in sorted({t for t, _ in chunk}):
            off, on = toggles[t]
            if off or on:
                rows = [i for i, (u, _) in enumerate(chunk) if u == t]
                edits += expert_toggles(model, off, on, rows=rows)
        values[start:start + len(chunk)] = _row_values(model, texts, edits, behaviour)
    return values.view(len(toggles), len(prompts)).mean(-1)
