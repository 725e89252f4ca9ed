"""Attribution patching (AtP): a first-order estimate of every head's interchange effect.

Nanda 2023; Kramár et al. 2024, "AtP*: An efficient and scalable method for localizing LLM
behaviour to components" (arXiv 2403.00745). For the patch `z_h <- z_h(donor)` on base
prompt b, the change of the metric M (continuation NLL, `metric.py`) is estimated as

    dM(h) ~= sum over patched positions p of (z_h^donor[p'] - z_h^b[p]) . dM/dz_h^b[p]

with p' the donor position aligned to p (`align.py`, the same alignment as the exact
screen), and the gradient taken on the clean base pass. One forward and one backward pass
per prompt give the estimate for every head of every layer and both directions (the
passes run after the pair's shared prefix, which is never patched; `batched.py`):
necessity = -dM on the harmful base (benign donor), sufficiency = +dM on the benign base
(harmful donor).

AtP*'s QK fix is not needed here, and is not implemented. That fix exists because AtP on a
node *upstream of a softmax it feeds*, patching queries or keys of a head, linearises the
attention softmax, which fails where the softmax is saturated (gradient ~0, real effect
large); AtP* recomputes the softmax exactly for the patched queries/keys. Our nodes are
`z_h`, the head's output after its own softmax and value mixing, and the patch replaces
`z_h` itself: the patched head's pattern is neither changed nor linearised, so there is no
QK term to fix at the node. Softmaxes of later heads do see the patched residual, and those
are linearised (as in AtP*, whose QK fix also covers only the patched node's own
attention), as are the later MLPs and norms and the log-softmax of the NLL. GradDrop, AtP*'s
correction for cancelling direct and indirect paths, is not implemented either. Both
remaining error sources are why `method="atp+exact"` re-measures AtP's top heads plus a
random sample of the rest exactly, and reports the rank agreement and the misses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ...engine.batching import run_batched
from ...engine.edits import Edit
from ...engine.gradients import run_with_grads
from .align import aligned_donor
from .batched import after_shared_prefix, pair_prefixes
from .metric import continuation_nll
from .pairs import BENIGN, HARM, PairTokens

Metric = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
EditsFn = Callable[[list, object, list, int], Sequence[Edit]]


def prompt_grads(model, tokens: PairTokens, rows: Sequence[tuple[int, int]], layers: Sequence[int],
                 batch_size: int, metric: Metric = continuation_nll, *, continuation: bool = False,
                 edits: EditsFn | None = None):
    """Per (pair, member) row: (M, {layer: z [L, H, d]}, {layer: dM/dz [same]}), L = the
    prompt's length (`continuation`: prompt + continuation, for align="paper").

    `metric(logits_tail, input_ids, cont) -> [b]` defaults to the continuation NLL.
    `edits(picked rows, batch, starts, held) -> [Edit]`: edits of the pass (IG's interpolation,
    laid out over [b, held + width] as in `batched.py`); z is then the edited value."""
    rows = list(rows)
    sites = [f"blocks.{l}.attn.hook_z" for l in layers]
    tail = tokens.tail()
    pairs = sorted({i for i, _ in rows})
    kv = pair_prefixes(model, tokens, pairs)  # the shared prefix is never patched: its z is not needed

    def run(chunk: list[int]):
        picked = [rows[k] for k in chunk]
        batch, cont, starts, cache = after_shared_prefix(tokens, kv, pairs, picked)
        held = max(starts) if cache is not None else 0
        extra = edits(picked, batch, starts, held) if edits is not None else ()
        value, acts, grads = run_with_grads(model, batch, sites, lambda logits: metric(logits, batch.input_ids, cont),
                                            extra, logits_to_keep=tail, prefix=cache)
        out = []
        for r, ((i, m), start) in enumerate(zip(picked, starts)):
            n = tokens.prompt_len(i, m) + (int(cont[r]) if continuation else 0)
            pad = int((batch.attention_mask[r] == 0).sum())
            z = {l: _from(acts[s][r, pad: pad + n - start], start) for l, s in zip(layers, sites)}
            g = {l: _from(grads[s][r, pad: pad + n - start], start) for l, s in zip(layers, sites)}
            out.append((float(value[r]), z, g))
        return out

    found = {}
    lengths = [tokens.run_len(i, m, after_prefix=kv is not None) for i, m in rows]
    for chunk, results in run_batched(lengths, run, batch_size):
        for k, res in zip(chunk, results):
            found[rows[k]] = res
    return found


def _from(values: torch.Tensor, start: int) -> torch.Tensor:
    """[start + n, ...] on the CPU: zeros for the prefix positions the pass did not run."""
    values = values.cpu()
    return torch.cat([values.new_zeros((start, *values.shape[1:])), values]) if start else values


def atp_scores(model, tokens: PairTokens, pairs: Sequence[int], heads: Sequence[tuple[int, int]], align: str,
               batch_size: int, metric: Metric = continuation_nll) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(AtP necessity [H, c], AtP sufficiency [H, c], clean NLL [c, 2]) in nats, float64.

    necessity = -(estimated change of M on the harmful base), sufficiency = +(change on the
    benign base); `metric` as in `prompt_grads` (tests pass a linear one)."""
    pairs = list(pairs)
    layers = sorted({layer for layer, _ in heads})
    found = prompt_grads(model, tokens, [(i, m) for i in pairs for m in (HARM, BENIGN)], layers, batch_size, metric,
                         continuation=align == "paper")
    grads = {row: {layer: g.double() for layer, g in res[2].items()} for row, res in found.items()}
    return attribution(tokens, pairs, heads, align, found, grads)


