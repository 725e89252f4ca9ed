"""RISE: sparse autoencoders on reasoning steps, behaviour and steering vectors (arXiv 2512.23988).

Stages, each reading the run directory the previous one wrote (`steerlens rise ...`):

- `saes.collect.collect`: traces (generated or JSONL), steps split at "\\n\\n", the residual
  after the chosen layer(s) at each step-end token, streamed to the activation store;
- `saes.train.train_layer`: an SAE per layer with sae-lens' own `SAETrainer`, checkpoints,
  resume, saved in sae-lens' format;
- `saes.analyze.analyze` -> `RiseAnalysis`: diagnostics (FVU, L0, dead latents, decoder
  cosines, CE loss recovered), latent-behaviour association, decoder map and silhouette,
  behaviour vectors as steerlens steering vectors;
- `saes.steer.steer` -> `RiseSteer`: steering at step-end tokens, alpha dose-response;
- `saes.confidence_run.confidence` -> `RiseConfidence`: a latent offset minimising answer
  entropy, confidence vectors, and their dose-response (flat: `saes.rise_confidence`).

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/rise.md.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["example_traces_file", "rise", "rise_confidence"]


def __getattr__(name: str):
    if name in ("rise", "rise_confidence"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'saes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"rise", "rise_confidence"})


def example_traces_file() -> Path:
    """A shipped JSONL of 12 worked arithmetic traces with reflection and backtracking steps
    (question, response, answer), for the tour and the notebook."""
    return Path(__file__).parent / "data" / "example_traces.jsonl"
