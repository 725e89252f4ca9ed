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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch

from ...engine.batching import run_batched
from ...engine.partial import forward_from_layer
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


@torch.inference_mode()
def clean_pass(model, tokens: PairTokens, pairs: Sequence[int], layers: Sequence[int], batch_size: int) -> CleanPass:
    """One clean forward over both members of `pairs`, capturing what every patch reads."""
    pairs = list(pairs)
    rows = [(i, m) for i in pairs for m in (HARM, BENIGN)]
    batch, cont = tokens.batch(rows)
    sites = [f"blocks.{l}.hook_resid_pre" for l in layers] + [f"blocks.{l}.attn.hook_z" for l in layers]
    logits, cache = model.run_with_cache(batch, sites, positions="all", logits="all", batch_size=batch_size)
    nll = continuation_nll(logits, batch.input_ids, cont).double().view(len(pairs), 2).cpu()
    resid, z = {}, {}
    for r, (i, m) in enumerate(rows):
        n_prompt = tokens.prompt_len(i, m)
        resid[(i, m)] = {l: cache.real(f"blocks.{l}.hook_resid_pre", r) for l in layers}
        z[(i, m)] = {l: cache.real(f"blocks.{l}.attn.hook_z", r)[:n_prompt] for l in layers}
    return CleanPass(pairs, nll, resid, z)


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
        lengths = [tokens.prompt_len(clean.pairs[c], base) for _, c in rows]
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
    batch, cont = tokens.batch([(i, base) for i in pairs])
    width = batch.input_ids.shape[1]
    resid = torch.zeros(len(picked), width, model.d_model, dtype=model.dtype)
    values = torch.zeros(len(picked), width, model.n_heads, model.d_head, dtype=model.dtype)
    where = torch.zeros(len(picked), width, dtype=torch.bool)
    head_mask = torch.zeros(len(picked), model.n_heads, dtype=torch.bool)
    for r, ((u, _), i) in enumerate(zip(picked, pairs)):
        real = clean.resid[(i, base)][layer]
        pad = width - real.shape[0]
        resid[r, pad:] = real.to(resid.dtype)
        vals, ok = aligned_donor(tokens.prompt_len(i, base), clean.z[(i, donor)][layer].cpu(), align)
        values[r, pad: pad + vals.shape[0]] = vals.to(values.dtype)
        where[r, pad: pad + ok.shape[0]] = ok
        head_mask[r, list(units[u][1])] = True
    edit = RowHeadSet(f"blocks.{layer}.attn.hook_z", positions=where, values=values, head_mask=head_mask)
    logits = forward_from_layer(model, batch, layer, resid, edits=[edit], logits_to_keep=tail)
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