def attribution(tokens: PairTokens, pairs: Sequence[int], heads: Sequence[tuple[int, int]], align: str,
                found: dict, grads: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(necessity [H, c], sufficiency [H, c], clean NLL [c, 2]): per head and pair, the sum over
    patched positions of (donor z - base z) . grad, float64. `found`: `prompt_grads` of the clean
    passes (values and z); `grads`: {(pair, member): {layer: float64 gradient [L, H, d]}}, the
    clean pass's (AtP) or the mean over an interpolation path (IG, `ig.py`)."""
    layers = sorted({layer for layer, _ in heads})
    layer_ix = torch.tensor([layers.index(layer) for layer, _ in heads])
    head_ix = torch.tensor([head for _, head in heads])
    nec = torch.zeros(len(heads), len(pairs), dtype=torch.float64)
    suf = torch.zeros_like(nec)
    nll = torch.zeros(len(pairs), 2, dtype=torch.float64)
    for c, i in enumerate(pairs):
        for member, sign, out in ((HARM, -1.0, nec), (BENIGN, 1.0, suf)):
            value, z, _ = found[(i, member)]
            _, z_donor, _ = found[(i, BENIGN if member == HARM else HARM)]
            nll[c, member] = value
            per_layer = []
            for layer in layers:
                delta = donor_delta(tokens, i, member, z[layer], z_donor[layer], align)  # [L, H, d]
                per_layer.append((delta.double() * grads[(i, member)][layer]).sum((0, 2)))  # [H]
            out[:, c] = sign * torch.stack(per_layer)[layer_ix, head_ix]
    return nec, suf, nll


def donor_delta(tokens: PairTokens, pair: int, member: int, z: torch.Tensor, z_donor: torch.Tensor,
                align: str) -> torch.Tensor:
    """(aligned donor z - base z) [L, H, d] over the base's patched positions, 0 elsewhere.

    z: the base's [L, H, d] (L = prompt, or prompt + continuation for "paper"); z_donor: the
    donor's, of which only its prompt positions are read."""
    other = BENIGN if member == HARM else HARM
    cont = z.shape[0] - tokens.prompt_len(pair, member)
    donor, ok = aligned_donor(tokens.prompt_len(pair, member), z_donor[: tokens.prompt_len(pair, other)], align,
                              tokens.shared_prefix(pair), cont_len=cont)
    return (donor - z) * ok[:, None, None]
