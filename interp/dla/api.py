"""`interp.dla` and `interp.logit_lens`: the flat API (see interp/flat.py) of `steerlens dla`
and `steerlens lens`."""

from __future__ import annotations

from ..flat import analysis, as_prompts, finish
from .attribution import DLAConfig, DLAResult, run_dla
from .lens import LensConfig, LensResult, run_lens

DEFAULT_PROMPTS = ["The capital of France is"]  # steerlens dla's default


@analysis(DLAConfig)
def dla(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None, edits=(),
        direction=None, progress: bool = False, config: DLAConfig) -> DLAResult:
    """Direct logit attribution of `target` (minus `contrast`) at the last token of `prompts`
    to embeddings, every head, every MLP (and neuron): `interp.dla(model, prompts,
    target=" Paris", contrast=" London")`. Exact: the parts sum to the model's logit
    (difference), `sum_check` in the summary (Elhage et al. 2021; see
    interp/dla/attribution.py). `prompts`: texts, one text or a prompt file (default: "The
    capital of France is"), as `data`; `direction`: any `interp.dla.directions.Direction` instead of a
    target; `out`: save the run there. Raises ValueError for a target that is not one token."""
    prompts = as_prompts(data, DEFAULT_PROMPTS)
    if direction is None:
        config.validate()
    config.check_model(model)
    result = run_dla(model, prompts, config, direction=direction, chat=chat, edits=edits, batch_size=batch_size,
                     progress=progress, seed=seed)
    return finish(result, out)


@analysis(LensConfig)
def logit_lens(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None, edits=(),
               progress: bool = False, config: LensConfig) -> LensResult:
    """Logit lens (nostalgebraist 2020): the final norm and unembedding applied to every
    layer's residual stream of the prompts in `data` (texts, one text or a prompt file), with the rank and
    probability of `target` per layer: `interp.logit_lens(model, prompts, target=" Paris")`."""
    prompts = as_prompts(data)
    result = run_lens(model, prompts, config, chat=chat, edits=edits, batch_size=batch_size, progress=progress,
                      seed=seed)
    return finish(result, out)
