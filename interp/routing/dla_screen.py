"""Step 1: head DLA screen on the refusal direction (arXiv 2604.04385, step 1).

Per-head direct logit attribution (`interp.dla.decompose.head_dla`) on pair i's refusal
direction (refusal openers minus the benign prompt's first greedy token) at the last
prompt token, harmful minus benign, averaged over pairs. Candidates are the `top_k` heads
by |mean delta| inside the middle band of layers (paper: 0.25L..0.65L, top 20).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..dla.decompose import head_dla
from ..dla.directions import refusal_direction


@dataclass
class DLAScreen:
    """Refusal DLA per head; deltas are harmful minus benign, in logit units."""

    harmful: torch.Tensor  # [n, L, H] per-pair DLA on the harmful prompt
    benign: torch.Tensor  # [n, L, H] per-pair DLA on the benign prompt
    band: tuple[int, int]  # [start, stop) layers the candidates come from
    candidates: list[tuple[int, int]]  # top-k (layer, head) by |mean delta| within the band

    @property
    def delta(self) -> torch.Tensor:  # [L, H] mean over pairs of harmful - benign
        return (self.harmful - self.benign).mean(0)


def rank_band(delta: torch.Tensor, band: tuple[int, int], k: int) -> list[tuple[int, int]]:
    """The k heads of layers [band) with the largest |delta| ([L, H]), largest first."""
    start, stop = band
    part = delta[start:stop].abs().flatten()
    order = part.argsort(descending=True, stable=True)[:k]
    heads = delta.shape[1]
    return [(start + int(i) // heads, int(i) % heads) for i in order]


def dla_screen(model, harmful: Sequence[str], benign: Sequence[str], benign_first: Sequence[int], *,
               band: tuple[int, int], top_k: int = 20, chat: bool = True, edits=(),
               batch_size: int | str = "auto", progress: bool = False) -> DLAScreen:
    """Refusal-direction head DLA of every pair; `edits` apply to both prompts (a knockout);
    `progress` draws a bar per prompt set on stderr."""
    direction = refusal_direction(model, list(benign_first))
    harm, ben = (head_dla(model, list(prompts), direction, chat=chat, edits=edits, batch_size=batch_size,
                          shared_prefix=True, progress=f"DLA screen ({name})" if progress else False)
                 for name, prompts in (("harmful", harmful), ("benign", benign)))
    screen = DLAScreen(harm.float(), ben.float(), tuple(band), [])
    screen.candidates = rank_band(screen.delta, band, top_k)
    return screen
