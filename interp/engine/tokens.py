"""Token-batch helpers: cut rows to their first tokens, left-pad rows into a `TokenBatch`."""

from __future__ import annotations

import torch

from .model import TokenBatch


def first_tokens(batch: TokenBatch, n: int, pad_id: int = 0) -> TokenBatch:
    """Each row cut to its first `n` real tokens, re-left-padded."""
    rows = [ids[mask.bool()][:n] for ids, mask in zip(batch.input_ids, batch.attention_mask)]
    return pad_rows(rows, batch.texts, batch.bos_added, pad_id)


def pad_rows(rows: list[torch.Tensor], texts: list[str], bos_added: bool, pad_id: int) -> TokenBatch:
    """Left-pad 1-D id rows into a `TokenBatch` (pads masked out)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return TokenBatch(ids, mask, list(texts), bos_added)
