"""Captures over prompts that all begin with the same tokens run that beginning once.

    _, cache = model.run_with_cache(prompts, sites, positions="last", chat=True, shared_prefix=True)

Causal attention means the first P tokens' keys and values do not depend on what follows
them. When every prompt of a call starts with the same P tokens (a chat template's system
header, a cipher preamble, BOS), one pass over those P tokens (batch 1) fills a KV cache
that every row reads, and each row runs only its own tokens after them
(`interp.engine.partial.forward_from_layer(prefix=...)`): a chat prompt of 45 tokens whose
first 25 are the template's header costs 20 / 45 of the whole pass. With
`StartAt(layer, clean)` the tokens after the prefix also start at that layer.

What it keeps exact (equal to the whole pass up to float rounding of other shapes; the tests
in `tests/engine/test_engine_shared_prefix.py` check four families):
- captures at positions="last" (any positions when no site is captured) and the last k
  logit columns, each row keeping at least
  max(k, 1) tokens after the prefix (P is capped to allow it);
- edits that act alike on every row at every position, because they also run in the prefix
  pass: `Zero`, `ProjectOut`, `Scale`, and `Add` with one alpha, each at positions "all".

What it refuses (ValueError, before any pass): captures at other positions, all logit
columns, attention patterns or scores (their key axis would hold the prefix in other
columns), and other edits (`Patch`, per-row `Add`, `Set`, position words other than "all").
A model whose sliding attention window is narrower than the batch runs whole passes
instead (pads sit between prefix and suffix and would count as distance).

Generation (`generate(..., shared_prefix=True)`) fills the KV cache with the prefix and
hands the model [prefix, pads, each row's rest] with the matching attention mask, so
`transformers` generates after the cached prefix; the returned sequences are laid out as
usual (left pads first). Edits at "last", "generated" and "last+generated" are free to
differ per row (they never reach the prefix); position indices, donor patches and
attention-pattern captures are refused (`check_generation_prefix`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .edits import Add, Edit, Patch, ProjectOut, Scale, Zero
from .row_edits import RowHeadSet
from .token_edits import OnTokens, refuse_sequences
from .sites import has_key_axis

if TYPE_CHECKING:
    from .model import Model, TokenBatch


def check_shared_prefix(sites: Sequence[str], positions, logits, edits: Sequence[Edit]) -> None:
    """ValueError naming what a shared-prefix capture cannot keep exact (see the module doc)."""
    if sites and not (isinstance(positions, str) and positions == "last"):
        raise ValueError(f"shared_prefix=True captures at positions='last' only (got {positions!r}): the prefix's "
                         "own positions are not run per row; pass shared_prefix=False")
    if logits == "all":
        raise ValueError("shared_prefix=True keeps the last logit columns only; pass logits='last', a number or None")
    keyed = [s for s in sites if has_key_axis(s)]
    if keyed:
        raise ValueError(f"shared_prefix=True cannot capture {keyed}: their key axis would hold the prefix in other "
                         "columns than a whole pass; pass shared_prefix=False")
    for edit in edits:
        refuse_sequences(edit, "shared_prefix=True", "pass shared_prefix=False")
        inner = _inner(edit)  # the prefix holds the same tokens in every row: OnTokens acts alike there
        alike = isinstance(inner, (Zero, ProjectOut, Scale)) or (
            isinstance(inner, Add) and not (isinstance(inner.alpha, torch.Tensor) and inner.alpha.ndim == 1))
        if not alike or not all(isinstance(e.positions, str) and e.positions == "all" for e in (edit, inner)):
            raise ValueError(f"shared_prefix=True runs the prefix once for all rows, so edits must act alike on "
                             f"every row at every position (Zero, ProjectOut, Scale, Add with one alpha; "
                             f"positions 'all'); got {type(edit).__name__} at positions {edit.positions!r} on "
                             f"'{edit.site}'; pass shared_prefix=False")


AFTER_PROMPT = ("last", "generated", "last+generated")  # position words that never touch a prefix of P <= n - 1


def check_generation_prefix(edits: Sequence[Edit], capture: Sequence[str], use_cache: bool,
                            hooks: Sequence = ()) -> list[Edit]:
    """ValueError naming what `generate(shared_prefix=True)` cannot keep exact; returns the
    edits that also act on the prefix (they run in its pass). Edits at "last", "generated"
    or "last+generated" (any kind but donor patches) never reach the prefix; edits at "all"
    or "prompt" must act alike on every row, as in `check_shared_prefix`. Raw `hooks` are
    refused: the engine cannot tell what they do, and they would never see the prefix."""
    if not use_cache:
        raise ValueError("shared_prefix=True reads the prefix from the KV cache; drop use_cache=False")
    if hooks:
        raise ValueError(f"shared_prefix=True runs the prefix in a pass of its own, which hooks= "
                         f"({', '.join(name for name, _ in hooks)}) would never see; pass shared_prefix=False")
    keyed = [s for s in capture if has_key_axis(s)]
    if keyed:
        raise ValueError(f"shared_prefix=True cannot capture {keyed}: their key axis would hold the prefix in other "
                         "columns than a whole pass; pass shared_prefix=False")
    on_prefix = []
    for edit in edits:
        refuse_sequences(edit, "shared_prefix=True", "pass shared_prefix=False")
        inner = _inner(edit)
        words = isinstance(edit.positions, str) and isinstance(inner.positions, str)
        if isinstance(inner, (Patch, RowHeadSet)) or not words:
            positions = inner.positions if isinstance(edit.positions, str) else edit.positions
            raise ValueError(f"shared_prefix=True lays prompts out as prefix, pads, rest, so {type(edit).__name__} at "
                             f"positions {positions!r} on '{edit.site}' would land elsewhere; use position words "
                             "or pass shared_prefix=False")
        if edit.positions not in AFTER_PROMPT and inner.positions not in AFTER_PROMPT:
            check_shared_prefix([], "last", None, [edit])
            on_prefix.append(edit)
    return on_prefix


def _inner(edit: Edit) -> Edit:
    """The edit an `OnTokens` wraps (its kind and positions decide exactness), else `edit`."""
    return _inner(edit.edit) if isinstance(edit, OnTokens) else edit


def common_prefix_length(batch: "TokenBatch", keep: int = 1) -> int:
    """Length of the token prefix every row of `batch` (left-padded) shares, capped so every
    row keeps at least max(keep, 1) tokens after it; 0 when the rows share nothing."""
    lengths = batch.attention_mask.sum(-1).long()  # [b]
    limit = int(lengths.min()) - max(int(keep), 1)
    if limit < 1:
        return 0
    width = batch.input_ids.shape[1]
    cols = (width - lengths)[:, None] + torch.arange(limit)[None, :]  # [b, limit] each row's first tokens
    heads = batch.input_ids.gather(1, cols)
    same = (heads == heads[:1]).all(0)  # [limit]
    return limit if bool(same.all()) else int((~same).long().argmax())


def first_tokens(batch: "TokenBatch", length: int) -> torch.Tensor:
    """The shared prefix's token ids [length] (row 0's first `length` real tokens)."""
    start = batch.input_ids.shape[1] - int(batch.attention_mask[0].sum())
    return batch.input_ids[0, start: start + length]


def after_shared(batch: "TokenBatch", length: int, pad_id: int) -> "TokenBatch":
    """Each row's tokens after the first `length`, left-padded among themselves [b, W - length]."""
    width = batch.input_ids.shape[1] - length
    left = batch.attention_mask.sum(-1).long() - length  # [b] tokens after the prefix
    keep = torch.arange(width)[None, :] >= (width - left)[:, None]
    ids = torch.where(keep, batch.input_ids[:, length:], torch.full_like(batch.input_ids[:, length:], pad_id))
    return dataclasses.replace(batch, input_ids=ids, attention_mask=keep.to(batch.attention_mask.dtype))


def fits_window(model: "Model", width: int) -> bool:
    """Whether every attention window covers `width` positions (see `prefix.check_window`)."""
    from .prefix import check_window

    try:
        check_window(model, width)
    except ValueError:
        return False
    return True
