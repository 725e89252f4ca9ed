"""Run directories and the `Result` base type every analysis returns.

An analysis is a function ``(model, prompts, config) -> SomeResult``. ``SomeResult`` is a
``@dataclass`` subclass of `Result` naming its analysis (``analysis: ClassVar[str]``); it saves
itself to a run directory and any run loads back without knowing its type (`load_run`)::

    runs/dla-20250101-120000/
      manifest.json         analysis, versions, created (UTC), model, config, seed, timings,
                            summary, schema (how each field is stored), files, complete: true
      fields.json           JSON-able fields (dict/list/str/int/float/bool/None, dataclasses)
      tensors.safetensors   torch.Tensor, numpy and dict[str, Tensor] fields (CPU, contiguous)
      tables/<field>.csv    pandas.DataFrame fields
      figures/<name>.html   plotly, include_plotlyjs="cdn"; figures/<name>.json reloads fast

Design: provenance lives on the result as ``meta: RunMeta`` (keyword-only, defaulted), filled
by the analysis function, which is the one place that knows the model, config, seed and
timings. ``save`` then needs only a directory, and a loaded result keeps its provenance.

DataFrame round trip: values, column names and order, dtypes (numeric, nullable, bool,
str/object, category with its categories, datetime/timedelta) and any non-default index
(names included) are restored; missing values in string columns stay missing, empty strings
stay empty. Not supported: MultiIndex columns; object columns come back as strings.
JSON round trip: tuples and ``dict[int, ...]`` keys are restored from the annotation.

Saving is atomic: everything is written to a hidden sibling ``.<name>.tmp-<pid>`` and renamed
into place, so a directory without ``.tmp`` always holds a complete run. Loading reads only
JSON, CSV and safetensors; nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from typing_extensions import Self

from ..engine.files import save_safetensors
from .fields import FieldLoadError, data_fields, decode_fields, encode_fields
from .display import Displayed
from .figstyle import layers_top_down
from .jsonable import jsonable
from .replace import _check_replaceable

MANIFEST = "manifest.json"
RESULT_TYPES: dict[str, type[Result]] = {}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_JSON_TYPES = (str, int, float, bool, dict, list, tuple, type(None), Any)
R = TypeVar("R", bound="Result")


class RunLoadError(ValueError):
    """A directory is not a complete steerlens run, or not the expected analysis."""


@dataclass
class RunMeta:
    """Provenance of a result; stored in the manifest, restored on load."""

    model: dict = field(default_factory=dict)
    """What the caller knows about the model: spec, sha256, family, ..."""
    config: Any = field(default_factory=dict)
    """The analysis config; a dataclass is saved as a dict (and loads back as one)."""
    seed: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per named phase; fill with ``with meta.timed("forward"): ...``."""

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start


@dataclass
class RunInfo:
    """One entry of `list_runs`; a broken run has ``complete=False`` and an ``error``."""

    path: Path
    analysis: str | None = None
    created: str | None = None
    model: str | None = None
    complete: bool = False
    error: str | None = None

    @property
    def broken(self) -> bool:
        return not self.complete


