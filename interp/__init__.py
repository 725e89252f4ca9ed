"""steerlens' tracing engine and analyses over Hugging Face causal LMs.

    import interp
    model = interp.load("smollm2-135m-instruct")          # zoo alias, folder, .gguf or hub id
    logits, cache = model.run_with_cache(["The capital of France is"],
                                         sites=["blocks.3.hook_resid_post"])
"""

from __future__ import annotations

from .engine import attention as _attention  # noqa: F401  registers the steerlens_eager attention
from .arch import ArchSpec, UnsupportedArchitectureError, spec_for_model_type, supported_families
from .engine.cache import ActivationCache
from .dla.attribution import dla
from .engine.edits import Add, Edit, Fn, Patch, ProjectOut, Scale, Set, Zero
from .engine.generation import Generation, generate
from .engine.hooks import HookPoint, HookSet
from .dla.lens import logit_lens
from .massive.activations import massive_activations
from .engine.model import Model, TokenBatch
from .sinks.measure import sinks
from .engine.sites import ExpertSelection, SiteInfo

__all__ = [
    "ActivationCache", "Add", "ArchSpec", "Edit", "ExpertSelection", "Fn", "Generation", "HookPoint",
    "HookSet", "Model", "Patch", "ProjectOut", "Scale", "Set", "SiteInfo", "TokenBatch",
    "UnsupportedArchitectureError", "Zero", "dla", "generate", "load", "logit_lens", "massive_activations", "sinks", "supported_families",
]


def load(spec: str, device=None, dtype=None, attn_implementation: str | None = None,
         bos: str = "default") -> Model:
    """Load a model by zoo alias, `.gguf` path, `save_pretrained` folder or hub id.

    Device defaults to cuda, then mps, then cpu; dtype to bf16 on accelerators and float32
    on CPU. Pass `attn_implementation="eager"` when you need attention patterns. The
    architecture is checked before any weights are read.
    """
    from .models.loading import load_hf

    _check_folder_architecture(spec)
    hf, tokenizer, info = load_hf(spec, device=device, dtype=dtype, attn_implementation=attn_implementation)
    model = Model(hf, tokenizer, info=info.to_dict(), bos=bos)
    model.info.update(family=model.spec.family, bos_policy=bos)
    return model


def _check_folder_architecture(spec: str) -> None:
    """For a local folder, refuse an unsupported architecture before reading weights."""
    import json
    from pathlib import Path

    config = Path(str(spec)) / "config.json"
    if config.is_file():
        spec_for_model_type(json.loads(config.read_text()).get("model_type"))
