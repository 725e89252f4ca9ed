"""The interchange metric: mean NLL of a fixed continuation scored after a prompt.

arXiv 2604.04385, step 3: the continuation is the first <= 5 non-special greedy tokens the
model produces for the benign prompt; NLL(prompt) is the mean over those tokens of
-log p(token | prompt, previous tokens), in nats per token. Used by the ablation step
(the screen in `interp.routing.screen` computes the same metric for interchange).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..engine.edits import Edit
from ..engine.model import TokenBatch
from .screen.metric import continuation_nll as tail_nll


def prompt_ids(model, prompts: Sequence[str], chat: bool) -> list[list[int]]:
    """Token ids of each prompt (chat template applied when `chat`), unpadded."""
    batch = model.tokenize(list(prompts), chat=chat)
    return [row[mask.bool()].tolist() for row, mask in zip(batch.input_ids, batch.attention_mask)]


def scored_batch(model, prompts: Sequence[str], continuations: Sequence[Sequence[int]], chat: bool) -> tuple[TokenBatch, torch.Tensor]:
    """Left-padded prompt + continuation ids, and a [b, P] bool mask of the positions whose
    next-token prediction is scored (the last prompt token up to the second-last new token)."""
    rows = [ids + list(map(int, cont)) for ids, cont in zip(prompt_ids(model, prompts, chat), continuations)]
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
    scored = torch.zeros_like(mask, dtype=torch.bool)
    for i, cont in enumerate(continuations):
        scored[i, width - len(cont) - 1 : width - 1] = True
    return TokenBatch(ids, mask, list(prompts)), scored


def continuation_nll(model, prompts: Sequence[str], continuations: Sequence[Sequence[int]], *,
                     edits: Sequence[Edit] = (), chat: bool = True, batch_size: int = 8,
                     shared_prefix: bool = False) -> torch.Tensor:
    """Mean NLL (nats/token) of each continuation after its prompt, with `edits`: float64 [n].

    Edits see the prompt and the continuation as one sequence (positions over real tokens).
    `shared_prefix=True` runs each chunk's common first tokens once (`interp.engine.shared_prefix`).
    Raises ValueError if a continuation is empty or lengths differ."""
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if any(len(c) == 0 for c in continuations):
        raise ValueError("a continuation is empty; every pair needs at least one continuation token")
    out = []
    for batch, cont, keep in scored_chunks(model, prompts, continuations, chat, batch_size):
        logits, _ = model.run_with_cache(batch, [], edits=edits, logits=keep, batch_size=len(cont),
                                         shared_prefix=shared_prefix)
        out.append(tail_nll(logits, batch.input_ids, cont).double().cpu())
    return torch.cat(out)


def scored_chunks(model, prompts: Sequence[str], continuations: Sequence[Sequence[int]], chat: bool,
                  batch_size: int) -> Iterator[tuple[TokenBatch, torch.Tensor, int]]:
    """Per chunk of `batch_size` prompts: the left-padded prompt + continuation batch, the
    continuation lengths [b], and the logit columns to keep (`run_with_cache(logits=keep)`:
    only the columns that predict the continuation are unembedded)."""
    for start in range(0, len(prompts), batch_size):
        chunk = slice(start, start + batch_size)
        batch, _ = scored_batch(model, prompts[chunk], continuations[chunk], chat)
        cont = torch.tensor([len(c) for c in continuations[chunk]])
        yield batch, cont, int(cont.max()) + 1
