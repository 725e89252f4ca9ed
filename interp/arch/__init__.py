"""Architecture adapters: one declarative ArchSpec per supported model family."""

from .families import (
    BY_MODEL_TYPE,
    FAMILIES,
    UnsupportedArchitectureError,
    spec_for_config,
    spec_for_model_type,
    supported_families,
)
from .spec import ArchSpec

__all__ = ["ArchSpec", "BY_MODEL_TYPE", "FAMILIES", "spec_for_model_type", "UnsupportedArchitectureError", "spec_for_config", "supported_families"]
