"""Steering vectors -> engine edits, and the `FILE[@LAYERS][:ALPHA]` syntax of the CLI.

Activation addition (Turner et al. 2023; Rimsky et al. 2024): `x + alpha * v` at the
vector's site and layers, at positions "all", "prompt" (prefill only), "generated" (each
generated token as it is fed back: the first new token is not steered), "last+generated"
(steering from the first new token on) or "last"; `relative=True` makes alpha a fraction of the residual norm at each
position (the engine's `Add(relative=True)`). AUSteer masks (`kind="scale"`) become
`Scale(site, factor=1 + alpha * mask)`. Directional ablation (Arditi et al. 2024) is the
opposite edit: the direction is projected out of everything that writes to the residual
stream (embeddings, every attention output, every MLP output), so the residual never
carries a component along it at any layer. Every edit is an ordinary engine edit: the same
objects work in a forward pass, `run_with_cache` and `generate` with the KV cache.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from interp.engine.edits import Add, Edit, ProjectOut, Scale

from .vectors import SteeringVector

POSITIONS = ("all", "prompt", "generated", "last+generated", "last")


@dataclass
class VectorUse:
    """One steering vector as applied: which layers of it, how strong, where."""

    vector: SteeringVector
    alpha: float = 1.0
    layers: list[int] | None = None  # None: every layer the vector has
    positions: str = "all"
    relative: bool = False

    def chosen_layers(self) -> list[int]:
        if self.layers is None:
            return self.vector.layers
        if len(self.vector.layers) == 1:  # one direction, applied at any layers asked for
            return list(self.layers)
        missing = [layer for layer in self.layers if layer not in self.vector.vectors]
        if missing:
            raise ValueError(f"vector has layers {self.vector.layers}; it has no direction for layers {missing}")
        return list(self.layers)

    def direction(self, layer: int) -> torch.Tensor:
        vectors = self.vector.vectors
        return vectors[layer] if layer in vectors else next(iter(vectors.values()))


def steering_edits(model, uses: Sequence[VectorUse], allow_other_model: bool = False) -> list[Edit]:
    """Engine edits for several vectors at once (checked against `model` first)."""
    edits: list[Edit] = []
    for use in uses:
        if not isinstance(use.alpha, (int, float)) or not math.isfinite(use.alpha):
            raise ValueError(f"alpha must be a finite number, got {use.alpha!r}")
        if use.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got '{use.positions}'")
        layers = use.chosen_layers()
        use.vector.check_model(model, layers=layers, allow_other_model=allow_other_model)
        for layer in layers:
            edits.append(_edit(model, use, layer))
    return edits


def _edit(model, use: VectorUse, layer: int) -> Edit:
    vector, site = use.vector, use.vector.site_name(layer)
    direction = use.direction(layer).to(model.device, model.dtype)  # [width]
    if vector.site == "attention":
        direction = direction.view(model.n_heads, model.d_head)  # hook_z is [b, p, H, d_head]
    if vector.kind == "scale":
        if use.relative:
            raise ValueError("relative alpha applies to additive vectors, not AUSteer (scale) masks")
        return Scale(site, positions=use.positions, factor=1.0 + use.alpha * direction)
    if use.relative and vector.site == "attention":
        raise ValueError("relative alpha is defined on residual-width sites (layer, ffn), not attention")
    return Add(site, positions=use.positions, vector=direction, alpha=float(use.alpha), relative=use.relative)


def ablation_edits(model, direction: torch.Tensor | SteeringVector, layer: int | None = None,
                   positions: str = "all", allow_other_model: bool = False) -> list[Edit]:
    """Project `direction` (unit-normalised) out of every write to the residual stream.

    A `SteeringVector` must be additive at the "layer" or "ffn" site; with several layers,
    `layer` picks which one's direction to use.
    """
    if isinstance(direction, SteeringVector):
        vector = direction
        if vector.kind != "add" or vector.site == "attention":
            raise ValueError(f"ablation needs a residual-width additive vector, got kind={vector.kind} "
                             f"site={vector.site}")
        vector.check_model(model, allow_other_model=allow_other_model)
        if layer is None:
            if len(vector.layers) > 1:
                raise ValueError(f"vector has layers {vector.layers}; say which direction to ablate (FILE@LAYER)")
            layer = vector.layers[0]
        if layer not in vector.vectors:
            raise ValueError(f"vector has no direction for layer {layer}; it has layers {vector.layers}")
        direction = vector.vectors[layer]
    direction = torch.as_tensor(direction, dtype=torch.float32)
    if direction.shape != (model.d_model,):
        raise ValueError(f"ablation direction has shape {tuple(direction.shape)}, the model needs ({model.d_model},)")
    if not bool(torch.isfinite(direction).all()) or float(direction.norm()) == 0.0:
        raise ValueError("ablation direction must be finite and non-zero")
    unit = (direction / direction.norm()).to(model.device, model.dtype)
    writers = ["hook_embed"] + (["hook_pos_embed"] if "hook_pos_embed" in model.sites() else [])
    for l in range(model.n_layers):
        writers += [f"blocks.{l}.hook_attn_out", f"blocks.{l}.hook_mlp_out"]
    return [ProjectOut(site, positions=positions, direction=unit) for site in writers]


# ---- CLI syntax -----------------------------------------------------------------------
_SPEC = re.compile(r"^(?P<path>.+?)(?:@(?P<layers>[0-9,\-]+))?(?::(?P<alpha>[^:@]+))?$")


def parse_layers(text: str) -> list[int]:
    """'8,10' or '8-12' or '3,8-10' -> sorted ints."""
    layers: set[int] = set()
    for part in filter(None, text.split(",")):
        if "-" in part:
            lo, _, hi = part.partition("-")
            if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
                raise ValueError(f"bad layer range '{part}': write e.g. 8-12")
            layers.update(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            layers.add(int(part))
        else:
            raise ValueError(f"bad layer '{part}': layers are non-negative integers like 8,10 or 8-12")
    if not layers:
        raise ValueError(f"no layers in '{text}'")
    return sorted(layers)


def parse_alpha(text: str, what: str = "alpha") -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a number (write e.g. v.safetensors@8:4.0)") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got '{text}'")
    return value


def parse_vector_spec(spec: str, default_alpha: float = 1.0) -> tuple[Path, list[int] | None, float]:
    """`FILE[@LAYERS][:ALPHA]` -> (path, layers or None, alpha)."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"cannot read vector spec '{spec}': write FILE[@LAYERS][:ALPHA], e.g. v.safetensors@8,10:4")
    if "@" in match["path"]:
        raise ValueError(f"bad layers in vector spec '{spec}': write FILE@8,10 or FILE@8-12")
    layers = parse_layers(match["layers"]) if match["layers"] else None
    alpha = parse_alpha(match["alpha"]) if match["alpha"] is not None else default_alpha
    return Path(match["path"]), layers, alpha
