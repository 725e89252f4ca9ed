"""`interp.load`: a model by zoo alias, `.gguf` path, `save_pretrained` folder or hub id,
wrapped in the engine's `Model` (here, not in interp/__init__.py, so that analyses that
load models themselves, e.g. `interp.emergence`, need not import the top package)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.model import Model


def load(spec: str, device=None, dtype=None, attn_implementation: str | None = None,
         bos: str = "default", *, device_map=None, max_memory=None, offload_folder=None) -> Model:
    """Load a model by zoo alias, `.gguf` path, `save_pretrained` folder or hub id.

    Device defaults to cuda, then mps, then cpu; dtype to bf16 on accelerators and float32
    on CPU. Pass `attn_implementation="eager"` when you need attention patterns. The
    architecture is checked before any weights are read. `device_map` ("auto" or
    {module: device}), `max_memory` and `offload_folder` split a model too large for one
    device over GPUs, CPU and disk with accelerate (see `interp.models.loading.load_hf`).
    """
    from ..engine.model import Model
    from .loading import load_hf

    _check_folder_architecture(spec)
    hf, tokenizer, info = load_hf(spec, device=device, dtype=dtype, attn_implementation=attn_implementation,
                                  device_map=device_map, max_memory=max_memory, offload_folder=offload_folder)
    model = Model(hf, tokenizer, info=info.to_dict(), bos=bos)
    model.info.update(family=model.spec.family, bos_policy=bos)
    return model


def _check_folder_architecture(spec: str) -> None:
    """For a local folder, refuse an unsupported architecture before reading weights."""
    import json
    from pathlib import Path

    from ..arch import spec_for_model_type

    config = Path(str(spec)) / "config.json"
    if config.is_file():
        spec_for_model_type(json.loads(config.read_text()).get("model_type"))
