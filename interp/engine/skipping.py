"""Real layer skipping: decoder layers that return their input unchanged for one pass.

    with SkipLayers(model, whole=[5, 7], tokens={3: void_mask}) as skip:
        logits = model.forward(batch)          # layers 5 and 7 never run
    skip.layer_calls_skipped, skip.layer_calls_run

Two granularities, both over the decoder layer as a whole (attention + MLP + norms):

- `whole`: the layer is not run at all; its output is its input. This is the part that
  saves compute (one decoder-layer call per pass per skipped layer).
- `tokens`: {layer: bool [b, p]} over the padded positions of the pass. The layer runs,
  then the marked tokens get their input back (their residual stream is not updated by
  this layer). No compute is saved; the marked tokens still provide keys and values to the
  other tokens of that layer. When every token of a pass is marked the result equals the
  whole-layer skip, which is how callers turn token masks into saved layer calls.

Hooks installed by `Model.hooks` on the layer's own sites (`blocks.{l}.hook_resid_pre`,
`blocks.{l}.hook_resid_post`) still run for a skipped layer, with output = input; sites
inside the layer (attention, MLP, norms) do not fire.

KV cache: a layer that is not run writes no keys and values, so a cache built under
skipping is missing entries that later steps would read. Skipping is therefore limited to
single forward passes without a cache (`Model.forward`, `run_with_cache`); a pass that asks
for a cache (`use_cache=True`, as `generate` does) raises ValueError. The exception is
`allow_cache=True`, for one pass that starts after a prefix whose keys and values every layer
already holds (`interp.engine.partial.forward_from_layer(prefix=...)`): the layers that run
read their own entries, and the skipped ones are never read again.

Implementation: the layer module's `forward` is replaced on the instance for the span of
the `with` block (module hooks keep working) and restored on exit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..arch.spec import get_module
from .hooks import cached_length

if TYPE_CHECKING:
    from .model import Model

_MISSING = object()


@dataclass
class SkipLayers:
    """Context manager making chosen decoder layers identities for the passes inside it."""

    model: "Model"
    whole: Iterable[int] = ()
    tokens: Mapping[int, torch.Tensor] = field(default_factory=dict)
    allow_cache: bool = False  # passes that only READ a prefilled cache in the layers they run
    layer_calls_run: int = field(init=False, default=0)
    layer_calls_skipped: int = field(init=False, default=0)
    _saved: list = field(init=False, default_factory=list)
    _handle: object = field(init=False, default=None)

    def __post_init__(self) -> None:
        n_layers = self.model.n_layers
        self.whole = sorted(set(int(layer) for layer in self.whole))
        self.tokens = {int(k): v for k, v in self.tokens.items()}
        for layer in [*self.whole, *self.tokens]:
            if not 0 <= layer < n_layers:
                raise ValueError(f"cannot skip layer {layer}: model has layers 0..{n_layers - 1}")
        both = set(self.whole) & set(self.tokens)
        if both:
            raise ValueError(f"layers {sorted(both)} are given both as whole skips and as token masks")
        for layer, mask in self.tokens.items():
            if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
                raise ValueError(f"token mask of layer {layer} must be a bool tensor [batch, positions]")

    # ---- entering and leaving -----------------------------------------------------
    def __enter__(self) -> "SkipLayers":
        layers = get_module(self.model.hf, self.model.spec.layers)
        base = get_module(self.model.hf, self.model.spec.base)
        if not self.allow_cache:
            self._handle = base.register_forward_pre_hook(_refuse_cache, with_kwargs=True)
        try:
            for index in range(self.model.n_layers):
                module = layers[index]
                self._saved.append((module, module.__dict__.get("forward", _MISSING)))
                module.forward = self._wrap(index, module.forward)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for module, previous in self._saved:
            if previous is _MISSING:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        self._saved.clear()
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    @property
    def skipped_fraction(self) -> float:
        """Fraction of decoder-layer calls inside the block that were not run."""
        total = self.layer_calls_run + self.layer_calls_skipped
        return self.layer_calls_skipped / total if total else 0.0

    # ---- the replaced forward -----------------------------------------------------
    def _wrap(self, index: int, run_layer):
        skip_all = index in self.whole
        mask = self.tokens.get(index)

        def forward(*args, **kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]  # [b, p, d]
            if skip_all:
                self.layer_calls_skipped += 1
                return hidden
            self.layer_calls_run += 1
            out = run_layer(*args, **kwargs)
            if mask is None:
                return out
            full = out[0] if isinstance(out, tuple) else out  # [b, p, d]
            if mask.shape != full.shape[:2]:
                raise ValueError(f"token mask of layer {index} has shape {tuple(mask.shape)}, the pass has "
                                 f"{tuple(full.shape[:2])} [batch, positions]")
            kept = torch.where(mask.to(full.device)[..., None], hidden.to(full.dtype), full)
            return (kept, *out[1:]) if isinstance(out, tuple) else kept

        return forward


def _refuse_cache(module, args, kwargs) -> None:
    if kwargs.get("use_cache") is True or cached_length(args, kwargs) > 0:
        raise ValueError("real layer skipping runs single forward passes without a KV cache (a skipped layer "
                         "writes no keys/values); use Model.forward, or paper-mode skipping for generation")


def layers_after(model: "Model", sites: Iterable[str]) -> range:
    """Decoder layers above the highest one `sites` read (all of them for `ln_final.*`): a
    capture that keeps no logits need not run them."""
    top = -1
    for name in sites:
        layer = model.site(name).layer
        top = max(top, model.n_layers - 1 if layer is None and not name.startswith("hook_") else
                  (-1 if layer is None else layer))
    return range(top + 1, model.n_layers)
