"""DataFrames as CSV with a small JSON schema, so tables round-trip with their dtypes.

CSV keeps run directories readable by any tool; the schema (stored in the run manifest)
restores what CSV loses: column dtypes (numeric, nullable, bool, category with its
categories, datetime/timedelta), missing vs empty strings, and a non-default index.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .jsonable import jsonable as _jsonable


def write_table(df: pd.DataFrame, path: Path) -> dict:
    if isinstance(df.columns, pd.MultiIndex):
        raise TypeError(f"{path.stem}: MultiIndex columns are not supported; flatten them")
    default_index = (
        isinstance(df.index, pd.RangeIndex)
        and df.index.name is None
        and (df.index.start == 0 and df.index.step == 1)
    )
    index = None if default_index else df.index.to_frame(index=False)
    flat = (
        df.reset_index(drop=True)
        if index is None
        else pd.concat([index, df.reset_index(drop=True)], axis=1)
    )
    columns = []
    for i in range(flat.shape[1]):
        col, dtype = flat.iloc[:, i], flat.dtypes.iloc[i]
        spec: dict[str, Any] = {"dtype": str(dtype)}
        if isinstance(dtype, pd.CategoricalDtype):
            spec["categories"] = _jsonable(list(dtype.categories), path.stem)
            spec["ordered"] = bool(dtype.ordered)
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            spec["nulls"] = np.flatnonzero(col.isna().to_numpy()).tolist()
        columns.append(spec)
    path.parent.mkdir(exist_ok=True)
    # QUOTE_ALL: a bare carriage return inside a token string would otherwise split the row
    flat.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return {
        "columns": _jsonable(list(df.columns), path.stem),
        "spec": columns,
        "index_names": None if index is None else _jsonable(list(df.index.names), path.stem),
    }


def read_table(path: Path, info: dict) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raw = pd.DataFrame()
    cols = {i: _parse_column(raw.iloc[:, i], spec) for i, spec in enumerate(info["spec"])}
    flat = pd.DataFrame(cols)
    names = info["index_names"]
    df = flat.iloc[:, len(names or []) :]
    df.columns = info["columns"]
    if names is not None:
        df.index = (
            pd.MultiIndex.from_frame(flat.iloc[:, : len(names)], names=names)
            if len(names) > 1
            else pd.Index(flat.iloc[:, 0]).rename(names[0])
        )
    return df


def _parse_column(text: pd.Series, spec: dict) -> pd.Series:
    dtype = spec["dtype"]
    s = text.astype(object).where(text != "", None)
    if dtype == "category":
        cats = spec["categories"]
        return s.map({str(c): c for c in cats}).astype(
            pd.CategoricalDtype(cats, ordered=spec["ordered"])
        )
    if pd.api.types.is_bool_dtype(pd.api.types.pandas_dtype(dtype)):
        return s.map({"True": True, "False": False}).astype(dtype)
    if pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype)):
        return pd.to_numeric(s).astype(dtype)
    if dtype.startswith("datetime64"):
        return pd.to_datetime(s).astype(dtype)
    if dtype.startswith("timedelta64"):
        return pd.to_timedelta(s).astype(dtype)
    out = text.astype(object)  # empty strings stay empty; recorded nulls become missing
    out.iloc[spec.get("nulls", [])] = None
    return out.astype(dtype) if dtype != "object" else out
