"""The LAC rule of "Void in Language Models" (arXiv 2505.14467) and its online tracker.

Per token and decoder layer l: n_l = ||h_l||_2 of the layer output, n_{-1} = the norm of
the first layer's input (`blocks.0.hook_resid_pre`: token embedding, plus the position
embedding for GPT-2, times sqrt(d) for Gemma), delta_l = n_l - n_{l-1}. Layer l is a void
for the token iff

    delta_l < alpha * (max_{k<l} delta_k - min_{k<l} delta_k)

Decisions are per layer (a void layer does not stop later ones). Edge cases:

- l = 0 has no earlier deltas. Default (`layer0="active"`): an empty range gives no
  threshold, so layer 0 is always active. The paper's code instead reduces delta_0 over
  the *batch* axis for layer 0 (a side effect of `max(..., axis=0)` on a [batch, seq]
  tensor); at its batch size of 1 that range is 0, so layer 0 is void iff its norm
  decreased. `layer0="sign"` reproduces that batch-1 behaviour.
- l = 1: the range of the single delta_0 is 0, so the threshold is 0 and layer 1 is void
  iff delta_1 < 0. An exact identity layer at l = 1 (delta 0) is therefore active; from
  l = 2 on it is void whenever the earlier deltas differ.

Precision (`norm_dtype`): "float32" (default) computes norms, deltas and thresholds in
float32; "model" keeps them in the dtype of the hidden states (bf16 in the paper's runs),
as the authors' lac.py does. Both record the norms as float32.

Paper-mode skipping (`paper_skip=True`): a running state per token starts at the first
layer's input and takes each active layer's output; the final norm reads that state
instead of the last layer's output (the edit is on `blocks.{L-1}.hook_resid_post`). The
residual stream and KV cache are unchanged, so no compute is saved. During `generate` every
pass (prefill and each decode step) is decided within itself.

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/voids.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

LAYER0_RULES = ("active", "sign")
NORM_DTYPES = ("float32", "model")


def decide_layer(delta: torch.Tensor, earlier: torch.Tensor, alpha: float, layer0: str = "active") -> torch.Tensor:
    """Active (True) or void for one layer. delta [...]; earlier [..., l] deltas of layers k < l."""
    if earlier.shape[-1] == 0:
        if layer0 == "sign":
            return delta >= 0
        return torch.ones_like(delta, dtype=torch.bool)
    threshold = alpha * (earlier.amax(-1) - earlier.amin(-1))  # [...]
    return ~(delta < threshold)


def lac_active(deltas: torch.Tensor, alpha: float, layer0: str = "active") -> torch.Tensor:
    """Bool [..., L]: which layers are active, from norm deltas [..., L] (the same code path
    the online tracker uses, one layer at a time)."""
    columns = [decide_layer(deltas[..., layer], deltas[..., :layer], alpha, layer0)
               for layer in range(deltas.shape[-1])]
    return torch.stack(columns, -1)


def norm_deltas(norms: torch.Tensor) -> torch.Tensor:
    """[..., L + 1] norms (n_{-1}, n_0, ..., n_{L-1}) -> [..., L] deltas."""
    return norms[..., 1:] - norms[..., :-1]


@dataclass
class PassRecord:
    """Norms and decisions of one forward pass (prefill or one decode step)."""

    norms: torch.Tensor  # [b, p, L + 1] float32 (computed in the tracker's norm_dtype), CPU
    active: torch.Tensor  # [b, p, L] bool, CPU
    offset: int  # tokens already in the KV cache
    pad_left: torch.Tensor | None  # [b]


@dataclass
class VoidTracker:
    """Engine callbacks that apply the LAC rule in every pass and optionally skip (paper mode)."""

    n_layers: int
    alpha: float
    layer0: str = "active"
    paper_skip: bool = False
    norm_dtype: str = "float32"
    passes: list[PassRecord] = field(default_factory=list)
    _norms: list = field(default_factory=list, repr=False)
    _active: list = field(default_factory=list, repr=False)
    _state: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.norm_dtype not in NORM_DTYPES:
            raise ValueError(f"norm_dtype must be one of {NORM_DTYPES}, got {self.norm_dtype!r}")

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() if self.norm_dtype == "float32" else x).norm(dim=-1)  # [b, p]

    def hooks(self) -> list[tuple[str, object]]:
        """(site, callback) pairs for `Model.hooks` / `forward(hooks=...)` / `generate(hooks=...)`."""
        out = [("blocks.0.hook_resid_pre", self._start)]
        out += [(f"blocks.{layer}.hook_resid_post", self._layer) for layer in range(self.n_layers)]
        return out

    def reset(self) -> None:
        self.passes.clear()

    def _start(self, x: torch.Tensor, hook) -> None:
        self._norms = [self._norm(x)]  # [b, p]
        self._active = []
        self._state = x.clone() if self.paper_skip else None

    def _layer(self, x: torch.Tensor, hook) -> torch.Tensor | None:
        layer = hook.layer
        if layer != len(self._active):
            raise RuntimeError(f"void tracker saw layer {layer} out of order; expected {len(self._active)}")
        norm = self._norm(x)  # [b, p]
        self._norms.append(norm)
        norms = torch.stack(self._norms, -1)  # [b, p, layer + 2]
        deltas = norm_deltas(norms)  # [b, p, layer + 1]
        active = decide_layer(deltas[..., -1], deltas[..., :-1], self.alpha, self.layer0)  # [b, p]
        self._active.append(active)
        if self.paper_skip:
            self._state = torch.where(active[..., None], x, self._state)
        if layer < self.n_layers - 1:
            return None
        state = hook.state
        self.passes.append(PassRecord(norms.float().cpu(), torch.stack(self._active, -1).cpu(), state.offset,
                                      None if state.pad_left is None else state.pad_left.cpu()))
        if not self.paper_skip:
            return None
        real = (state.real_positions(x.device) >= 0)[..., None]  # [b, p, 1]; pads stay as they are
        return torch.where(real, self._state, x)
