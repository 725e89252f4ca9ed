"""Step 2: per-head ablation of the probe direction (arXiv 2604.04385, step 2).

The residual-space probe direction d is pulled into head h's space through its output
projection, u_h = W_O^h^T d ([d_head]), and its component is removed from z_h at every
position (`ProjectOut` on `blocks.{l}.attn.hook_z`, heads=[h]). The effect is measured
with the interchange metric on the harmful prompts, with the sign of necessity:
effect(h) = NLL(harm) - NLL(harm | ablated). The paper shows this to be weak at scale;
it is here as the contrast to interchange.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..arch.spec import o_proj_weight
from ..engine.edits import ProjectOut
from ..engine.resume import StartAt
from .nll import continuation_nll, scored_chunks
from .screen.metric import continuation_nll as tail_nll


@dataclass
class Ablation:
    heads: list[tuple[int, int]]  # the heads ablated (the DLA candidates)
    effect: torch.Tensor  # [heads, n] nats: NLL(harm) - NLL(harm | probe removed from z_h)
    effect_pct: torch.Tensor  # [heads] mean effect as % of mean baseline_delta
    nll_harmful: torch.Tensor  # [n]
    nll_benign: torch.Tensor  # [n]


def head_space_direction(model, direction: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """u_h = W_O^h^T d: the direction in head h's z space that writes along d ([d_head])."""
    w_o = o_proj_weight(model.spec, model.hf, layer).float().cpu()  # [d_model, H * d_head]
    block = w_o[:, head * model.d_head:(head + 1) * model.d_head]
    return block.T @ direction.float().cpu()


def ablation_edit(model, direction: torch.Tensor, layer: int, head: int) -> ProjectOut:
    return ProjectOut(f"blocks.{layer}.attn.hook_z", heads=[head],
                      direction=head_space_direction(model, direction, layer, head))


def ablate_heads(model, harmful: Sequence[str], benign: Sequence[str], continuations, direction: torch.Tensor,
                 heads: Sequence[tuple[int, int]], *, chat: bool = True, batch_size: int = 8,
                 progress: bool = False) -> Ablation:
    """Ablate each of `heads` in turn on the harmful prompts (`n` of them) and score the
    continuations. Per chunk of `batch_size` prompts, one clean pass gives NLL(harm) and the
    residual entering every ablated layer; each head's run then starts at its own layer
    (`interp.engine.resume.StartAt`: an edit at layer l changes nothing below it) and after
    the chunk's shared chat header (`interp.engine.shared_prefix`), so an ablation at layer l
    costs about (L - l) / L of a pass over the tokens after the header. Raises ValueError as
    `continuation_nll` does."""
    from tqdm.auto import tqdm

    if len(harmful) != len(continuations):
        raise ValueError(f"{len(harmful)} prompts but {len(continuations)} continuations")
    heads = [tuple(map(int, h)) for h in heads]
    edits = [ablation_edit(model, direction, layer, head) for layer, head in heads]
    resid = sorted({f"blocks.{layer}.hook_resid_pre" for layer, _ in heads})
    nll_b = continuation_nll(model, benign, continuations, chat=chat, batch_size=batch_size, shared_prefix=True)
    nll_h, rows = [], [[] for _ in heads]
    bar = tqdm(total=len(heads) * len(range(0, len(harmful), batch_size)), desc="ablate", disable=not progress,
               leave=False)
    for batch, cont, keep in scored_chunks(model, harmful, continuations, chat, batch_size):
        logits, clean = model.run_with_cache(batch, resid, logits=keep, batch_size=len(cont))
        base = tail_nll(logits, batch.input_ids, cont).double().cpu()
        nll_h.append(base)
        for row, (layer, _), edit in zip(rows, heads, edits):
            logits, _ = model.run_with_cache(batch, [], edits=[edit], logits=keep, batch_size=len(cont),
                                             start=StartAt(layer, clean), shared_prefix=True)
            row.append(base - tail_nll(logits, batch.input_ids, cont).double().cpu())
            bar.update()
    bar.close()
    nll_h = torch.cat(nll_h) if nll_h else torch.zeros(0, dtype=torch.float64)
    effect = torch.stack([torch.cat(r) for r in rows]) if heads else torch.zeros(0, len(harmful), dtype=torch.float64)
    scale = (nll_h - nll_b).mean()
    return Ablation(heads, effect, 100 * effect.mean(-1) / scale, nll_h, nll_b)
