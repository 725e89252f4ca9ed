"""`interp.sinks`: the flat API (see interp/flat.py) of `steerlens sinks`."""

from __future__ import annotations

from ..flat import analysis, as_prompts, finish
from .measure import SinkConfig, SinkResult, default_prompts, run_sinks


@analysis(SinkConfig)
def sinks(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None, edits=(),
          progress: bool = False, config: SinkConfig) -> SinkResult:
    """Attention sinks of the prompts in `data` (texts or a prompt file; default: the shipped
    natural text), each cut to `tokens` tokens: sink importance and sink rate (Gu et al., ICLR
    2025), first-token share per head (StreamingLLM), value drain, residual peak and
    secondary sinks, also on random-token sequences. The model needs attention patterns:
    load it with `attn_implementation="eager"` (ValueError otherwise)."""
    prompts = as_prompts(data, default_prompts)
    result = run_sinks(model, prompts, config, chat=chat, batch_size=batch_size, progress=progress, seed=seed,
                       edits=edits)
    return finish(result, out)
