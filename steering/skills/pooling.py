"""Sequence-level activations: the mean of each layer's output over a text's tokens.

For every text and every chosen layer l, `blocks.{l}.hook_resid_post` (the decoder layer's
output) is averaged over the text's real tokens, leaving out padding (the engine's
attention mask) and the first real token. The paper leaves out BOS; we leave out the first
token whatever it is, because that is where the attention sink and its massive activations
sit: BOS where the tokenizer adds one, but in a model without a BOS (SmolLM2) the first
text token itself, whose |a| ~ 2e4 on one dimension would otherwise dominate every mean
and make the first direction measure text length (0.99 of the variance). The per-layer
means are
concatenated in layer order: one vector of n_layers_used * d_model per text. By default
the first and the last layer are left out (`layers="inner"`), as in the paper.

Truncation policy: a text longer than `max_tokens` (itself never more than the model's
context, `max_position_embeddings`) is cut to its first `max_tokens` tokens; how many
tokens were cut is recorded per text and reported, never an error.

Streaming: `pool_to_store` runs the texts through the engine in batches and writes one
shard per batch to an activation-store directory (the `interp.engine.store` layout: index.json
plus shard-NNNNN.safetensors, each with the site "pooled" [rows, D], "prompt_index",
"position" (0) and "n_tokens"). A rerun on the same directory with the same texts, model,
layers, truncation, BOS policy and dtype (`interp.engine.provenance`) skips the finished
batches (resume, also after `kill -9`, to the same files); a different capture there is
refused, naming each field that differs and both values. Under torchrun each process pools its
share of the batches (`ranks`, `interp.engine.shards`). Only one batch of token activations is ever in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from interp.engine.distributed import SINGLE, Ranks, check_enough_items
from interp.engine.provenance import provenance
from interp.engine.shards import ShardPlan, run_plan
from interp.engine.store import INDEX, ActivationStore, prompts_hash
from interp.engine.tokens import first_tokens

from ..apply import parse_layers

POOLED = "pooled"
SITE = "blocks.{layer}.hook_resid_post"


def resolve_layers(model, layers: str | Sequence[int] = "inner") -> list[int]:
    """"inner" (all but the first and last layer), "all", "4,8-12" or a list of ints."""
    n = model.n_layers
    if isinstance(layers, str):
        if layers == "inner":
            chosen = list(range(1, n - 1)) if n > 2 else list(range(n))
        elif layers == "all":
            chosen = list(range(n))
        else:
            chosen = parse_layers(layers)
    else:
        chosen = sorted({int(layer) for layer in layers})
    if not chosen:
        raise ValueError("no layers to pool")
    bad = [layer for layer in chosen if not 0 <= layer < n]
    if bad:
        raise ValueError(f"layer {bad[0]} out of range: the model has layers 0..{n - 1}")
    return chosen


def context_limit(model, max_tokens: int | None) -> int:
    """Tokens kept per text: `max_tokens`, never more than the model's context."""
    context = getattr(model.config, "max_position_embeddings", None) or 10**9
    if max_tokens is not None and max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2 (the first token is left out), got {max_tokens}")
    return int(min(context, max_tokens or context))


def pooled_batch(model, texts: Sequence[str], layers: Sequence[int], *, formatted: bool = False,
                 max_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pooled [b, len(layers) * d_model] float32, pooled tokens [b], tokens cut [b]) for one batch."""
    limit = context_limit(model, max_tokens)
    batch = model.tokenize(list(texts), formatted=formatted)
    full = torch.tensor(batch.lengths)  # [b]
    cut = (full - limit).clamp_min(0)
    if int(cut.max()) > 0:
        batch = first_tokens(batch, limit, model.tokenizer.pad_token_id or 0)
    sites = [SITE.format(layer=layer) for layer in layers]
    _, cache = model.run_with_cache(batch, sites, positions="all", to_cpu=True, dtype=torch.float32,
                                    logits=None, batch_size=len(texts))
    keep = real_token_mask(cache.attention_mask)  # [b, P]
    weights = keep.float() / keep.sum(-1, keepdim=True).clamp_min(1)  # [b, P]
    pooled = [torch.einsum("bp,bpd->bd", weights, cache[site]) for site in sites]  # each [b, d_model]
    return torch.cat(pooled, -1), keep.sum(-1), cut


def real_token_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[b, P] bool: real tokens minus each row's first one (BOS or the sink token; it is
    kept when it is a row's only token)."""
    mask = attention_mask.bool().clone()  # [b, P] left-padded
    n_real = mask.sum(-1)  # [b]
    first = mask.shape[1] - n_real  # [b] index of each row's first real token
    rows = torch.arange(mask.shape[0])
    drop = n_real > 1
    mask[rows[drop], first[drop]] = False
    return mask


