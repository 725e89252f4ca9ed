"""Steps 4-5: amplifiers and the knockout cascade (arXiv 2604.04385, steps 4 and 5).

Amplifier candidates are the heads deeper than the gate with the largest positive refusal
DLA delta (harmful minus benign, step 1). Knocking the gate out (z_h zeroed at all
positions, on harmful and benign prompts) and recomputing each candidate's DLA delta gives
change% = (ko - normal) / |normal| * 100. The null knocks out random heads of similar depth
(the gate's layer +/- 1, neither the gate nor a candidate: knocking a candidate out zeroes
its own DLA, a -100% that is no null for it), one at a time, and records the same change%
for every candidate. Amplifiers are the candidates whose change% falls below the null
band's lower edge (the smallest change% any null head gave that candidate): a drop that a
random head of similar depth also produces is not attributed to the gate. With no null heads
(`null_heads=0`) there is no band and any drop counts, which `Knockout.band` reports.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..dla.decompose import head_dla, head_sites
from ..dla.directions import refusal_direction
from ..engine.edits import Zero
from ..engine.resume import StartAt


@dataclass
class Knockout:
    gate: tuple[int, int]
    candidates: list[tuple[int, int]]  # deeper heads tested, largest DLA delta first
    normal: torch.Tensor  # [c] mean DLA delta of each candidate
    knocked: torch.Tensor  # [c] the same with the gate knocked out
    change_pct: torch.Tensor  # [c] (knocked - normal) / |normal| * 100
    null_heads: list[tuple[int, int]]  # heads knocked out for the null
    null_change_pct: torch.Tensor  # [null, c]

    @property
    def band(self) -> torch.Tensor:
        """[c] lower edge of the null band per candidate (change %): the minimum over null heads,
        capped at 0 so that only drops count; zeros when no null heads were knocked out."""
        if self.null_change_pct.numel() == 0:
            return torch.zeros(len(self.candidates), dtype=self.change_pct.dtype)
        return self.null_change_pct.min(0).values.clamp_max(0)

    @property
    def amplifiers(self) -> list[tuple[int, int]]:
        """Candidates whose DLA delta drops further than any null knockout made it drop."""
        return [h for h, c, b in zip(self.candidates, self.change_pct.tolist(), self.band.tolist()) if c < b]


def zero_head(layer: int, head: int) -> Zero:
    return Zero(f"blocks.{layer}.attn.hook_z", heads=[head])


def amplifier_candidates(delta: torch.Tensor, gate: tuple[int, int], k: int) -> list[tuple[int, int]]:
    """The k heads in layers after the gate's with the largest positive DLA delta ([L, H])."""
    layer = gate[0]
    deeper = delta[layer + 1:]
    if deeper.numel() == 0:
        return []
    flat = deeper.flatten()
    order = flat.argsort(descending=True, stable=True)[:k]
    heads = delta.shape[1]
    return [(layer + 1 + int(i) // heads, int(i) % heads) for i in order if flat[i] > 0]


def null_pool(n_layers: int, n_heads: int, gate: tuple[int, int], count: int, seed: int,
              exclude: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """`count` random heads of layers gate-1..gate+1 (clipped), excluding the gate and `exclude`
    (the amplifier candidates, whose own knockout would be a -100% change in the band)."""
    layers = range(max(0, gate[0] - 1), min(n_layers, gate[0] + 2))
    skip = {tuple(gate), *map(tuple, exclude)}
    pool = [(l, h) for l in layers for h in range(n_heads) if (l, h) not in skip]
    return random.Random(seed).sample(pool, min(count, len(pool)))


def _change(knocked: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    return 100 * (knocked - normal) / normal.abs().clamp_min(1e-12)


def knockout_cascade(model, harmful: Sequence[str], benign: Sequence[str], benign_first: Sequence[int],
                     delta: torch.Tensor, gate: tuple[int, int], *, k: int = 5, null_heads: int = 8, seed: int = 0,
                     chat: bool = True, batch_size: int | str = "auto", progress: bool = False) -> Knockout:
    """Knock out the gate (and each null head) and re-measure the amplifier candidates' DLA.

    `delta` [L, H] is the step-1 refusal DLA delta without any knockout."""
    from tqdm.auto import tqdm

    gate = tuple(gate)
    cands = amplifier_candidates(delta, gate, k)
    idx = (torch.tensor([c[0] for c in cands], dtype=torch.long), torch.tensor([c[1] for c in cands], dtype=torch.long))
    normal = delta[idx]

    nulls = null_pool(model.n_layers, model.n_heads, gate, null_heads, seed, exclude=cands) if cands else []
    # every knockout sits at layer >= first: the layers below it run once, clean (engine StartAt), and the
    # prompts' shared chat header runs once per knockout (engine shared_prefix)
    first = min(layer for layer, _ in [gate, *nulls])
    direction = refusal_direction(model, list(benign_first))
    sides = [list(harmful), list(benign)]
    low = [s for s in head_sites(model) if s.startswith("blocks.") and int(s.split(".")[1]) < first]
    starts = [StartAt(first, model.run_with_cache(prompts, low + [f"blocks.{first}.hook_resid_pre"], positions="all",
                                                  chat=chat, logits=None, batch_size=batch_size)[1])
              for prompts in (sides if cands else [])]

    def knocked_delta(head) -> torch.Tensor:
        harm, ben = (head_dla(model, prompts, direction, chat=chat, edits=[zero_head(*head)], batch_size=batch_size,
                              start=start, shared_prefix=True).float() for prompts, start in zip(sides, starts))
        return (harm - ben).mean(0)[idx]  # as `dla_screen(..., edits=[knockout]).delta`

    knocked = knocked_delta(gate) if cands else normal.clone()
    null_rows = [_change(knocked_delta(h), normal) for h in tqdm(nulls, desc="knockout null", disable=not progress,
                                                                  leave=False)]
    null = torch.stack(null_rows) if null_rows else torch.zeros(0, len(cands))
    return Knockout(gate, cands, normal, knocked, _change(knocked, normal), nulls, null)
