"""`SteeringVector`: directions (or AUSteer masks) per layer, stored as safetensors + JSON.

One type carries every kind of steering direction steerlens makes: difference of means
and PCA of contrast pairs (`steering.contrast`), an arbitrary tensor (`from_tensor`),
AUSteer coordinate masks (`steering.austeer`), and later SAE columns and skill
directions. A vector names:

- `site`: where it acts. "layer" = decoder-layer output (`blocks.{l}.hook_resid_post`),
  "ffn" = what the MLP adds (`blocks.{l}.hook_mlp_out`), "attention" = the input of
  `o_proj` (`blocks.{l}.attn.hook_z`, flattened to H * d_head coordinates).
- `kind`: "add" (x + alpha * v, activation addition) or "scale" (x * (1 + alpha * v),
  AUSteer's multiplicative edit on selected coordinates).
- `model`: the facts of the model it was made on (family, widths, layer count, vocab,
  GGUF sha256 where known); `check_model` refuses a model that does not match.

File format (`.safetensors`, never pickle): one float tensor `layer.<l>` [width] per
layer, optional `extra.<name>` tensors (e.g. AUSteer's full score matrix), and the
header metadata key `steerlens.vector` holding the JSON of everything else. Loading
validates the format version, names, dtypes, widths and finiteness before returning.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from interp.engine.files import save_safetensors

from .gguf_io import read_gguf
from .vector_files import METADATA_KEY, PICKLE_ADVICE, VectorFileError, looks_pickled, refuse_unsafe

FORMAT_VERSION = 1
SITES = {"layer": "blocks.{layer}.hook_resid_post", "ffn": "blocks.{layer}.hook_mlp_out",
         "attention": "blocks.{layer}.attn.hook_z"}
KINDS = ("add", "scale")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def model_facts(model) -> dict:
    """What a vector remembers about the model it was made on (JSON-able)."""
    info = dict(getattr(model, "info", {}) or {})
    return {"spec": info.get("spec"), "sha256": info.get("sha256"), "family": model.spec.family,
            "name_or_path": getattr(model.config, "_name_or_path", None) or None,
            "n_layers": model.n_layers, "d_model": model.d_model, "n_heads": model.n_heads,
            "d_head": model.d_head, "d_vocab": model.d_vocab}


def site_width(model, site: str) -> int:
    """Number of coordinates a vector has at `site` on `model`."""
    if site not in SITES:
        raise VectorFileError(f"unknown vector site '{site}': use one of {', '.join(SITES)}")
    return model.n_heads * model.d_head if site == "attention" else model.d_model


@dataclass
class SteeringVector:
    """Per-layer steering directions (see the module docstring for the fields' meaning)."""

    vectors: dict[int, torch.Tensor]  # layer -> [width] float32
    site: str = "layer"
    kind: str = "add"
    method: str = "tensor"
    normalization: str = "none"
    model: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise VectorFileError(f"unknown vector site '{self.site}': use one of {', '.join(SITES)}")
        if self.kind not in KINDS:
            raise VectorFileError(f"unknown vector kind '{self.kind}': use one of {', '.join(KINDS)}")
        if not self.vectors:
            raise VectorFileError("a steering vector needs at least one layer")
        clean: dict[int, torch.Tensor] = {}
        for layer, vec in sorted(self.vectors.items()):
            vec = torch.as_tensor(vec)
            if not isinstance(layer, int) or layer < 0:
                raise VectorFileError(f"layer keys must be non-negative ints, got {layer!r}")
            _check_tensor(f"layer {layer}", vec)
            clean[layer] = vec.detach().to("cpu", torch.float32).contiguous()
        widths = {v.shape[0] for v in clean.values()}
        if len(widths) != 1:
            raise VectorFileError(f"all layers of a vector need one width, got {sorted(widths)}")
        self.vectors = clean
        self.extras = {k: torch.as_tensor(v).detach().to("cpu").contiguous() for k, v in self.extras.items()}

    # ---- facts ----------------------------------------------------------------------
    @property
    def layers(self) -> list[int]:
        return sorted(self.vectors)

    @property
    def width(self) -> int:
        return next(iter(self.vectors.values())).shape[0]

    def site_name(self, layer: int) -> str:
        """The engine site this vector edits at `layer`."""
        return SITES[self.site].format(layer=layer)

    def subset(self, layers) -> "SteeringVector":
        """The same vector restricted to `layers` (e.g. one layer for a llama.cpp export)."""
        layers = [layers] if isinstance(layers, int) else list(layers)
        missing = sorted(set(layers) - set(self.vectors))
        if missing or not layers:
            raise VectorFileError(f"layers {missing or layers} are not in this vector; it has layers {self.layers}")
        return replace(self, vectors={layer: self.vectors[layer] for layer in layers})

    def norms(self) -> dict[int, float]:
        return {layer: float(v.norm()) for layer, v in self.vectors.items()}

    def summary(self) -> dict:
        nonzero = sum(int((v != 0).sum()) for v in self.vectors.values())
        return {"site": self.site, "kind": self.kind, "method": self.method, "layers": self.layers,
                "width": self.width, "normalization": self.normalization, "nonzero_coordinates": nonzero,
                "norms": {str(k): round(v, 6) for k, v in self.norms().items()},
                "model": self.model, "config": self.config, "extras": sorted(self.extras)}

    # ---- model compatibility ----------------------------------------------------------
    def check_model(self, model, layers=None, allow_other_model: bool = False) -> None:
        """Raise VectorFileError unless this vector fits `model` (width, layers, identity)."""
        width = site_width(model, self.site)
        if self.width != width:
            raise VectorFileError(
                f"vector has width {self.width} but the model's '{self.site}' site has {width} coordinates "
                f"(made for d_model={self.model.get('d_model')}, this model has d_model={model.d_model})")
        for layer in self.layers if layers is None else layers:
            if not 0 <= layer < model.n_layers:
                raise VectorFileError(f"layer {layer} out of range: the model has layers 0..{model.n_layers - 1}")
        if allow_other_model or not self.model:
            return
        here = model_facts(model)
        for key in ("family", "n_layers", "d_model", "n_heads", "d_head", "d_vocab"):
            if self.model.get(key) is not None and self.model[key] != here[key]:
                raise VectorFileError(
                    f"vector was made for another model ({key}={self.model[key]}, this model has {here[key]}; "
                    f"made on {self.model.get('spec') or self.model.get('name_or_path')}); "
                    "pass --allow-model-mismatch to use it anyway")
        if self.model.get("sha256") and here["sha256"] and self.model["sha256"] != here["sha256"]:
            raise VectorFileError(
                f"vector was made on a different checkpoint (sha256 {self.model['sha256'][:12]}..., this model "
                f"{here['sha256'][:12]}...); pass --allow-model-mismatch to use it anyway")

    # ---- files ------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"format": "steerlens.vector", "version": FORMAT_VERSION, "site": self.site, "kind": self.kind,
                "method": self.method, "normalization": self.normalization, "layers": self.layers,
                "width": self.width, "model": self.model, "config": self.config}

    def save(self, path: str | Path) -> Path:
        """Write `path` (.safetensors); returns the path."""
        path = Path(path)
        if path.suffix != ".safetensors":
            raise VectorFileError(f"{path}: steering vectors are saved as .safetensors")
        tensors = {f"layer.{layer}": v for layer, v in self.vectors.items()}
        tensors.update({f"extra.{name}": t for name, t in self.extras.items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        save_safetensors(tensors, path, metadata={METADATA_KEY: json.dumps(self.metadata(), default=_jsonable)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SteeringVector":
        """Read a vector file (.safetensors, or a llama.cpp control-vector .gguf)."""
        path = Path(path)
        refuse_unsafe(path)
        if path.suffix == ".gguf":
            return import_gguf(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except (SafetensorError, OSError, ValueError) as err:
            if looks_pickled(path):
                raise VectorFileError(f"{path}: this is a pickle / torch.save file named .safetensors; "
                                      f"{PICKLE_ADVICE}") from None
            raise VectorFileError(f"{path}: not a readable safetensors file ({err})") from None
        if METADATA_KEY not in header:
            raise VectorFileError(f"{path}: safetensors file without steerlens metadata; wrap a raw tensor with "
                                  "SteeringVector.from_tensor(...).save(path)")
        try:
            meta = json.loads(header[METADATA_KEY])
        except json.JSONDecodeError as err:
            raise VectorFileError(f"{path}: metadata is not valid JSON ({err.msg})") from None
        if meta.get("format") != "steerlens.vector" or meta.get("version") != FORMAT_VERSION:
            raise VectorFileError(f"{path}: unsupported vector format {meta.get('format')!r} "
                                  f"version {meta.get('version')!r} (this steerlens reads version {FORMAT_VERSION})")
        vectors, extras = {}, {}
        for name, tensor in tensors.items():
            prefix, _, rest = name.partition(".")
            if prefix == "layer" and rest.isdigit():
                _check_tensor(f"{path}: tensor '{name}'", tensor)
                vectors[int(rest)] = tensor
            elif prefix == "extra" and rest:
                extras[rest] = tensor
            else:
                raise VectorFileError(f"{path}: unexpected tensor '{name}' (expected layer.<n> or extra.<name>)")
        if sorted(vectors) != sorted(meta.get("layers", [])):
            raise VectorFileError(f"{path}: metadata lists layers {meta.get('layers')} but the file holds "
                                  f"{sorted(vectors)}")
        try:
            return cls(vectors, site=meta["site"], kind=meta["kind"], method=meta.get("method", "tensor"),
                       normalization=meta.get("normalization", "none"), model=meta.get("model") or {},
                       config=meta.get("config") or {}, extras=extras)
        except VectorFileError as err:
            raise VectorFileError(f"{path}: {err}") from None

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def from_tensor(cls, tensor, layers, model=None, site: str = "layer", kind: str = "add",
                    normalize: bool = False, method: str = "tensor", config: dict | None = None) -> "SteeringVector":
        """Wrap any tensor: [width] (the same direction at every layer in `layers`) or
        [len(layers), width] (one row per layer). With `model`, the width is checked now."""
        layers = [int(layer) for layer in ([layers] if isinstance(layers, int) else layers)]
        tensor = torch.as_tensor(tensor, dtype=torch.float32)
        if tensor.ndim == 1:
            rows = [tensor] * len(layers)
        elif tensor.ndim == 2 and tensor.shape[0] == len(layers):
            rows = list(tensor)
        elif site == "attention" and tensor.ndim == 2 and len(layers) == 1:  # [H, d_head]
            rows = [tensor.reshape(-1)]
        else:
            raise VectorFileError(f"tensor of shape {tuple(tensor.shape)} does not fit layers {layers}: "
                                  "give [width] or [n_layers, width]")
        if normalize:
            rows = [r / r.norm().clamp_min(1e-12) for r in rows]
        vector = cls(dict(zip(layers, rows)), site=site, kind=kind, method=method,
                     normalization="unit" if normalize else "none",
                     model=model_facts(model) if model is not None else {}, config=config or {})
        if model is not None:
            vector.check_model(model)
        return vector


def _check_tensor(what: str, tensor: torch.Tensor) -> None:
    if tensor.dtype not in _FLOAT_DTYPES:
        raise VectorFileError(f"{what} has dtype {tensor.dtype}; steering vectors must be floating point")
    if tensor.ndim != 1:
        raise VectorFileError(f"{what} has shape {tuple(tensor.shape)}; each layer holds one 1-D vector")
    if tensor.numel() == 0:
        raise VectorFileError(f"{what} is empty")
    if not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise VectorFileError(f"{what} has {bad} non-finite values (NaN or inf)")


def _jsonable(obj):
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return str(obj)


def import_gguf(path: str | Path) -> SteeringVector:
    """Read a llama.cpp control vector (ours or anyone's) as a `SteeringVector`
    (the file format lives in `steering.gguf_io`)."""
    path = Path(path)
    fields = read_gguf(path)
    try:
        return SteeringVector(**fields)
    except VectorFileError as err:
        raise VectorFileError(f"{path}: {err}") from None
