"""`interp.experts`: the flat API (see interp/flat.py) of `steerlens experts scan`."""

from __future__ import annotations

from ..flat import analysis, as_prompts, finish
from .result import ExpertsResult
from .scan import ExpertsConfig, experts_scan, split_by_refusal


def prompt_sets(model, data, split: bool, chat: bool, max_new_tokens: int) -> tuple[list[str], list[str]]:
    """(target, other) from `data`: None (the shipped harmful / benign requests), a pair of
    prompt lists or files, a {"target": ..., "other": ...} dict, or with `split` one mixed
    list split by whether the model refuses each prompt."""
    if split:
        if data is None or isinstance(data, (tuple, dict)):
            raise ValueError("split_by_refusal=True takes one mixed list of prompts (or a prompt file) as data")
        return split_by_refusal(model, as_prompts(data), chat=chat, max_new_tokens=max_new_tokens)
    if data is None:
        from ..metrics.refusal import refusal_pairs

        pairs = refusal_pairs()
        return [p["harmful"] for p in pairs], [p["benign"] for p in pairs]
    if isinstance(data, dict):
        data = (data.get("target"), data.get("other"))
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("data must be (target prompts, other prompts), {'target': ..., 'other': ...}, or one "
                         "mixed list with split_by_refusal=True")
    return as_prompts(data[0], what="target prompts"), as_prompts(data[1], what="other prompts")


@analysis(ExpertsConfig)
def experts(model, data=None, *, chat: bool = False, seed: int = 0, batch_size="auto", out=None,
            split_by_refusal: bool = False, perplexity_texts=None, progress: bool = False,
            config: ExpertsConfig) -> ExpertsResult:
    """Behaviour-specific mixture-of-experts experts (MoTE, arXiv 2502.11096): association
    scores of every (layer, expert) on target versus other prompts (`data`, see
    `prompt_sets`; default: the shipped harmful / benign requests), each candidate switched
    off alone, then top-N off / random-N off / top-N forced on. `perplexity_texts` (texts or
    a file) adds a quality check. Raises ValueError for a dense model."""
    config.validate()
    texts = as_prompts(perplexity_texts) if perplexity_texts is not None else None
    target, other = prompt_sets(model, data, split_by_refusal, chat, config.max_new_tokens)
    result = experts_scan(model, target, other, config, chat=chat, perplexity_texts=texts, batch_size=batch_size,
                          progress=progress)
    return finish(result, out)
