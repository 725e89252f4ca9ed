"""`interp.voids` and `interp.voids_eval`: the flat API (see interp/flat.py) of
`steerlens voids` and `steerlens voids eval`."""

from __future__ import annotations

import dataclasses

from ..flat import analysis, as_prompts, finish
from .evaluation import VoidEvalConfig, VoidEvalResult, evaluate_voids
from .maps import VoidConfig, VoidResult, run_voids


@analysis(VoidConfig)
def voids(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
          progress: bool = False, config: VoidConfig) -> VoidResult:
    """LAC void maps ("Void in Language Models", arXiv 2505.14467): greedy generation from
    the prompts in `data` (texts, one text or a prompt file) with the L2 adaptive computation
    rule applied in the prefill pass and every decode step; which layers each token uses, per
    phase (prompt, response)."""
    prompts = as_prompts(data)
    result = run_voids(model, prompts, config, chat=chat, batch_size=batch_size, progress=progress, seed=seed)
    return finish(result, out)


@analysis(VoidEvalConfig)
def voids_eval(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
               progress: bool = False, config: VoidEvalConfig) -> VoidEvalResult:
    """Zero-shot multiple-choice accuracy with and without skipping void layers, for each
    alpha, and the % of layers used ("Void in Language Models", arXiv 2505.14467). `data`: a
    task name or a JSONL file of question, choices, answer (the same as `task=`)."""
    from .mcq import load_questions

    if data is not None:
        config = dataclasses.replace(config, task=str(data))
    config.validate()
    load_questions(config.task, config.limit)  # a bad task file fails before any forward pass
    result = evaluate_voids(model, config, chat=chat, batch_size=batch_size, progress=progress, seed=seed)
    return finish(result, out)
