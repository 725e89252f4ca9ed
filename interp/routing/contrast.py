"""Step 9: cipher contrast ranking (arXiv 2604.04385, step 9).

Three passes per pair (plain harmful, cipher harmful, benign) and per-head DLA on the probe
direction at the last prompt token (`interp.dla.decompose.head_dla` with the probe as a
free vector); heads are ranked by |mean_plain - mean_cipher|: the heads whose refusal-side
write disappears under the cipher. Cost: 3n forward passes, each over the tokens after the
prefix its prompts share (chat header, cipher preamble: `interp.engine.shared_prefix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..dla.decompose import head_dla
from ..dla.directions import vector_direction


@dataclass
class CipherContrast:
    plain: torch.Tensor  # [L, H] mean DLA on the probe direction, plain harmful prompts
    cipher: torch.Tensor  # [L, H] the same on the cipher prompts
    benign: torch.Tensor  # [L, H] the same on the benign prompts
    ranking: list[tuple[int, int]]  # all heads by |plain - cipher|, largest first

    @property
    def gap(self) -> torch.Tensor:  # [L, H]
        return (self.plain - self.cipher).abs()


def cipher_contrast(model, plain: Sequence[str], cipher: Sequence[str], benign: Sequence[str],
                    direction: torch.Tensor, *, chat: bool = True, batch_size: int | str = "auto") -> CipherContrast:
    d = vector_direction(model, direction, "probe direction")
    means = [head_dla(model, list(p), d, chat=chat, batch_size=batch_size, shared_prefix=True).mean(0).float()
             for p in (plain, cipher, benign)]
    gap = (means[0] - means[1]).abs().flatten()
    heads = means[0].shape[1]
    ranking = [(int(i) // heads, int(i) % heads) for i in gap.argsort(descending=True, stable=True)]
    return CipherContrast(*means, ranking)
