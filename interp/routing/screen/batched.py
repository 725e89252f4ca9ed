"""Batched exact interchange: one batch row per (head, pair), lower layers computed once.

For a patch of head h in layer l, everything below layer l is the clean pass of the base
prompt. So each prompt runs clean once, caching `blocks.{l}.hook_resid_pre` and the donor's
`blocks.{l}.attn.hook_z` at every screened layer; then, per layer, one batch holds a row per
(head, pair), each row starting at layer l from the cached residual
(`interp.engine.partial.forward_from_layer`) with its own head patched from its pair's donor
(`interp.engine.row_edits.RowHeadSet`). Only the logits of the last K+1 positions are
unembedded. The numbers are those of the one-forward-per-patch loop (`naive.py`), up to the
float rounding of a different batch shape; tests/routing/screen proves it.

Cost per patch: (L - l) / L of a forward pass, in batches (OOM back-off from
`interp.engine.batching.run_batched`), versus a whole batch-size-1 forward in the naive loop.
A patch never touches the prefix the pair's prompts share (`PairTokens.shared_prefix`: the
chat header and common first words), so nothing there changes at any layer: each batch
runs only the tokens after the shortest shared prefix of its rows, reading the prefix's
keys and values from a cache of one clean pass per pair (`interp.engine.prefix`). With a
chat template this is about half of each sequence. Models whose sliding attention window
is shorter than the sequences run whole sequences instead (same numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch

from ...engine.batching import run_batched
from ...engine.partial import forward_from_layer
from ...engine.prefix import PrefixKV, check_window, prefix_kv
from ...engine.row_edits import RowHeadSet
from .align import aligned_donor
from .metric import continuation_nll
from .pairs import BENIGN, HARM, PairTokens

Unit = tuple[int, tuple[int, ...]]  # (layer, heads patched together in one row)


@dataclass
class CleanPass:
    """Clean runs of both members of some pairs: NLLs and the caches the patches need."""

    pairs: list[int]
    nll: torch.Tensor  # [c, 2] nats, column HARM / BENIGN
    resid: dict[tuple[int, int], dict[int, torch.Tensor]]  # (pair, member) -> layer -> [L_seq, d_model]
    z: dict[tuple[int, int], dict[int, torch.Tensor]]  # (pair, member) -> layer -> [L_prompt, H, d_head]
    prefix: PrefixKV | None = None  # keys/values of each pair's shared prefix (pair order), None: whole passes


@torch.inference_mode()
def clean_pass(model, tokens: PairTokens, pairs: Sequence[int], layers: Sequence[int], batch_size: int) -> CleanPass:
    """One clean forward over both members of `pairs`, capturing what every patch reads."""
    pairs = list(pairs)
    rows = [(i, m) for i in pairs for m in (HARM, BENIGN)]
    batch, cont = tokens.batch(rows)
    sites = [f"blocks.{l}.hook_resid_pre" for l in layers] + [f"blocks.{l}.attn.hook_z" for l in layers]
    logits, cache = model.run_with_cache(batch, sites, positions="all", logits=tokens.tail(), batch_size=batch_size)
    nll = continuation_nll(logits, batch.input_ids, cont).double().view(len(pairs), 2).cpu()
    resid, z = {}, {}
    for r, (i, m) in enumerate(rows):
        n_prompt = tokens.prompt_len(i, m)
        resid[(i, m)] = {l: cache.real(f"blocks.{l}.hook_resid_pre", r) for l in layers}
        z[(i, m)] = {l: cache.real(f"blocks.{l}.attn.hook_z", r)[:n_prompt] for l in layers}
    return CleanPass(pairs, nll, resid, z, pair_prefixes(model, tokens, pairs))


def after_shared_prefix(tokens: PairTokens, kv: PrefixKV | None, order: Sequence[int],
                        rows: Sequence[tuple[int, int]]):
    """(batch of each (pair, member) row's tokens after its pair's shared prefix, continuation
    lengths [b], the prefix length of each row [b], the cache of the prefixes for
    `forward_from_layer` / `run_with_grads`, laid out [b, max prefix] with each row's prefix
    at the right end).

    Each row skips its own pair's prefix, so a batch mixing pairs whose prefixes differ by a
    few tokens does not run the longer prefixes' tail (36% more tokens on the shipped pairs
    when every row started at the batch's shortest prefix). `kv` holds the prefixes of the
    pairs in `order` (`pair_prefixes`); with None the batch holds whole sequences (starts 0,
    no cache)."""
    if kv is None:
        batch, cont = tokens.batch(rows)
        return batch, cont, [0] * len(rows), None
    starts = [tokens.shared_prefix(i) for i, _ in rows]
    batch, cont = tokens.batch(rows, start=starts)
    return batch, cont, starts, kv.cache([order.index(i) for i, _ in rows], starts)


def pair_prefixes(model, tokens: PairTokens, pairs: Sequence[int]) -> PrefixKV | None:
    """The shared prefixes' keys and values, or None when whole passes must run (no prefix
    to share, or a sliding window shorter than the longest sequence)."""
    shared = [tokens.shared_prefix(i) for i in pairs]
    longest = max(int(tokens.sequence(i, m).shape[0]) for i in pairs for m in (HARM, BENIGN))
    try:
        check_window(model, longest)
    except ValueError:
        return None
    if min(shared) < 1:
        return None
    return prefix_kv(model, [tokens.prompts[i][HARM][:n] for i, n in zip(pairs, shared)])


@torch.inference_mode()
def patched_nll(model, tokens: PairTokens, clean: CleanPass, base: int, units: Sequence[Unit], align: str,
                batch_size: int) -> torch.Tensor:
    """NLL [U, c] of member `base` of each clean pair with each unit's heads patched from the
    other member (necessity: base=HARM; sufficiency: base=BENIGN), float64 on CPU."""
    out = torch.full((len(units), len(clean.pairs)), float("nan"), dtype=torch.float64)
    by_layer: dict[int, list[int]] = {}
    for u, (layer, _) in enumerate(units):
        by_layer.setdefault(layer, []).append(u)
    for layer, members in by_layer.items():
        rows = [(u, c) for u in members for c in range(len(clean.pairs))]
        lengths = [tokens.run_len(clean.pairs[c], base, after_prefix=clean.prefix is not None) for _, c in rows]
        run = partial(_run_rows, model, tokens, clean, base, units, layer, rows, align, tokens.tail())
        for chunk, nll in run_batched(lengths, run, batch_size):
            for k, value in zip(chunk, nll.tolist()):
                u, c = rows[k]
                out[u, c] = value
    return out


def _run_rows(model, tokens: PairTokens, clean: CleanPass, base: int, units: Sequence[Unit], layer: int,
              rows: list[tuple[int, int]], align: str, tail: int, chunk: list[int]) -> torch.Tensor:
    """NLL [len(chunk)] of the (unit, pair) rows `chunk`, all patching layer `layer`, in one pass."""
    donor = BENIGN if base == HARM else HARM
    picked = [rows[k] for k in chunk]
    pairs = [clean.pairs[c] for _, c in picked]
    batch, cont, starts, cache = after_shared_prefix(tokens, clean.prefix, clean.pairs, [(i, base) for i in pairs])
    width, device = batch.input_ids.shape[1], model.device  # tokens after the prefixes
    held = max(starts) if cache is not None else 0  # the cache's width
    resid = torch.zeros(len(picked), width, model.d_model, dtype=model.dtype, device=device)
    # edit layout: [cache (held) | pads | tokens after the row's prefix], the engine's layout after a cache
    values = torch.zeros(len(picked), held + width, model.n_heads, model.d_head, dtype=model.dtype, device=device)
    where = torch.zeros(len(picked), held + width, dtype=torch.bool)
    head_mask = torch.zeros(len(picked), model.n_heads, dtype=torch.bool)
    for r, ((u, _), i, start) in enumerate(zip(picked, pairs, starts)):
        real = clean.resid[(i, base)][layer][start:]
        pad = width - real.shape[0]
        resid[r, pad:] = real.to(device, resid.dtype)
        vals, ok = aligned_donor(tokens.prompt_len(i, base), clean.z[(i, donor)][layer].cpu(), align,
                                 tokens.shared_prefix(i), cont_len=int(tokens.continuations[i].shape[0]))
        left = held + pad  # column of real position `start`
        values[r, left: left + vals.shape[0] - start] = vals[start:].to(device, values.dtype)
        where[r, left: left + ok.shape[0] - start] = ok[start:]
        head_mask[r, list(units[u][1])] = True
    edit = RowHeadSet(f"blocks.{layer}.attn.hook_z", positions=where, values=values, head_mask=head_mask)
    logits = forward_from_layer(model, batch, layer, resid, edits=[edit], logits_to_keep=tail, prefix=cache)
    return continuation_nll(logits, batch.input_ids, cont).double().cpu()


def exact_scores(model, tokens: PairTokens, pairs: Sequence[int], heads: Sequence[tuple[int, int]], align: str,
                 batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(necessity [H, c], sufficiency [H, c], clean nll [c, 2]) for single-head patches, nats.

    necessity = NLL(harm) - NLL(harm | z_h <- z_h(benign));
    sufficiency = NLL(benign | z_h <- z_h(harm)) - NLL(benign)."""
    layers = sorted({layer for layer, _ in heads})
    clean = clean_pass(model, tokens, pairs, layers, batch_size)
    units = [(layer, (head,)) for layer, head in heads]
    nec = clean.nll[:, HARM][None, :] - patched_nll(model, tokens, clean, HARM, units, align, batch_size)
    suf = patched_nll(model, tokens, clean, BENIGN, units, align, batch_size) - clean.nll[:, BENIGN][None, :]
    return nec, suf, clean.nll