def pool_to_store(model, texts: Sequence[str], layers: Sequence[int], path: str | Path, *,
                  formatted: bool = False, max_tokens: int | None = None, batch_size: int | str | None = None,
                  resume: bool = False, progress: bool = True, ranks: Ranks = SINGLE) -> ActivationStore:
    """Pool every text into a store at `path` (see the module docstring); `resume` reuses it.

    Batches follow `interp.engine.shards`: a resume after `kill -9` writes the files an
    uninterrupted run writes, and `ranks` (torchrun processes) split the batches."""
    path = Path(path)
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to pool")
    limit = context_limit(model, max_tokens)
    header = {
        "sites": [POOLED],
        "positions": "mean-over-real-tokens-without-the-first",
        "layers": list(layers),
        "site_template": SITE,
        "max_tokens": limit,
        "formatted": formatted,
        "n_prompts": len(texts),
        "prompts_sha256": prompts_hash(texts),
        # model, dtypes, BOS policy, token ids (cut to `limit`): a resume that differs is refused
        **provenance(model, texts, formatted=formatted, dtype=torch.float32, truncation=limit),
    }
    if (path / INDEX).is_file() and not resume:
        raise ValueError(f"{path} already holds pooled activations; pass --resume (resume=True) to reuse "
                         "its finished batches, or choose another store directory")
    check_enough_items(len(texts), ranks, "texts")
    plan = ShardPlan.open(path, header, [len(t) for t in texts], batch_size=batch_size, device=model.device,
                          ranks=ranks)

    def batch(rows: list[int]) -> dict[str, torch.Tensor]:
        pooled, n_tokens, cut = pooled_batch(model, [texts[i] for i in rows], layers, formatted=formatted,
                                             max_tokens=limit)
        return {POOLED: pooled, "prompt_index": torch.tensor(rows),
                "position": torch.zeros(len(rows), dtype=torch.long), "n_tokens": n_tokens, "truncated_tokens": cut}

    run_plan(plan, batch, progress=progress, desc="pool")
    return ActivationStore(path)


def iter_pooled(store: ActivationStore, min_rows: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(prompt indices [n], pooled rows [n, D]) in chunks of at least `min_rows` rows (the
    last chunk absorbs a short remainder), reading one shard at a time."""
    buf_idx: list[torch.Tensor] = []
    buf_rows: list[torch.Tensor] = []
    pending = 0
    held: tuple[np.ndarray, np.ndarray] | None = None
    for shard in store.shards():
        buf_idx.append(shard["prompt_index"])
        buf_rows.append(shard[POOLED])
        pending += len(shard["prompt_index"])
        if pending >= min_rows:
            if held is not None:
                yield held
            held = (torch.cat(buf_idx).numpy(), torch.cat(buf_rows).double().numpy())
            buf_idx, buf_rows, pending = [], [], 0
    if buf_idx:
        rest = (torch.cat(buf_idx).numpy(), torch.cat(buf_rows).double().numpy())
        held = rest if held is None else (np.concatenate([held[0], rest[0]]), np.concatenate([held[1], rest[1]]))
    if held is not None:
        yield held


def store_column(store: ActivationStore, key: str) -> np.ndarray:
    """A per-text column of the store (n_tokens, truncated_tokens) in text order."""
    values, _, _ = store.load(key)
    return values.numpy()
