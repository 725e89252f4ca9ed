"""Plain JSON data from the values results, summaries and table schemas hold."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch


def jsonable(obj: Any, name: str) -> Any:
    """Plain JSON data from ``obj`` (dataclasses, numpy scalars, paths, tuples converted)."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (Path, torch.dtype, torch.device)):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj), name)
    if isinstance(obj, dict):
        return {
            k if isinstance(k, str) else jsonable(k, name): jsonable(v, name)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, name) for v in obj]
    raise TypeError(f"{name}: {type(obj).__name__} is not JSON-able")
