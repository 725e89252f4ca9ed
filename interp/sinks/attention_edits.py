"""Edits of attention patterns around the first token (the attention sink).

All act on `blocks.{l}.attn.hook_pattern` ([b, H, q, k], post-softmax, eager attention),
select heads with `heads=[...]` and queries with `positions=` (the query axis; default all
real queries), and work in a forward pass and at every `generate` step with the KV cache
(where the pattern of a decode step is [b, H, 1, k]).

- `ScaleFirstToken` (ZeroTuning, Han et al. 2025, "ZeroTuning: Unlocking the Initial
  Token's Power to Enhance Large Language Models Without Training"): scale the attention
  to token 0 by gamma and renormalise each row,
  `a0' = gamma a0 / D, ai' = ai / D, D = (gamma - 1) a0 + 1` (the paper's formula, which
  assumes rows that sum to 1, as softmax rows do).
- `ZeroHead`: the head's whole pattern set to 0, so it writes nothing (only the o_proj
  bias, where there is one, remains).
- `MoveToFirstToken`: the head's attention moved entirely onto token 0, i.e. the head
  made a pure sink (its output becomes token 0's value state).

"Token 0" is each row's first real token (BOS when the BOS policy adds one), found on the
key axis from the left padding. Where a sliding window hides token 0 (masked, or dropped
from the cache) the row is left unchanged: there is no key to scale or move attention to.

    edits = zerotuning({5: [0, 3], 6: None}, gamma=0.5)     # None = every head of layer 6
    model.generate(prompts, edits=edits)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..engine.edits import Edit
from ..engine.hooks import HookPoint


def pattern_site(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_pattern"


def first_key_mask(x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
    """Bool [b, 1, 1, k]: the key holding each row's first real token (all False if absent).

    The key axis holds the last k padded positions of the sequence so far (all of them
    unless a sliding-window cache dropped the oldest).
    """
    state = hook.state
    batch, k_len = x.shape[0], x.shape[-1]
    pad = state.left_pads(x.device)  # [b]
    total = state.offset + state.seq_len  # padded positions seen so far
    index = pad - (total - k_len)  # [b] key index of real token 0
    keys = torch.arange(k_len, device=x.device)[None, :]  # [1, k]
    return (keys == index[:, None]).view(batch, 1, 1, k_len)


@dataclass
class ScaleFirstToken(Edit):
    """ZeroTuning: attention to token 0 times `gamma`, rows renormalised (see module doc).

    A row with all its attention on token 0 (always query 0) has D = gamma; with gamma = 0
    it has nothing left to renormalise and becomes all zeros (the head writes nothing there).
    """

    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")

    def target(self, x, hook):
        first = first_key_mask(x, hook)  # [b, 1, 1, k]
        a0 = (x * first).sum(-1, keepdim=True)  # [b, H, q, 1]
        denom = (self.gamma - 1.0) * a0 + 1.0
        return torch.where(first, self.gamma * x, x) / denom.clamp_min(1e-12)


@dataclass
class ZeroHead(Edit):
    """The selected heads attend to nothing: pattern rows set to 0."""

    def target(self, x, hook):
        return torch.zeros_like(x)


@dataclass
class MoveToFirstToken(Edit):
    """The selected heads attend only to token 0.

    Rows that cannot see token 0 stay as they are: its key is out of the cache, or masked
    (a sliding window), which softmax turns into an exact 0.
    """

    def target(self, x, hook):
        first = first_key_mask(x, hook).expand_as(x)
        visible = (x * first).sum(-1, keepdim=True) > 0  # [b, H, q, 1]
        return torch.where(visible, first.to(x.dtype), x)


HeadSpec = Mapping[int, Sequence[int] | None] | Iterable[tuple[int, int]] | Iterable[str]


def heads_by_layer(heads: HeadSpec) -> dict[int, list[int] | None]:
    """{layer: [heads] or None (all)} from a dict, (layer, head) pairs or 'L3H1' strings."""
    if isinstance(heads, Mapping):
        return {int(l): (None if hs is None else [int(h) for h in hs]) for l, hs in heads.items()}
    out: dict[int, list[int] | None] = {}
    for item in heads:
        if isinstance(item, str):
            text = item.upper()
            if not (text.startswith("L") and "H" in text):
                raise ValueError(f"head {item!r} is not 'L<layer>H<head>' (e.g. L3H1)")
            layer, head = (int(p) for p in text[1:].split("H"))
        else:
            layer, head = (int(p) for p in item)
        out.setdefault(layer, []).append(head)
    return out


def _edits(kind: type[Edit], heads: HeadSpec, positions, **kwargs) -> list[Edit]:
    return [kind(pattern_site(layer), positions=positions, heads=hs, **kwargs)
            for layer, hs in sorted(heads_by_layer(heads).items())]


def zerotuning(heads: HeadSpec, gamma: float, positions="all") -> list[Edit]:
    """`ScaleFirstToken` edits for the given heads (one per layer)."""
    return _edits(ScaleFirstToken, heads, positions, gamma=gamma)


def zero_heads(heads: HeadSpec, positions="all") -> list[Edit]:
    return _edits(ZeroHead, heads, positions)


def move_to_first_token(heads: HeadSpec, positions="all") -> list[Edit]:
    return _edits(MoveToFirstToken, heads, positions)
