"""Keys and values of token prefixes, so that later passes start after them.

    kv = prefix_kv(model, [ids_a, ids_b])             # one cached pass per prefix length
    cache = kv.cache(rows=[0, 1, 1], length=20)        # fresh HF cache for a batch of 3 rows
    cache = kv.cache(rows=[0, 1], length=[20, 23])     # each row after its own prefix length
    logits = forward_from_layer(model, suffixes, layer, resid, edits=[...], prefix=cache)

Causal attention means the hidden states of the first P tokens of a sequence do not depend
on anything after them. A pass that only changes positions at or after P (an interchange
of a head's `z` outside a prompt prefix the two prompts share) can therefore run on the
tokens after P alone, reading the prefix's keys and values, which are those of the clean
pass, from a KV cache: the same numbers as the whole pass up to float rounding, at
(T - P) / T of its cost. `tests/engine/test_engine_prefix.py` checks it against whole
passes, with padded batches of different prefixes and suffix lengths.

The cache is a `transformers.DynamicCache` built from the model's own cached pass over each
prefix (unpadded, positions 0..P-1), so it holds exactly what the model would cache there,
for every layer type the model has (sliding-window layers included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model import Model


@dataclass
class PrefixKV:
    """Per prefix i and layer l: keys and values [kv_heads, P_i, d_head] on the model's device."""

    keys: list[list[torch.Tensor]]
    values: list[list[torch.Tensor]]
    config: object  # the HF config the caches are built for

    def length(self, prefix: int) -> int:
        return int(self.keys[prefix][0].shape[-2])

    def cache(self, rows: Sequence[int], length: int | Sequence[int]):
        """A fresh `DynamicCache` [len(rows), kv_heads, P, d_head] per layer for a batch whose
        row r continues prefix `rows[r]`. `length` an int: every row holds its prefix's first
        `length` positions (P = length). One length per row: row r holds its first length[r]
        positions at the right end, after zero keys and values that `after_prefix` masks out
        (P = max(length)), so rows of different prefixes each skip their own. A pass consumes
        the cache (appends its own keys), so build one per pass. ValueError if a prefix is
        shorter than its length or a length is below 1."""
        from transformers import DynamicCache

        rows = [int(r) for r in rows]
        per_row = not isinstance(length, int)
        lengths = [int(n) for n in length] if per_row else [int(length)] * len(rows)
        if len(lengths) != len(rows):
            raise ValueError(f"{len(lengths)} prefix lengths for {len(rows)} rows")
        short = [r for r, n in zip(rows, lengths) if self.length(r) < n or n < 1]
        if short:
            raise ValueError(f"prefix length(s) {lengths} exceed prefix(es) {sorted(set(short))} (or are below 1); "
                             "use at most each row's own prefix length")
        width = max(lengths)
        cache = DynamicCache(config=self.config)
        for layer in range(len(self.keys[rows[0]])):
            k = torch.stack([_left_pad(self.keys[r][layer][:, :n], width) for r, n in zip(rows, lengths)])
            v = torch.stack([_left_pad(self.values[r][layer][:, :n], width) for r, n in zip(rows, lengths)])
            cache.update(k, v, layer)
        if per_row:
            cache.steerlens_prefix_lengths = torch.tensor(lengths)  # read by after_prefix
        return cache


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """[kv_heads, n, d] -> [kv_heads, width, d] with zeros before the n positions."""
    missing = width - t.shape[-2]
    return torch.cat([t.new_zeros((t.shape[0], missing, t.shape[-1])), t], dim=-2) if missing else t


@torch.no_grad()  # not inference mode: a pass that takes gradients after the prefix reads these tensors
def prefix_kv(model: "Model", prefixes: Sequence[torch.Tensor | Sequence[int]], edits: Sequence = ()) -> PrefixKV:
    """Keys and values of each prefix (real token ids, BOS included where the model uses one).

    Prefixes of equal length run together in one cached pass without padding. `edits` are
    active during that pass (for later passes whose edits also act on the prefix).
    Raises ValueError for an empty prefix."""
    ids = [torch.as_tensor(p, dtype=torch.long).flatten() for p in prefixes]
    if any(p.numel() == 0 for p in ids):
        raise ValueError("a prefix needs at least one token")
    keys: list = [None] * len(ids)
    values: list = [None] * len(ids)
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(ids):
        by_length.setdefault(int(p.numel()), []).append(i)
    for members in by_length.values():
        batch = torch.stack([ids[i] for i in members]).to(model.device)
        with model.hooks([], list(edits)):
            out = model.hf(input_ids=batch, attention_mask=torch.ones_like(batch), use_cache=True, logits_to_keep=1)
        layers = returned_cache(out).layers
        for r, i in enumerate(members):
            keys[i] = [layer.keys[r].clone() for layer in layers]
            values[i] = [layer.values[r].clone() for layer in layers]
    return PrefixKV(keys, values, model.hf.config)


def cache_kwarg(model: "Model") -> str:
    """The forward argument that takes a KV cache: `cache` from transformers 5.24 on,
    `past_key_values` before (found from the signature, not from the version)."""
    import inspect

    params = inspect.signature(model.hf.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(out):
    """The `transformers.Cache` a forward pass returned, whatever the field is called."""
    from transformers import Cache

    for name in ("cache", "past_key_values"):
        value = getattr(out, name, None)
        if isinstance(value, Cache):
            return value
    raise ValueError("the model returned no KV cache; it cannot start passes after a prefix")


def check_window(model: "Model", width: int) -> None:
    """ValueError unless every attention layer sees `width` positions in full.

    After a prefix the pads sit between prefix and suffix, and a sliding-window mask counts
    them as distance, so a window shorter than the padded width would cut real tokens off."""
    config = model.hf.config
    window = getattr(config, "sliding_window", None)
    kinds = set(getattr(config, "layer_types", None) or [])
    sliding = bool(window) and (not kinds or kinds & {"sliding_attention", "chunked_attention"}) \
        and getattr(config, "use_sliding_window", True) is not False
    if sliding and width > int(window):
        raise ValueError(f"passes after a prefix need every attention window to cover the padded width: "
                         f"the model's sliding window is {window} tokens and the pass spans {width}; "
                         "run without a prefix")


def after_prefix(model: "Model", batch, prefix, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention mask, position ids) of a pass over `batch`, after `prefix` (a cache, or None
    for a whole pass); puts the cache and `use_cache` into the forward's `kwargs`."""
    mask, positions = batch.attention_mask, batch.position_ids()
    if prefix is None:
        kwargs["use_cache"] = False
        return mask, positions
    start = int(prefix.get_seq_length())
    lengths = getattr(prefix, "steerlens_prefix_lengths", None)  # per row: real prefix at the cache's right end
    if lengths is None:
        lengths = torch.full((mask.shape[0],), start, dtype=torch.long)
    held = torch.arange(start)[None, :] >= (start - lengths)[:, None]
    mask = torch.cat([held.to(mask.dtype), mask.cpu()], dim=1)
    check_window(model, int(mask.shape[1]))
    kwargs.update({cache_kwarg(model): prefix, "use_cache": True})
    return mask, positions + lengths[:, None].to(positions.device)
