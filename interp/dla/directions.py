"""Directions to attribute logits to: tokens, token differences, token-set means, any vector.

Direct logit attribution (Elhage et al. 2021) scores a residual component `c` against a
direction `d` in the space the unembedding reads (after the final norm): the metric is

    metric = ln_final(resid) . d + bias

For tokens, `d = W_U^T w` for weights `w` over the vocabulary (+1 for a target token,
-1 for a contrast token, 1/n over a set) and `bias = b_U . w`, so the metric is exactly
the (pre-soft-cap) logit or logit difference the model computes. A free vector has no
bias and its metric is `ln_final(resid) . d`.

The refusal direction of "How Alignment Routes" (arXiv 2604.04385)
is a token-set direction: the mean unembedding row over the first token of each refusal
opener (with and without a leading space) minus the row of the first non-whitespace greedy
token the model gives for the benign prompt. Deliberate choice: the set of first tokens is
de-duplicated before taking the mean (the paper's text does not say whether "cannot" and
"can't" sharing a first token count twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..arch.spec import unembed_bias, unembed_weight

REFUSAL_OPENERS = ("I", "I'm", "Sorry", "cannot", "can't", "unable", "As", "Unfortunately")

TokenSpec = str | int | Sequence[str | int]


@dataclass
class Direction:
    """A direction in final-normed residual space plus a constant (see module docstring).

    `vector` is [d_model], or [b, d_model] with one direction per prompt (then `bias` is
    [b]). `tokens` lists (token id, weight) pairs for token directions; empty for a vector.
    """

    vector: torch.Tensor  # [d_model] or [b, d_model], float64
    bias: torch.Tensor  # [] or [b], float64
    label: str
    tokens: list[tuple[int, float]] = field(default_factory=list)

    @property
    def batched(self) -> bool:
        return self.vector.ndim == 2

    def per_prompt(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(vector [n, d_model], bias [n]) for n prompts."""
        if self.batched:
            if self.vector.shape[0] != n:
                raise ValueError(f"direction '{self.label}' has {self.vector.shape[0]} rows for {n} prompts")
            return self.vector, self.bias
        return self.vector.expand(n, -1), self.bias.expand(n)

    def value_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The metric read from logits [b, V] (token directions only): [b]."""
        if not self.tokens:
            raise ValueError(f"direction '{self.label}' is a free vector; it has no logit value")
        ids = torch.tensor([t for t, _ in self.tokens], device=logits.device)
        weights = torch.tensor([w for _, w in self.tokens], dtype=torch.float64, device=logits.device)
        return logits.double()[:, ids] @ weights


def single_token_id(model, text: str, what: str = "target") -> int:
    """The id of `text` if it is exactly one token; a one-line ValueError otherwise."""
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) == 1:
        return int(ids[0])
    if not ids:
        raise ValueError(f"{what} {text!r} encodes to no tokens; pass a non-empty string or --{what}-id")
    pieces = [model.tokenizer.decode([i]) for i in ids]
    raise ValueError(f"{what} {text!r} is not a single token: it splits into {pieces} (ids {ids}); "
                     f"pass one of them, or --{what}-id ID")


def first_token_id(model, text: str) -> int:
    """The first token of `text` (no special tokens)."""
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"{text!r} encodes to no tokens")
    return int(ids[0])


def resolve_tokens(model, spec: TokenSpec, what: str = "target") -> list[int]:
    """Token ids of a string, an id, or a sequence of them (a set); range-checked."""
    items = [spec] if isinstance(spec, (str, int)) else list(spec)
    if not items:
        raise ValueError(f"{what}: empty token set")
    ids = []
    for item in items:
        token = single_token_id(model, item, what) if isinstance(item, str) else int(item)
        if not 0 <= token < model.d_vocab:
            raise ValueError(f"{what} id {token} out of range: vocabulary has ids 0..{model.d_vocab - 1}")
        ids.append(token)
    return list(dict.fromkeys(ids))


def _describe(model, ids: list[int]) -> str:
    words = [repr(model.tokenizer.decode([i])) for i in ids]
    return words[0] if len(words) == 1 else "mean{" + ", ".join(words) + "}"


def _unembed(model) -> tuple[torch.Tensor, torch.Tensor | None]:
    return unembed_weight(model.spec, model.hf), unembed_bias(model.spec, model.hf)


def weights_direction(model, weights: dict[int, float], label: str) -> Direction:
    """Direction of a weighted sum of logits: sum_t weights[t] * logit_t."""
    w_u, b_u = _unembed(model)  # [V, d_model], [V] | None
    ids = torch.tensor(list(weights), device=w_u.device)
    w = torch.tensor(list(weights.values()), dtype=torch.float64, device=w_u.device)  # [k]
    vector = (w_u[ids].double() * w[:, None]).sum(0)  # [d_model]
    bias = (b_u[ids].double() * w).sum() if b_u is not None else torch.zeros((), dtype=torch.float64, device=w_u.device)
    return Direction(vector, bias, label, [(int(t), float(v)) for t, v in weights.items()])


def token_direction(model, target: TokenSpec, contrast: TokenSpec | None = None, label: str | None = None) -> Direction:
    """Logit of one token, or the mean logit of a token set, minus that of `contrast` (if any).

    `target` / `contrast`: a string that must be one token, an id, or a sequence of them
    (its mean is used).
    """
    pos = resolve_tokens(model, target, "target")
    weights: dict[int, float] = {t: 1.0 / len(pos) for t in pos}
    name = _describe(model, pos)
    if contrast is not None:
        neg = resolve_tokens(model, contrast, "contrast")
        overlap = set(pos) & set(neg)
        if overlap:
            raise ValueError(f"target and contrast share token ids {sorted(overlap)}; the difference would cancel them")
        weights.update({t: -1.0 / len(neg) for t in neg})
        name = f"{name} - {_describe(model, neg)}"
    return weights_direction(model, weights, label or name)


def vector_direction(model, vector: torch.Tensor, label: str = "vector") -> Direction:
    """Any residual-space vector [d_model] (or [b, d_model], one per prompt); no bias."""
    vector = torch.as_tensor(vector).to(device=model.device, dtype=torch.float64)
    if vector.shape[-1] != model.d_model or vector.ndim not in (1, 2):
        raise ValueError(f"direction vector must be [d_model={model.d_model}] or [b, d_model], got {list(vector.shape)}")
    bias = torch.zeros(vector.shape[:-1], dtype=torch.float64, device=vector.device)
    return Direction(vector, bias, label)


def stack_directions(directions: Sequence[Direction], label: str | None = None) -> Direction:
    """One direction per prompt, from a list of single directions."""
    if not directions or any(d.batched for d in directions):
        raise ValueError("stack_directions needs a non-empty list of single (unbatched) directions")
    vector = torch.stack([d.vector for d in directions])  # [b, d_model]
    bias = torch.stack([d.bias for d in directions])  # [b]
    return Direction(vector, bias, label or "per-prompt directions")


def refusal_token_ids(model) -> list[int]:
    """Distinct first tokens of the refusal openers, with and without a leading space."""
    texts = [w for word in REFUSAL_OPENERS for w in (word, " " + word)]
    return list(dict.fromkeys(first_token_id(model, t) for t in texts))


def first_nonspace_token(model, token_ids: Sequence[int]) -> int:
    """The first id in a generated sequence whose text is not whitespace only."""
    special = set(getattr(model.tokenizer, "all_special_ids", []) or [])
    for token in token_ids:
        token = int(token)
        if token not in special and model.tokenizer.decode([token]).strip():
            return token
    raise ValueError("the generated tokens hold no non-whitespace, non-special token")


def refusal_direction(model, benign_tokens: int | str | Sequence[int | str]) -> Direction:
    """Mean refusal-opener unembedding minus the benign prompt's first greedy token.

    `benign_tokens`: one token (id or single-token string) -> one direction; a sequence
    (one per prompt pair) -> a batched direction with one row per pair. A benign token that
    is itself a refusal opener is kept on both sides (its weight is the difference).
    """
    refusal = refusal_token_ids(model)

    def one(benign: int | str) -> Direction:
        token = resolve_tokens(model, benign, "benign token")[0]
        weights = {t: 1.0 / len(refusal) for t in refusal}
        weights[token] = weights.get(token, 0.0) - 1.0
        return weights_direction(model, weights, f"refusal - {model.tokenizer.decode([token])!r}")

    if isinstance(benign_tokens, (int, str)):
        return one(benign_tokens)
    return stack_directions([one(b) for b in benign_tokens], label="refusal - benign first token (per prompt)")
