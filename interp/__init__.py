"""steerlens' tracing engine and analyses over Hugging Face causal LMs.

    import interp
    model = interp.load("smollm2-135m-instruct")          # zoo alias, folder, .gguf or hub id
    logits, cache = model.run_with_cache(["The capital of France is"],
                                         sites=["blocks.3.hook_resid_post"])

The analyses are one keyword call each (the flat API, interp/flat.py; docs/api.md):
`interp.dla`, `interp.logit_lens`, `interp.sinks`, `interp.massive_activations`,
`interp.emergence`, `interp.voids`, `interp.voids_eval`, `interp.routing`, `interp.experts`,
each `(model, data=None, *, chat=..., **options) -> Result` with the options of its config
dataclass; `interp.load_run(dir)` opens any saved run. Results show themselves in Jupyter.

The names below are imported on first use (PEP 562), so `import interp` (and the CLI's
parser) stay free of torch and transformers until a model or an analysis is needed.
Packages: `interp.engine` (the tracing engine), `interp.arch` (architecture adapters),
`interp.models` (loading, the zoo), `interp.runs` (run directories, results, configs,
prompt files), `interp.metrics` (shared measures), one package per analysis
(`interp.dla`, `interp.sinks`, `interp.massive`, `interp.voids`) and `interp.cli`.
`interp.dla`, `interp.sinks`, `interp.voids`, `interp.routing` and `interp.experts` are
packages that are also their analysis' function: `interp.dla(model, ...)` calls
`interp.dla.api.dla` (interp/callable_package.py).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

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
    "load": "interp.models.opening",
    "emergence": "interp.massive.api",
    "list_runs": "interp.runs.results",
    "load_run": "interp.runs.results",
    "logit_lens": "interp.dla.api",
    "massive_activations": "interp.massive.api",
    "spec_for_model_type": "interp.arch",
    "supported_families": "interp.arch",
    "voids_eval": "interp.voids.api",
}
"""Public name -> the module defining it, imported on first access."""

_PACKAGES: dict[str, str] = {
    "dla": "interp.dla",
    "experts": "interp.experts",
    "routing": "interp.routing",
    "sinks": "interp.sinks",
    "voids": "interp.voids",
}
"""Public analysis functions that are their (callable) package: `interp.dla(...)`."""

__all__ = [
    "ActivationCache", "Add", "ArchSpec", "Edit", "ExpertSelection", "Fn", "Generation", "HookPoint",
    "HookSet", "Model", "Patch", "ProjectOut", "Scale", "Set", "SiteInfo", "StartAt", "TokenBatch",
    "UnsupportedArchitectureError", "Zero", "dla", "emergence", "experts", "generate", "list_runs", "load", "load_run",
    "logit_lens", "massive_activations", "routing", "sinks", "supported_families", "voids", "voids_eval",
]


def __getattr__(name: str) -> Any:
    if name in _PACKAGES:
        return importlib.import_module(_PACKAGES[name])  # importing binds it here as well
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    from .callable_package import submodule

    return submodule(sys.modules[__name__], name)  # a subpackage (interp.metrics), or AttributeError


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_PACKAGES))
