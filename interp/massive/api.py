"""`interp.massive_activations` and `interp.emergence`: the flat API (see interp/flat.py) of
`steerlens massive` and `steerlens emergence`."""

from __future__ import annotations

from ..flat import analysis, as_prompts, finish
from ..sinks.measure import default_prompts
from .activations import MassiveConfig, MassiveResult, run_massive
from .emergence import EmergenceConfig, EmergenceResult, run_emergence


@analysis(MassiveConfig)
def massive_activations(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
                        edits=(), progress: bool = False, config: MassiveConfig) -> MassiveResult:
    """Massive activations (Sun et al., COLM 2024) over the prompts in `data` (texts or a
    prompt file; default: the shipped natural text): per layer the largest |activation| over
    the median, the massive dimensions and tokens, the sublayer and neurons that write them,
    and with `intervene=True` perplexity (on `ppl_file`, or the shipped sample text) with
    them zeroed versus set to their mean."""
    from ..metrics.perplexity import read_text_file

    prompts = as_prompts(data, default_prompts)
    config.validate()
    ppl_texts = read_text_file(config.ppl_file) if config.intervene and config.ppl_file else None
    result = run_massive(model, prompts, config, chat=chat, batch_size=batch_size, progress=progress, seed=seed,
                         ppl_texts=ppl_texts, edits=edits)
    return finish(result, out)


@analysis(EmergenceConfig)
def emergence(model, data=None, *, out=None, progress: bool = False, config: EmergenceConfig) -> EmergenceResult:
    """The emergence of massive activations over training: `model` is a list of at least 5
    checkpoints `(step, model)` (a loaded model or anything `interp.load` takes), `data` the
    prompts (default: the shipped natural text). Per checkpoint the per-layer ratio
    max|h| / median|h|, then per layer the fit f(t) = A exp(-lambda x) log(x) + K,
    x = gamma t + t0 (see interp/massive/emergence.py)."""
    config.validate()
    checkpoints = [(step, spec) for step, spec in model]
    result = run_emergence(checkpoints, as_prompts(data, default_prompts), tokens=config.tokens, progress=progress)
    return finish(result, out)
