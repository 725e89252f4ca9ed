"""steerlens' tracing engine and analyses over Hugging Face causal LMs.

    import interp
    model = interp.load("smollm2-135m-instruct")          # zoo alias, folder, .gguf or hub id
    logits, cache = model.run_with_cache(["The capital of France is"],
                                         sites=["blocks.3.hook_resid_post"])

The names below are imported on first use (PEP 562), so `import interp` (and the CLI's
parser) stay free of torch and transformers until a model or an analysis is needed.
Packages: `interp.engine` (the tracing engine), `interp.arch` (architecture adapters),
`interp.models` (loading, the zoo), `interp.runs` (run directories, results, configs,
prompt files), `interp.metrics` (shared measures), one package per analysis
(`interp.dla`, `interp.sinks`, `interp.massive`, `interp.voids`) and `interp.cli`.
`interp.dla` and `interp.sinks` are packages that are also their analysis' function:
`interp.dla(model, ...)` calls `interp.dla.attribution.dla`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.model import Model

_EXPORTS: dict[str, str] = {
    "ActivationCache": "interp.engine.cache",
    "Add": "interp.engine.edits",
    "ArchSpec": "interp.arch",
    "Edit": "interp.engine.edits",
    "ExpertSelection": "interp.engine.sites",
    "Fn": "interp.engine.edits",
    "Generation": "interp.engine.generation",
    "HookPoint": "interp.engine.hooks",
    "HookSet": "interp.engine.hooks",
    "Model": "interp.engine.model",
    "Patch": "interp.engine.edits",
    "ProjectOut": "interp.engine.edits",
    "Scale": "interp.engine.edits",
    "Set": "interp.engine.edits",
    "SiteInfo": "interp.engine.sites",
    "StartAt": "interp.engine.resume",
    "TokenBatch": "interp.engine.model",
    "UnsupportedArchitectureError": "interp.arch",
    "Zero": "interp.engine.edits",
    "generate": "interp.engine.generation",
    "logit_lens": "interp.dla.lens",
    "massive_activations": "interp.massive.activations",
    "spec_for_model_type": "interp.arch",
    "supported_families": "interp.arch",
}
"""Public name -> the module defining it, imported on first access."""

_PACKAGES: dict[str, str] = {
    "dla": "interp.dla",
    "sinks": "interp.sinks",
}
"""Public analysis functions that are their (callable) package: `interp.dla(...)`."""

__all__ = [
    "ActivationCache", "Add", "ArchSpec", "Edit", "ExpertSelection", "Fn", "Generation", "HookPoint",
    "HookSet", "Model", "Patch", "ProjectOut", "Scale", "Set", "SiteInfo", "StartAt", "TokenBatch",
    "UnsupportedArchitectureError", "Zero", "dla", "generate", "load", "logit_lens", "massive_activations", "sinks", "supported_families",
]


def __getattr__(name: str) -> Any:
    if name in _PACKAGES:
        return importlib.import_module(_PACKAGES[name])  # importing binds it here as well
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_PACKAGES))


def load(spec: str, device=None, dtype=None, attn_implementation: str | None = None,
         bos: str = "default", *, device_map=None, max_memory=None, offload_folder=None) -> Model:
    """Load a model by zoo alias, `.gguf` path, `save_pretrained` folder or hub id.

    Device defaults to cuda, then mps, then cpu; dtype to bf16 on accelerators and float32
    on CPU. Pass `attn_implementation="eager"` when you need attention patterns. The
    architecture is checked before any weights are read. `device_map` ("auto" or
    {module: device}), `max_memory` and `offload_folder` split a model too large for one
    device over GPUs, CPU and disk with accelerate (see `interp.models.loading.load_hf`).
    """
    from .engine.model import Model
    from .models.loading import load_hf

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

    from .arch import spec_for_model_type

    config = Path(str(spec)) / "config.json"
    if config.is_file():
        spec_for_model_type(json.loads(config.read_text()).get("model_type"))
