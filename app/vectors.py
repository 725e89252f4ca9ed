"""Steering vectors for the playground: from run folders or uploaded safetensors bytes.

Every vector becomes a `steering.vectors.SteeringVector` (site, kind, per-layer
directions). Files in its format (header metadata ``steerlens.vector``) are read by its
own validating loader. Plain safetensors files are recognised by tensor names: one 1-D
tensor per layer whose key ends in the layer number (``layer.3``, ``direction.3``,
``directions/3``) or names a site (``blocks.3.hook_mlp_out``: the site comes from the
key), or one 2-D tensor ``[layers, width]``.

Uploads are bytes parsed by safetensors (a JSON header and raw numbers), never unpickled
or executed; anything not named ``*.safetensors`` is refused before it is read.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes

from steering.vectors import METADATA_KEY, SteeringVector, VectorFileError

from .runs import RunEntry

_SITE_KEY = re.compile(r"^(?:.*?[./_-])?blocks\.(\d+)\.(attn\.hook_z|hook_[A-Za-z_]+)$")
_LAYER_KEY = re.compile(r"^(.*?)(\d+)$")  # layer.3, direction_3, directions/3
_SITES = {"hook_resid_post": "layer", "hook_mlp_out": "ffn", "attn.hook_z": "attention"}
MAX_UPLOAD_BYTES = 512 * 2**20


@dataclass
class VectorChoice:
    """A vector the playground can apply, with where it came from."""

    label: str
    vector: SteeringVector
    name: str | None = None  # the run list's name of its file (what ``?vector=`` links name)


def vector_sets(tensors: dict[str, torch.Tensor], source: str) -> list[VectorChoice]:
    """Every per-layer group of float directions among named tensors."""
    groups: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    found = []
    for key, t in tensors.items():
        if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
            continue
        if t.ndim == 1:
            site_match, layer_match = _SITE_KEY.match(key), _LAYER_KEY.match(key)
            if site_match and site_match.group(2) in _SITES:
                site = _SITES[site_match.group(2)]
                groups.setdefault((site_match.group(2), site), {})[int(site_match.group(1))] = t
            elif layer_match and not site_match:
                name = layer_match.group(1).rstrip("./_-:") or "vector"
                groups.setdefault((name, "layer"), {})[int(layer_match.group(2))] = t
        elif t.ndim == 2 and 0 < t.shape[0] <= 512:
            found.append(VectorChoice(f"{source} · {key}", SteeringVector(dict(enumerate(t)), method="tensor")))
    for (name, site), vectors in groups.items():
        if len({v.shape[0] for v in vectors.values()}) == 1:
            found.append(VectorChoice(f"{source} · {name}", SteeringVector(vectors, site=site, method="tensor")))
    return sorted(found, key=lambda c: c.label)


def read_vector_bytes(filename: str, data: bytes) -> list[VectorChoice]:
    """The vectors of an uploaded file; `VectorFileError` for anything but readable safetensors."""
    name = Path(filename).name
    if not name.lower().endswith(".safetensors"):
        raise VectorFileError(f"{name}: only .safetensors files are accepted")
    if len(data) > MAX_UPLOAD_BYTES:
        raise VectorFileError(f"{name}: larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    if METADATA_KEY in _header_metadata(name, data):
        with tempfile.TemporaryDirectory() as folder:  # the format's own loader validates it
            path = Path(folder) / "upload.safetensors"
            path.write_bytes(data)
            return [VectorChoice(f"upload · {name}", SteeringVector.load(path))]
    try:
        tensors = load_safetensors_bytes(data)
    except Exception as e:
        raise VectorFileError(f"{name} is not a readable safetensors file ({e})") from None
    found = vector_sets(tensors, f"upload · {name}")
    if not found:
        raise VectorFileError(f"{name}: no per-layer vectors (name tensors layer.<l>, direction.<l> or "
                              "blocks.<l>.hook_resid_post, or save one [layers, width] tensor)")
    return found


def _header_metadata(name: str, data: bytes) -> dict:
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if size < 2 or size > len(data) - 8:
        raise VectorFileError(f"{name} is not a safetensors file (bad header)")
    try:
        header = json.loads(data[8 : 8 + size])
    except ValueError:
        raise VectorFileError(f"{name} is not a safetensors file (header is not JSON)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def vectors_in_runs(entries: list[RunEntry], width: int | None = None) -> list[VectorChoice]:
    """The listed vector files (in the runs folder and inside its run folders: `app.runs.scan_runs`
    lists both) of width `width`; a file inside a run is labelled ``run <run> · <file>``."""
    found = []
    for entry in entries:
        if entry.broken or entry.kind != "vector":
            continue
        try:
            vector = SteeringVector.load(entry.path)
        except Exception:  # an unreadable file holds no vectors for us; the run list marks it
            continue
        label = f"run {entry.parent} · {entry.path.name}" if entry.parent else f"file {entry.name}"
        if width in (None, vector.width):
            found.append(VectorChoice(label, vector, entry.name))
    return found
