"""ActivationCache: captured site values of a batch, with the masks needed to read them.

With `positions="all"` tensors are left-padded over the whole batch ([b, P, ...]) and
`attention_mask` [b, P] says which positions are real; with "last" the position axis is
dropped ([b, ...]); with a list of n indices it has length n ([b, n, ...]).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import torch

from .sites import ExpertSelection


def left_pad(t: torch.Tensor, axes: tuple[int, ...], width: int) -> torch.Tensor:
    """`t` with zeros prepended along each of `axes` up to `width` (left padding, as the
    engine lays out prompts); axes already `width` wide are left as they are."""
    for axis in axes:
        missing = width - t.shape[axis]
        if missing:
            shape = list(t.shape)
            shape[axis] = missing
            t = torch.cat([t.new_zeros(shape), t], dim=axis)
    return t


@dataclass
class ActivationCache(Mapping):
    data: dict[str, torch.Tensor | ExpertSelection]
    input_ids: torch.Tensor  # [b, P] left-padded
    attention_mask: torch.Tensor  # [b, P]
    positions: object = "all"
    prompts: list[str] = field(default_factory=list)

    def __getitem__(self, name: str):
        try:
            return self.data[name]
        except KeyError:
            raise KeyError(f"site '{name}' was not captured; captured: {sorted(self.data)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def stack(self, suffix: str) -> torch.Tensor:
        """Stack `blocks.{l}.<suffix>` over layers: [n_layers, ...]."""
        names = sorted((n for n in self.data if n.startswith("blocks.") and n.endswith("." + suffix)),
                       key=lambda n: int(n.split(".")[1]))
        if not names:
            raise KeyError(f"no captured site ends with '{suffix}'")
        return torch.stack([self.data[n] for n in names])

    def real(self, name: str, row: int) -> torch.Tensor:
        """Values of one prompt at its real (non-pad) positions (positions="all" only)."""
        if self.positions != "all":
            raise ValueError("real() needs a cache captured with positions='all'")
        keep = self.attention_mask[row].bool()
        return self.data[name][row][keep.to(self.data[name].device)]

    def to(self, device) -> "ActivationCache":
        moved = {k: (ExpertSelection(*(t.to(device) for t in v)) if isinstance(v, ExpertSelection) else v.to(device))
                 for k, v in self.data.items()}
        return ActivationCache(moved, self.input_ids, self.attention_mask, self.positions, self.prompts)
