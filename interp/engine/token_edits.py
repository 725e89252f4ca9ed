"""Edits that fire on tokens, not positions, and a scaled projection.

`OnTokens` restricts any edit to the positions whose input token is one of `token_ids`
(read from the pass's own `input_ids`, which the engine records on `ForwardState`), so
during `generate` it acts whenever such a token is fed, wherever it lands: e.g. at the
token that closes each reasoning step ("\\n\\n"), as RISE steers (arXiv 2512.23988).
`Project` is the projection edit x - alpha (x . u) u with a strength: alpha = 1 removes the
component along u (`ProjectOut`), alpha = 0 leaves x unchanged, alpha < 0 amplifies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .edits import Edit, _on
from .hooks import HookPoint


@dataclass
class Project(Edit):
    """x - alpha * (x . u) u with u = direction / ||direction|| (last axis)."""

    direction: torch.Tensor | None = None
    alpha: float = 1.0

    def target(self, x, hook):
        u = _on(x, self.direction)
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return x - self.alpha * (x * u).sum(-1, keepdim=True) * u


@dataclass
class OnTokens(Edit):
    """`edit`, applied only where the pass's input token is in `token_ids`, where `edit`'s own
    selection holds and at this wrapper's `positions` (default "all"). Raises ValueError in
    a pass fed embeddings, not ids."""

    edit: Edit | None = None
    token_ids: Sequence[int] = ()

    def __post_init__(self) -> None:
        if self.edit is None:
            raise ValueError("OnTokens needs an edit to apply")
        if self.edit.site != self.site:
            raise ValueError(f"OnTokens at '{self.site}' wraps an edit at '{self.edit.site}'; use one site")
        self._ids = torch.tensor(sorted({int(i) for i in self.token_ids}), dtype=torch.long)

    def selection(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        ids = hook.state.input_ids
        if ids is None:
            raise ValueError("OnTokens needs token ids; this pass was fed inputs_embeds")
        hit = torch.isin(ids.to(x.device), self._ids.to(x.device))  # [b, p]
        shape = [1] * x.ndim
        shape[0], shape[hook.site.pos_axis] = hit.shape
        return super().selection(x, hook) & self.edit.selection(x, hook) & hit.view(shape)

    def target(self, x, hook):
        return self.edit.target(x, hook)
