"""Flatten step results (dataclasses of tensors, tables and JSON values) into a run and back.

`pack(name, obj)` splits a step's dataclass into tensors (stored in safetensors under
`<name>.<field>`) and JSON (DataFrames as records); `unpack(cls, name, ...)` rebuilds it,
turning lists back into tuples where the field is annotated with a tuple (heads are
`(layer, head)` tuples). Fields the class no longer has are dropped on load.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

TABLE = "__table__"


def pack(name: str, obj) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, data = {}, {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, torch.Tensor):
            tensors[f"{name}.{f.name}"] = value.detach().cpu().contiguous().clone()
        elif isinstance(value, pd.DataFrame):
            data[f.name] = {TABLE: value.to_dict("records"), "columns": list(value.columns)}
        else:
            data[f.name] = value
    return tensors, data


def _tuples(value, hint: str):
    if value is None:
        return None
    if hint.startswith("list[tuple") and isinstance(value, list):
        return [tuple(v) for v in value]
    if hint.startswith("tuple") and isinstance(value, list):
        return tuple(value)
    return value


def unpack(cls, name: str, tensors: dict[str, torch.Tensor], data: dict):
    hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    kwargs = {}
    for field_name, hint in hints.items():
        key = f"{name}.{field_name}"
        if key in tensors:
            kwargs[field_name] = tensors[key]
        elif field_name in data:
            value = data[field_name]
            if isinstance(value, dict) and TABLE in value:
                value = pd.DataFrame(value[TABLE], columns=value["columns"])
            kwargs[field_name] = _tuples(value, hint.replace("typing.", ""))
        elif "Tensor" in hint and "None" in hint:
            kwargs[field_name] = None  # an optional tensor saved as None
    return cls(**kwargs)
