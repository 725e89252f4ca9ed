"""Edits that fire on tokens, not positions, and a scaled projection.

`OnTokens` restricts any edit to the positions whose input token is one of `token_ids`, or
is the last token of one of the id `sequences` (read from the pass's own `input_ids`, which
the engine records on `ForwardState`, and for a sequence from the tokens fed before it,
`interp.engine.token_history`), so during `generate` it acts whenever such a token is fed,
wherever it lands: e.g. at the token that closes each reasoning step, as RISE steers
(arXiv 2512.23988). A tokenizer may write the step separator "\\n\\n" as one token or as
"\\n" twice (SmolLM2 does both, depending on what follows): `token_ids` catches the first,
`sequences=[[nl, nl]]` the second.
`Project` is the projection edit x - alpha (x . u) u with a strength: alpha = 1 removes the
component along u (`ProjectOut`), alpha = 0 leaves x unchanged, alpha < 0 amplifies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .edits import Edit, _on
from .hooks import HookPoint
from .token_history import HISTORY


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
    """`edit`, applied only where the pass's input token is in `token_ids` or ends one of the
    id `sequences` (each 1 to HISTORY + 1 ids, matched over real tokens: never over left
    padding), where `edit`'s own selection holds and at this wrapper's `positions` (default
    "all"). Raises ValueError at construction for sequences that are not lists of 1 to
    HISTORY + 1 ids, and in a pass fed embeddings, not ids."""

    edit: Edit | None = None
    token_ids: Sequence[int] = ()
    sequences: Sequence[Sequence[int]] = ()

    def __post_init__(self) -> None:
        if self.edit is None:
            raise ValueError("OnTokens needs an edit to apply")
        if self.edit.site != self.site:
            raise ValueError(f"OnTokens at '{self.site}' wraps an edit at '{self.edit.site}'; use one site")
        self._ids = torch.tensor(sorted({int(i) for i in self.token_ids}), dtype=torch.long)
        if isinstance(self.sequences, (str, bytes)) or any(
                not isinstance(seq, (list, tuple, torch.Tensor)) for seq in self.sequences):
            raise ValueError(f"OnTokens sequences is a list of token-id lists, e.g. [[198, 198]]; got {self.sequences!r}")
        self._sequences = [torch.tensor([int(i) for i in seq], dtype=torch.long) for seq in self.sequences]
        bad = [list(map(int, seq)) for seq in self._sequences if not 1 <= len(seq) <= HISTORY + 1]
        if bad:
            raise ValueError(f"OnTokens sequences must be 1 to {HISTORY + 1} token ids long; got {bad[0]}")

    def hits(self, ids: torch.Tensor, before: torch.Tensor | None = None,
             real: torch.Tensor | None = None) -> torch.Tensor:
        """Bool [b, p]: positions of `ids` [b, p] whose token is in `token_ids` or ends one of
        `sequences`, which may begin in `before` [b, k] (the ids fed by earlier passes).
        `real` [b, k + p] marks the positions that are not left padding: a sequence matches
        only over real tokens, so a row's hits do not depend on how the batch pads it."""
        hit = torch.isin(ids, self._ids.to(ids.device))
        if not self._sequences:
            return hit
        context = ids if before is None else torch.cat([before.to(ids.device), ids], 1)
        lead = context.shape[1] - ids.shape[1]
        real = torch.ones_like(context, dtype=torch.bool) if real is None else real.to(ids.device)
        for seq in self._sequences:
            n = len(seq)
            if context.shape[1] < n:
                continue
            ends = torch.zeros_like(context, dtype=torch.bool)
            ends[:, n - 1:] = ((context.unfold(1, n, 1) == seq.to(ids.device)).all(-1)
                               & real.unfold(1, n, 1).all(-1))
            hit |= ends[:, lead:]
        return hit

    def selection(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        ids = hook.state.input_ids
        if ids is None:
            raise ValueError("OnTokens needs token ids; this pass was fed inputs_embeds")
        state = hook.state
        before = state.previous_ids
        lead = 0 if before is None else before.shape[1]
        padded = torch.arange(state.offset - lead, state.offset + state.seq_len, device=x.device)
        real = padded[None, :] - state.left_pads(x.device)[:, None] >= 0  # [b, lead + p]
        hit = self.hits(ids.to(x.device), before, real)  # [b, p]
        shape = [1] * x.ndim
        shape[0], shape[hook.site.pos_axis] = hit.shape
        return super().selection(x, hook) & self.edit.selection(x, hook) & hit.view(shape)

    def target(self, x, hook):
        return self.edit.target(x, hook)


def refuse_sequences(edit: Edit, what: str, fix: str) -> None:
    """ValueError for an `OnTokens` (at any depth) matching token sequences in a pass that
    continues a prefix run in another pass: a sequence spanning the two could not match."""
    while isinstance(edit, OnTokens):
        if edit.sequences:
            raise ValueError(f"{what} runs the prefix apart from each row's rest, so OnTokens sequences on "
                             f"'{edit.site}' could not match across them; {fix}")
        edit = edit.edit
