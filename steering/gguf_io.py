"""llama.cpp control vectors: export a `SteeringVector` to GGUF and read one back
(`read_gguf` returns the fields; `steering.vectors.import_gguf` builds the vector).

The format llama.cpp's `--control-vector FILE` / `--control-vector-scaled FILE SCALE` read
(its loader in common.cpp and `llama_adapter_cvec`): `general.architecture =
"controlvector"`, `controlvector.model_hint` (an architecture name), `controlvector.layer_count`
(int32) and one float32 tensor `direction.<n>` [n_embd] per layer. llama.cpp adds
`direction.<n>` to the output of (0-based) layer n, i.e. our `blocks.<n>.hook_resid_post`,
and refuses `direction.0` (it never steers the first layer's output). So only additive
"layer"-site vectors at layers >= 1 export; anything else is refused with a reason.

steerlens also writes its own metadata under `steerlens.vector` (llama.cpp ignores unknown
keys), so a round trip restores method, normalization, model facts and creation config;
a foreign control vector imports with what the file says. Tensors are written as float32,
so a float32 vector round-trips bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .vector_files import METADATA_KEY, VectorFileError, refuse_unsafe

if TYPE_CHECKING:
    from .vectors import SteeringVector

ARCH = "controlvector"
# llama.cpp architecture names where they differ from the HF family
_LLAMA_CPP_ARCH = {"mistral": "llama"}


def export_gguf(vector: SteeringVector, path: str | Path) -> Path:
    """Write `vector` as a llama.cpp control vector; returns the path."""
    import gguf

    path = Path(path)
    if path.suffix != ".gguf":
        raise VectorFileError(f"{path}: control vectors are written as .gguf")
    if vector.site != "layer" or vector.kind != "add":
        raise VectorFileError(f"llama.cpp control vectors add to decoder-layer outputs; this vector is "
                              f"site={vector.site} kind={vector.kind} (only site=layer, kind=add export)")
    if 0 in vector.vectors:
        raise VectorFileError("llama.cpp cannot steer layer 0's output (it refuses direction.0); "
                              "build the vector at layers >= 1")
    path.parent.mkdir(parents=True, exist_ok=True)
    family = vector.model.get("family") or ""
    writer = gguf.GGUFWriter(str(path), ARCH)
    writer.add_string(f"{ARCH}.model_hint", _LLAMA_CPP_ARCH.get(family, family))
    writer.add_int32(f"{ARCH}.layer_count", len(vector.layers))
    writer.add_string(METADATA_KEY, json.dumps(vector.metadata()))
    for layer in vector.layers:
        writer.add_tensor(f"direction.{layer}", vector.vectors[layer].numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def read_gguf(path: str | Path) -> dict[str, Any]:
    """The `SteeringVector` fields of a llama.cpp control vector (ours or anyone's)."""
    import gguf

    path = Path(path)
    refuse_unsafe(path)
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as err:  # gguf raises ValueError, struct.error, ... on foreign files
        raise VectorFileError(f"{path}: not a readable GGUF file ({err})") from None
    fields = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    if fields.get("general.architecture") != ARCH:
        raise VectorFileError(f"{path}: GGUF architecture is {fields.get('general.architecture')!r}, not "
                              f"'{ARCH}' (is this a model file rather than a control vector?)")
    vectors: dict[int, torch.Tensor] = {}
    for tensor in reader.tensors:
        prefix, _, rest = tensor.name.partition(".")
        if prefix != "direction" or not rest.isdigit():
            raise VectorFileError(f"{path}: unexpected tensor '{tensor.name}' in a control vector")
        if tensor.tensor_type != gguf.GGMLQuantizationType.F32:
            raise VectorFileError(f"{path}: tensor '{tensor.name}' is {tensor.tensor_type.name}, expected F32")
        vectors[int(rest)] = torch.from_numpy(np.array(tensor.data, dtype=np.float32).reshape(-1))
    if not vectors:
        raise VectorFileError(f"{path}: control vector without direction.<n> tensors")
    meta = {}
    if METADATA_KEY in fields:
        try:
            meta = json.loads(fields[METADATA_KEY])
        except json.JSONDecodeError:
            meta = {}
    # a foreign file only says its architecture hint (llama.cpp names, not HF families)
    model = meta.get("model") or {"model_hint": fields.get(f"{ARCH}.model_hint"),
                                  "d_model": next(iter(vectors.values())).shape[0]}
    return {"vectors": vectors, "site": "layer", "kind": "add", "method": meta.get("method", "gguf"),
            "normalization": meta.get("normalization", "none"), "model": model,
            "config": meta.get("config") or {"imported_from": str(path)}}
