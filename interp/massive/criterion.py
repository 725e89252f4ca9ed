"""Sun et al.'s criterion for a massive activation, shared by detection and the ablations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .activations import MassiveConfig


def passing(values: torch.Tensor, median: torch.Tensor | float, config: MassiveConfig) -> torch.Tensor:
    """Sun et al.'s criterion, elementwise: |a| > abs_threshold and |a| / median >= ratio_threshold."""
    mag = values.abs()
    return (mag > config.abs_threshold) & (mag >= config.ratio_threshold * median)
