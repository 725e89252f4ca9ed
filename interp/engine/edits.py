"""Interventions as small composable objects that run as engine hooks.

Every edit names a site, the positions it touches (see `interp.engine.hooks` for position specs)
and optionally the heads (sites split by head) and dimensions (last axis) it is limited
to. An edit computes the edited tensor everywhere and keeps it only where the selection
holds, so the same edit works on a full forward pass and on the single position of a
decode step. Edits are functional (no in-place writes), so captures taken before them stay
intact.

    model.run(prompts, edits=[Add("blocks.5.hook_resid_post", v, alpha=4.0)])
    model.generate(prompts, edits=[Zero("blocks.3.attn.hook_z", heads=[2])])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .hooks import HookPoint, Positions, pad_left_of
from .transfer import on_device


@dataclass
class Edit:
    """Base edit: subclasses implement `target(x, hook)`, the fully edited tensor."""

    site: str
    positions: Positions = "all"
    heads: Sequence[int] | None = None
    dims: Sequence[int] | None = None

    def target(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        raise NotImplementedError

    def selection(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        """Bool tensor broadcastable to x: positions x heads x dims this edit touches."""
        sel = hook.mask(self.positions, x)
        if self.heads is not None:
            axis = hook.site.head_axis
            if axis is None:
                raise ValueError(f"site '{self.site}' is not split by head; drop heads=")
            head_mask = torch.zeros(x.shape[axis], dtype=torch.bool, device=x.device)
            head_mask[list(self.heads)] = True
            shape = [1] * x.ndim
            shape[axis] = -1
            sel = sel & head_mask.view(shape)
        if self.dims is not None:
            dim_mask = torch.zeros(x.shape[-1], dtype=torch.bool, device=x.device)
            dim_mask[list(self.dims)] = True
            sel = sel & dim_mask
        return sel

    def __call__(self, x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        return torch.where(self.selection(x, hook), self.target(x, hook).to(x.dtype), x)

    def as_hook(self) -> tuple[str, Callable]:
        return self.site, self


def _on(x: torch.Tensor, value) -> torch.Tensor:
    """`value` on x's device and dtype; a tensor's copy is made once per device, dtype and
    version (`interp.engine.transfer.on_device`), not at every layer call of every pass."""
    if isinstance(value, torch.Tensor):
        return on_device(value, x.device, x.dtype)
    return torch.as_tensor(value, device=x.device, dtype=x.dtype)


@dataclass
class Add(Edit):
    """x + alpha * vector. With `relative=True`, alpha is a fraction of ||x|| at each
    position and the vector is normalised first (steering strength that adapts to the
    residual norm of the layer).

    `alpha` is a number, or a 1-D tensor with one strength per row of the caller's batch
    (row r of the prompts gets `alpha[r]`, also when the engine runs them in length-sorted
    chunks), so a sweep over strengths runs as one batch: `Add(site, v, alpha=torch.tensor(
    [0., 5., 10.]))` over three copies of a prompt."""

    vector: torch.Tensor | None = None
    alpha: float | torch.Tensor = 1.0
    relative: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.alpha, torch.Tensor) and self.alpha.ndim > 1:
            raise ValueError(f"Add alpha is a number or one per row ([rows]), got shape {tuple(self.alpha.shape)}")

    def _alpha(self, x, hook):
        if not isinstance(self.alpha, torch.Tensor) or self.alpha.ndim == 0:
            return self.alpha
        state = hook.state
        last = max(state.rows) if state.rows is not None else state.batch - 1  # no device sync
        if last >= self.alpha.shape[0]:
            raise ValueError(f"Add has {self.alpha.shape[0]} per-row alphas, the batch has row {last}; "
                             "pass one alpha per prompt")
        return _on(x, self.alpha)[state.row_index(x.device)].view(-1, *[1] * (x.ndim - 1))

    def target(self, x, hook):
        v = _on(x, self.vector)
        alpha = self._alpha(x, hook)
        if self.relative:
            v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return x + alpha * x.norm(dim=-1, keepdim=True) * v
        return x + alpha * v


@dataclass
class Scale(Edit):
    """x * factor (a number or a tensor broadcast over the site's trailing axes)."""

    factor: float | torch.Tensor = 1.0

    def target(self, x, hook):
        return x * _on(x, self.factor)


@dataclass
class Set(Edit):
    """Overwrite with a fixed value (e.g. a mean for mean ablation)."""

    value: torch.Tensor | float = 0.0

    def target(self, x, hook):
        return _on(x, self.value).expand_as(x)


@dataclass
class Zero(Edit):
    """Zero ablation."""

    def target(self, x, hook):
        return torch.zeros_like(x)


@dataclass
class ProjectOut(Edit):
    """Remove the component along `direction` (last axis): x - (x . u) u."""

    direction: torch.Tensor | None = None

    def target(self, x, hook):
        u = _on(x, self.direction)
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return x - (x * u).sum(-1, keepdim=True) * u


@dataclass
class Patch(Edit):
    """Overwrite with activations from a donor run, row i from donor row i.

    `donor` is the site's user-facing tensor from the donor pass over left-padded inputs
    ([b, p_donor, ...]) and `donor_mask` its attention mask [b, p_donor]. Positions are
    matched over real tokens: `align="left"` pairs position i with donor position i;
    `align="right"` pairs the last token with the donor's last token. Positions with no
    donor counterpart are left unchanged.
    """

    donor: torch.Tensor | None = None
    donor_mask: torch.Tensor | None = None
    align: str = "left"
    _donor_len: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.align not in ("left", "right"):
            raise ValueError(f"align must be 'left' or 'right', got '{self.align}'")
        if self.donor_mask is None:
            self.donor_mask = torch.ones(self.donor.shape[:2], dtype=torch.bool)

    def _mapping(self, x: torch.Tensor, hook: HookPoint) -> tuple[torch.Tensor, torch.Tensor]:
        """Donor padded index [b, p] for each position, and whether it exists."""
        state = hook.state
        mask = self.donor_mask.to(x.device).bool()[state.row_index(x.device)]
        donor_pad = pad_left_of(mask)
        donor_len = mask.sum(-1)
        real = state.real_positions(x.device)  # [b, p]
        if self.align == "left":
            donor_real = real
        else:
            donor_real = real - state.prompt_lengths(x.device)[:, None] + donor_len[:, None]
        ok = (donor_real >= 0) & (donor_real < donor_len[:, None]) & (real >= 0)
        index = (donor_real + donor_pad[:, None]).clamp(0, mask.shape[1] - 1)
        return index, ok

    def selection(self, x, hook):
        sel = super().selection(x, hook)
        _, ok = self._mapping(x, hook)
        shape = [1] * x.ndim
        shape[0], shape[hook.site.pos_axis] = ok.shape
        return sel & ok.view(shape)

    def target(self, x, hook):
        if hook.site.pos_axis != 1:
            raise ValueError(f"Patch supports sites with positions on axis 1, not '{self.site}'")
        state = hook.state
        needed = max(state.rows) if state.rows is not None else state.batch - 1  # Python ints: no device sync
        if needed >= self.donor.shape[0]:
            raise ValueError(f"donor has {self.donor.shape[0]} rows; the recipient batch needs row {needed}")
        rows = state.row_index(x.device)
        index, _ = self._mapping(x, hook)
        donor = self.donor.to(x.device)[rows].to(x.dtype)
        gather_index = index.view(*index.shape, *([1] * (x.ndim - 2))).expand(-1, -1, *x.shape[2:])
        return donor.gather(1, gather_index)


@dataclass
class Fn(Edit):
    """Any function of (x, hook) -> edited x, restricted to the edit's selection."""

    fn: Callable[[torch.Tensor, HookPoint], torch.Tensor] | None = None

    def target(self, x, hook):
        return self.fn(x, hook)