@dataclass
class Result(Displayed):
    """Base of every analysis result: automatic save/load by field type, figures, summary."""

    analysis: ClassVar[str]
    meta: RunMeta = field(default_factory=RunMeta, kw_only=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("analysis")
        if name is None:
            return  # an intermediate base class, not an analysis
        if not _SAFE_NAME.match(name):
            raise ValueError(f"{cls.__qualname__}.analysis={name!r}: use letters, digits, _.-")
        old = RESULT_TYPES.get(name)
        if old is not None and _qualname(old) != _qualname(cls):
            raise ValueError(f"analysis {name!r} is already registered by {_qualname(old)}")
        RESULT_TYPES[name] = cls  # same qualname: a re-run notebook cell replaces the old one

    def figures(self) -> dict[str, Any]:
        """Named plotly figures; subclasses override."""
        return {}

    def summary(self) -> dict:
        """JSON-able headline numbers, shown in run lists; subclasses override."""
        return {}

    def to_json(self) -> dict:
        """The whole result as plain JSON data (tensors as nested lists, tables as records)."""
        out: dict[str, Any] = {"analysis": self.analysis, "meta": jsonable(self.meta, "meta")}
        for f in data_fields(type(self)):
            value = getattr(self, f.name)
            if isinstance(value, (torch.Tensor, np.ndarray)):
                value = value.tolist()
            elif isinstance(value, pd.DataFrame):
                value = json.loads(value.to_json(orient="table", date_format="iso"))
            elif isinstance(value, dict) and all(
                isinstance(v, torch.Tensor) for v in value.values()
            ):
                value = {k: v.tolist() for k, v in value.items()}
            out[f.name] = jsonable(value, f.name)
        out["summary"] = jsonable(self.summary(), "summary()")
        return out

    def save(self, dir: str | Path | None = None, overwrite: bool = False) -> Path:
        """Write the run atomically to ``dir`` (default: `default_run_dir`); return its path."""
        cls = type(self)
        if "__dataclass_fields__" not in cls.__dict__ or getattr(cls, "analysis", None) is None:
            raise TypeError(f"{cls.__qualname__}: decorate with @dataclass and set `analysis`")
        final = Path(dir) if dir is not None else default_run_dir(self.analysis)
        if final.exists() and (not overwrite or not final.is_dir()):
            raise FileExistsError(f"{final} exists; pass overwrite=True to replace it")
        if final.is_dir():
            _check_replaceable(final, self.analysis)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            _write_run(self, tmp)
            if final.exists():
                old = final.parent / f".{final.name}.old-{os.getpid()}"
                os.rename(final, old)
                try:
                    os.rename(tmp, final)
                except BaseException:
                    os.rename(old, final)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._run_dir = final  # shown by the Jupyter view (how to open it in the explorer)
        return final

    @classmethod
    def load(cls, dir: str | Path) -> Self:
        """Load a run saved by this class (`Result.load` itself accepts any analysis)."""
        if getattr(cls, "analysis", None) is None:
            return load_run(dir)
        path = Path(dir)
        manifest = read_manifest(path)
        if manifest["analysis"] != cls.analysis:
            raise RunLoadError(
                f"{path} is a {manifest['analysis']!r} run, not {cls.analysis!r}; "
                "use load_run() to open any run"
            )
        return _read_run(cls, path, manifest)


def load_run(dir: str | Path) -> Result:
    """Open any complete run by its manifest's analysis (importing steerlens' own result module)."""
    path = Path(dir)
    manifest = read_manifest(path)
    name = manifest["analysis"]
    owner = str(manifest.get("result_type", "")).rpartition(".")[0]
    if name not in RESULT_TYPES and owner.split(".")[0] in ("interp", "steering", "saes"):
        with contextlib.suppress(ImportError):
            importlib.import_module(owner)  # one of steerlens' own modules: registers the type
    if name not in RESULT_TYPES:
        raise RunLoadError(
            f"{path}: no Result type registered for analysis {name!r}; "
            f"import the module defining {manifest.get('result_type', 'it')}"
        )
    return _read_run(RESULT_TYPES[name], path, manifest)


def read_manifest(dir: str | Path) -> dict:
    """The manifest of a complete run; `RunLoadError` if the run is missing or partial."""
    path = Path(dir)
    if not path.is_dir():
        raise RunLoadError(f"{path} is not a directory (a run is a directory with {MANIFEST})")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunLoadError(
            f"{path}: no {MANIFEST}; the run was interrupted or is not a steerlens run"
        ) from None
    except (OSError, ValueError) as e:
        raise RunLoadError(f"{path}/{MANIFEST} is unreadable ({e}); the run is corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise RunLoadError(
            f"{path}: {MANIFEST} is not marked complete; the run was "
            "interrupted or is not a steerlens run"
        )
    missing = [f for f in manifest.get("files", []) if not (path / f).is_file()]
    if missing or not isinstance(manifest.get("analysis"), str):
        what = f"files {missing} are missing" if missing else "no analysis name"
        raise RunLoadError(f"{path}: {what}; the run is incomplete or corrupt")
    return manifest


def load_figures(dir: str | Path) -> dict[str, Any]:
    """The figures saved as plotly JSON in a run, by name (for the app)."""
    import plotly.io as pio

    files = read_manifest(dir)["files"]
    return {
        Path(f).stem: pio.from_json((Path(dir) / f).read_text(encoding="utf-8"))
        for f in files
        if f.startswith("figures/") and f.endswith(".json")
    }


def list_runs(root: str | Path = "runs") -> list[RunInfo]:
    """Every run directory under ``root`` (sorted by name); never raises on a broken run.

    Hidden directories (including ``.<name>.tmp-<pid>`` left by a killed process) are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    infos = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            m = read_manifest(path)
            model = m.get("model") if isinstance(m.get("model"), dict) else {}
            infos.append(RunInfo(path, m["analysis"], m.get("created"), model.get("spec"), True))
        except Exception as e:
            infos.append(RunInfo(path, complete=False, error=str(e)))
    return infos


def default_run_dir(analysis: str, root: str | Path = "runs") -> Path:
    """``<root>/<analysis>-<YYYYmmdd-HHMMSS>`` in local time, with -2, -3, ... if taken."""
    base = Path(root) / f"{analysis}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


# --- writing -------------------------------------------------------------------------------


def _write_run(result: Result, tmp: Path) -> None:
    cls = type(result)
    encoded = encode_fields(result, tmp)
    schema, json_fields, tensors, files = encoded.schema, encoded.json_fields, encoded.tensors, encoded.files
    if tensors:
        _write_tensors(tensors, tmp / "tensors.safetensors")
        files.append("tensors.safetensors")
    _write_json(json_fields, tmp / "fields.json")
    files.append("fields.json")
    files += _write_figures(result.figures(), tmp / "figures")
    manifest = {
        "analysis": cls.analysis,
        "result_type": _qualname(cls),
        "steerlens_version": _versions("steerlens").get("steerlens"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **{
            m.name: jsonable(getattr(result.meta, m.name), m.name)
            for m in dataclasses.fields(RunMeta)
        },
        "versions": {
            "python": sys.version.split()[0],
            **_versions("torch", "transformers", "numpy", "pandas", "safetensors", "plotly"),
        },
        "summary": jsonable(result.summary(), "summary()"),
        "schema": schema,
        "files": files,
        "complete": True,
    }
    _write_json(manifest, tmp / MANIFEST, sync=True)  # last: its presence marks the run done


def _write_json(obj: Any, path: Path, sync: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_safetensors(tensors, path)


def _write_figures(figures: dict[str, Any], folder: Path) -> list[str]:
    if figures:
        folder.mkdir()
    for name, fig in figures.items():
        if not _SAFE_NAME.match(name):
            raise ValueError(f"figure name {name!r} is not a safe file name")
        layers_top_down(fig)  # layer 0 at the top, as in the explorer
        fig.write_html(folder / f"{name}.html", include_plotlyjs="cdn")
        (folder / f"{name}.json").write_text(fig.to_json(), encoding="utf-8")
    return [f"figures/{n}.{ext}" for n in figures for ext in ("html", "json")]


# --- reading -------------------------------------------------------------------------------


def _read_run(cls: type[R], path: Path, manifest: dict) -> R:
    try:
        return _build(cls, path, manifest)
    except RunLoadError:
        raise
    except Exception as e:
        raise RunLoadError(
            f"{path}: cannot rebuild {cls.__qualname__} ({type(e).__name__}: "
            f"{e}); the run is corrupt or from an incompatible version"
        ) from e


def _build(cls: type[R], path: Path, manifest: dict) -> R:
    schema = manifest.get("schema", {})
    json_fields = json.loads((path / "fields.json").read_text(encoding="utf-8"))
    tensor_file = path / "tensors.safetensors"
    tensors = load_file(str(tensor_file)) if tensor_file.is_file() else {}
    try:
        kwargs = decode_fields(cls, path, schema, json_fields, tensors)
    except FieldLoadError as e:
        raise RunLoadError(str(e)) from None
    meta = {k: manifest[k] for k in ("model", "config", "seed", "timings") if k in manifest}
    result = cls(**kwargs, meta=RunMeta(**meta))
    result._run_dir = path
    return result


# --- helpers -------------------------------------------------------------------------------


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages``; absent ones are left out."""
    found = {}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
