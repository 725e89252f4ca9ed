"""The run directories the explorer may open: safe listing and lazy, read-only access.

The app is handed one root folder. Everything it opens is reached from `scan_runs(root)`:
the UI passes run *names* (directory names from the listing) around, never paths, and
`find_run` answers only names that are in the listing. Each run path and every file a
manifest names is resolved (`Path.resolve`, so symlinks and ``..`` are followed) and must
stay inside the root and inside its run; anything else marks the run broken or is refused.

`SavedRun` reads the storage format of `interp.runs.results` directly (manifest, fields.json,
tables/*.csv, tensors.safetensors, figures/*.json) without importing the analysis that
wrote it, so the explorer opens runs of analyses it has never seen. Nothing is unpickled:
JSON, CSV and safetensors only.

Steering-vector files (`steering.vectors.SteeringVector`, ``*.safetensors`` with
``steerlens.vector`` header metadata) lying in the root, in a folder of runs or inside a
run folder (a tour's ``skills/direction-0.safetensors``, listed as ``skills/direction-0.safetensors``
right after its run) are listed too, as entries of kind "vector" and analysis "steering-vector".

While scanning, every file a run lists is checked cheaply (`app.integrity`: sizes and the
safetensors header; cached by mtime), so a truncated or empty file marks its run broken
with the reason instead of failing when the run is opened or compared.
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import safe_open

from interp.runs.results import RunLoadError, list_runs, load_run, read_manifest
from interp.runs.tables import read_table

from .integrity import file_damage, run_damage

TENSOR_FILE = "tensors.safetensors"
VECTOR_METADATA = "steerlens.vector"  # header key of `steering.vectors.SteeringVector` files
VECTOR_ANALYSIS = "steering-vector"  # how vector files are listed next to runs


class UnsafePathError(RunLoadError):
    """A path that would leave the runs root (or its run directory)."""


def inside(base: Path, candidate: Path) -> Path:
    """`candidate` resolved; `UnsafePathError` unless it lies inside resolved `base`."""
    base, resolved = base.resolve(), candidate.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(f"{candidate} is outside {base}")
    return resolved


@dataclass(frozen=True)
class RunEntry:
    """One row of the run list; `name` is the only handle the UI passes around."""

    name: str
    path: Path
    analysis: str | None = None
    model: str | None = None
    created: str | None = None
    error: str | None = None
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    kind: str = "run"  # "run" (a run directory) or "vector" (a steering-vector file)
    parent: str | None = None  # for a vector file saved inside a run folder: that run's name

    @property
    def broken(self) -> bool:
        return self.error is not None


def scan_runs(root: str | Path) -> list[RunEntry]:
    """Every run directory directly under `root`, broken ones included (with `error`), and
    the runs of folders of runs one level down (a tour's folder: ``root/tour-1/dla``), named
    ``"<folder>/<run>"``; vector files in either place are listed too."""
    root = Path(root)
    if not root.is_dir():
        return []
    entries = []
    for info in list_runs(root):
        if info.broken and _is_group(info.path):
            entries += _entries(root, list_runs(info.path), prefix=f"{info.path.name}/")
            entries += _vector_files(root, info.path, prefix=f"{info.path.name}/")
        else:
            entries += _entries(root, [info])
    return entries + _vector_files(root, root)


def _is_group(path: Path) -> bool:
    """A folder without a manifest holding at least one run directory or vector file."""
    if (path / "manifest.json").exists() or path.is_symlink():
        return False
    try:
        return any((p / "manifest.json").is_file() for p in path.iterdir() if p.is_dir()) or any(
            path.glob("*.safetensors"))
    except OSError:
        return False


def _entries(root: Path, infos, prefix: str = "") -> list[RunEntry]:
    entries = []
    for info in infos:
        name = prefix + info.path.name
        try:
            path = inside(root, info.path)
        except UnsafePathError:
            entries.append(RunEntry(name, info.path, error="links outside the runs folder; not opened"))
            continue
        if info.broken:
            entries.append(RunEntry(name, path, error=info.error or "incomplete run"))
            continue
        manifest = read_manifest(path)  # list_runs just read it; small
        config = manifest.get("config")
        summary = manifest.get("summary")
        files = [f for f in manifest.get("files", []) if isinstance(f, str)]
        entries.append(RunEntry(
            name, path, info.analysis, info.model, info.created, error=run_damage(path, files),
            config=config if isinstance(config, dict) else {"config": config},
            summary=summary if isinstance(summary, dict) else {},
        ))
        entries += _vector_files(root, path, prefix=f"{name}/", parent=name, skip=set(files))
    return entries


def _vector_files(root: Path, folder: Path, prefix: str = "", parent: str | None = None,
                  skip: set[str] = frozenset()) -> list[RunEntry]:
    """Steering-vector files (safetensors with `steerlens.vector` metadata) directly in `folder`
    (a run's own files, `skip`, excluded); a damaged file is listed broken with the reason."""
    entries = []
    for path in sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith(".") and p.name not in skip):
        try:
            resolved = inside(root, path)
            damage = file_damage(resolved)
            if damage is not None:
                raise ValueError(damage)
            with safe_open(str(resolved), framework="pt") as fh:
                header = fh.metadata() or {}
            if VECTOR_METADATA not in header:
                continue  # some other tensor file, not ours to list
            meta = json.loads(header[VECTOR_METADATA])
            created = datetime.fromtimestamp(resolved.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
            summary = {k: meta.get(k) for k in ("site", "kind", "method", "layers", "width")}
            entries.append(RunEntry(prefix + path.name, resolved, VECTOR_ANALYSIS, model.get("spec"), created,
                                    config=meta.get("config") or {}, summary=summary, kind="vector", parent=parent))
        except Exception as e:
            entries.append(RunEntry(prefix + path.name, path, VECTOR_ANALYSIS, error=f"unreadable vector file ({e})",
                                    kind="vector", parent=parent))
    return entries


def find_run(entries: list[RunEntry], name: Any) -> RunEntry | None:
    """The listed run called `name` (a query parameter or widget value), else None."""
    if not isinstance(name, str):
        return None
    return next((e for e in entries if e.name == name), None)


class SavedRun:
    """Read-only view of one complete run; parts are read on first use and kept."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path).resolve()
        self.name = name or self.path.name  # the listing's name ("tour-1/dla" for nested runs)
        self.manifest = read_manifest(self.path)
        self.analysis: str = self.manifest["analysis"]
        self.schema: dict[str, dict] = self.manifest.get("schema") or {}
        self._lock = threading.Lock()
        self._fields: dict | None = None
        self._figures: dict[str, Any] = {}
        self._tables: dict[str, pd.DataFrame] = {}
        self._tensor_info: dict[str, tuple[tuple[int, ...], str]] | None = None
        self._tensors: dict[str, torch.Tensor] = {}
        self._result: Any = None

    def result(self, module: str):
        """The typed `Result` (via `interp.runs.results.load_run`) after importing `module`, which
        defines its class; pages use it to redraw the analysis' own figures with new choices."""
        if self._result is None:
            importlib.import_module(module)  # module names come from page files, never from input
            with self._lock:  # the explorer's warm-up thread may be loading it too
                if self._result is None:
                    self._result = load_run(self.path)
        return self._result

    # ---- files named by the manifest, each checked to stay inside the run ------------
    def file(self, rel: str) -> Path:
        if rel not in self.manifest.get("files", []):
            raise RunLoadError(f"{self.name}: {rel} is not a file of this run")
        return inside(self.path, self.path / rel)

    @property
    def model(self) -> dict:
        model = self.manifest.get("model")
        return model if isinstance(model, dict) else {}

    @property
    def config(self) -> dict:
        config = self.manifest.get("config")
        return config if isinstance(config, dict) else {"config": config}

    @property
    def summary(self) -> dict:
        summary = self.manifest.get("summary")
        return summary if isinstance(summary, dict) else {}

    # ---- JSON fields ----------------------------------------------------------------
    @property
    def fields(self) -> dict:
        if self._fields is None:
            with self._lock:
                data = json.loads(self.file("fields.json").read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise RunLoadError(f"{self.name}: fields.json is not an object; the run is corrupt")
                self._fields = data
        return self._fields

    def field(self, name: str, default: Any = None) -> Any:
        """A saved field by name whatever its storage: JSON value, tensor or table."""
        kind = self.schema.get(name, {}).get("kind")
        if kind in ("tensor", "array"):
            return self.tensor(name)
        if kind == "tensor_dict":
            return {k: self.tensor(f"{name}/{k}") for k in self.schema[name].get("keys", [])}
        if kind == "table":
            return self.table(name)
        if kind == "none":
            return default
        return self.fields.get(name, default)

    def has(self, name: str) -> bool:
        return self.schema.get(name, {}).get("kind", "none") != "none"

    # ---- figures --------------------------------------------------------------------
    def figure_names(self) -> list[str]:
        return [Path(f).stem for f in self.manifest.get("files", [])
                if f.startswith("figures/") and f.endswith(".json") and f.count("/") == 1]

    def figure(self, name: str):
        if name not in self._figures:
            import plotly.graph_objects as go

            data = json.loads(self.file(f"figures/{name}.json").read_text(encoding="utf-8"))
            self._figures[name] = go.Figure(data)
        return self._figures[name]

    # ---- tables ---------------------------------------------------------------------
    def table_names(self) -> list[str]:
        return [n for n, s in self.schema.items() if isinstance(s, dict) and s.get("kind") == "table"]

    def table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            spec = self.schema.get(name)
            if not spec or spec.get("kind") != "table":
                raise RunLoadError(f"{self.name}: no table {name!r}")
            self._tables[name] = read_table(self.file(spec["path"]), spec)
        return self._tables[name]

    # ---- tensors (safetensors header read once; each tensor on demand) -------------
    def tensor_info(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (shape, dtype) from the safetensors header, without reading data."""
        if self._tensor_info is None:
            info: dict[str, tuple[tuple[int, ...], str]] = {}
            if TENSOR_FILE in self.manifest.get("files", []):
                with safe_open(str(self.file(TENSOR_FILE)), framework="pt") as fh:
                    for key in fh.keys():
                        part = fh.get_slice(key)
                        info[key] = (tuple(part.get_shape()), str(part.get_dtype()))
            self._tensor_info = info
        return self._tensor_info

    def tensor(self, name: str) -> torch.Tensor:
        if name not in self._tensors:
            if name not in self.tensor_info():
                raise RunLoadError(f"{self.name}: no tensor {name!r}")
            with safe_open(str(self.file(TENSOR_FILE)), framework="pt") as fh:
                self._tensors[name] = fh.get_tensor(name)
        return self._tensors[name]
