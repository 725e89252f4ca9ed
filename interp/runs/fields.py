"""How each field of a `Result` dataclass is stored in a run directory, and read back.

The annotation decides (`field_kind`): tensors, numpy arrays and ``dict[str, Tensor]`` go
to safetensors, DataFrames to CSV (`interp.runs.tables`), dataclasses and plain JSON types to
fields.json; None is recorded as such. The schema written to the manifest says how each
field was stored, so a run loads back without importing anything but the result class.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import pandas as pd
import torch

from .jsonable import jsonable
from .tables import read_table, write_table

JSON_TYPES = (str, int, float, bool, dict, list, tuple, type(None), Any)


class FieldLoadError(ValueError):
    """A saved field is missing (the run is corrupt or from another version)."""


@dataclass
class EncodedFields:
    """What `encode_fields` produced: the manifest schema and the payloads to write."""

    schema: dict[str, dict] = field(default_factory=dict)
    json_fields: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # tables already written under the folder


def encode_fields(result: Any, tmp: Path) -> EncodedFields:
    """Sort the result's fields by storage kind; DataFrames are written to `tmp`/tables now."""
    cls = type(result)
    out = EncodedFields()
    schema, json_fields, tensors, files = out.schema, out.json_fields, out.tensors, out.files
    hints = typing.get_type_hints(cls)
    for f in data_fields(cls):
        value, kind = getattr(result, f.name), field_kind(hints[f.name])
        if kind is None:
            raise TypeError(
                f"{cls.__qualname__}.{f.name}: unsupported field type "
                f"{hints[f.name]!r}; use Tensor, ndarray, DataFrame or JSON types"
            )
        if value is None:
            schema[f.name] = {"kind": "none"}
        elif kind == "tensor_dict":
            for key, t in _expect(value, dict, f.name).items():
                tensors[f"{f.name}/{key}"] = _cpu(_expect(t, torch.Tensor, f.name))
            schema[f.name] = {"kind": kind, "keys": list(value)}
        elif kind in ("tensor", "array"):
            if kind == "array":
                value = _numpy_to_torch(_expect(value, np.ndarray, f.name), f.name)
            tensors[f.name] = _cpu(_expect(value, torch.Tensor, f.name))
            schema[f.name] = {"kind": kind}
        elif kind == "table":
            rel = f"tables/{f.name}.csv"
            schema[f.name] = {
                "kind": kind,
                "path": rel,
                **write_table(_expect(value, pd.DataFrame, f.name), tmp / rel),
            }
            files.append(rel)
        else:  # json or dataclass
            to_dict = getattr(value, "to_dict", None)
            if kind == "dataclass" and callable(to_dict):
                value = to_dict()
            json_fields[f.name] = jsonable(value, f.name)
            schema[f.name] = {"kind": kind}
    return out


def decode_fields(cls: type, path: Path, schema: dict, json_fields: dict, tensors: dict) -> dict[str, Any]:
    """Constructor keyword arguments of `cls` from a run's stored fields."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in data_fields(cls):
        spec = schema.get(f.name)
        if spec is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FieldLoadError(f"{path}: field {f.name!r} of {cls.__qualname__} is not saved")
            continue
        kind, tp = spec["kind"], _unwrap_optional(hints[f.name])
        if kind == "none":
            kwargs[f.name] = None
        elif kind == "tensor":
            kwargs[f.name] = tensors[f.name]
        elif kind == "array":
            kwargs[f.name] = tensors[f.name].numpy()
        elif kind == "tensor_dict":
            kwargs[f.name] = {k: tensors[f"{f.name}/{k}"] for k in spec["keys"]}
        elif kind == "table":
            kwargs[f.name] = read_table(path / spec["path"], spec)
        elif kind == "dataclass":
            from_dict = getattr(tp, "from_dict", None)
            data = json_fields[f.name]
            kwargs[f.name] = from_dict(data) if callable(from_dict) else tp(**data)
        else:
            kwargs[f.name] = _restore_json(json_fields[f.name], tp)
    return kwargs


def _restore_json(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, list) and (tp is tuple or origin is tuple):
        return tuple(value)
    if isinstance(value, dict) and origin is dict and args and args[0] is int:
        return {int(k): _restore_json(v, args[1]) for k, v in value.items()}
    return value


def data_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init and f.name != "meta"]


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def field_kind(tp: Any) -> str | None:
    """How a field of annotation ``tp`` is stored; None if it cannot be."""
    tp = _unwrap_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    base = getattr(tp, "array_type", tp)  # jaxtyping's Float[Tensor, "..."] wraps the type
    if isinstance(base, type) and issubclass(base, torch.Tensor):
        return "tensor"
    if base is np.ndarray or origin is np.ndarray:
        return "array"
    if tp is pd.DataFrame:
        return "table"
    if dataclasses.is_dataclass(tp):
        return "dataclass"
    if origin is dict and len(args) == 2 and field_kind(args[1]) == "tensor":
        return "tensor_dict"
    if origin in (Union, types.UnionType):
        return "json" if all(field_kind(a) == "json" for a in args) else None
    return "json" if tp in JSON_TYPES or origin in (dict, list, tuple) else None


def _expect(value: Any, tp: type, name: str) -> Any:
    if not isinstance(value, tp):
        raise TypeError(f"field {name!r} should be a {tp.__name__}, got {type(value).__name__}")
    return value


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()  # clone: safetensors rejects shared storage


def _numpy_to_torch(a: np.ndarray, name: str) -> torch.Tensor:
    try:
        return torch.from_numpy(np.ascontiguousarray(a))
    except TypeError:
        raise TypeError(
            f"field {name!r}: numpy dtype {a.dtype} cannot go in safetensors; use a list field"
        ) from None
