"""Batched greedy generation with edits, for the steps that classify what the model says."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..engine.edits import Edit


def generate_texts(model, prompts: Sequence[str], *, edits: Sequence[Edit] | Callable[[slice], Sequence[Edit]] = (),
                   chat: bool = True, max_new_tokens: int = 32, batch_size: int = 8,
                   shared_prefix: bool = False) -> list[str]:
    """Greedy continuations of `prompts` in chunks of `batch_size`.

    `edits` is a list, or a function of the chunk's slice (for per-row edits such as a
    cached donor value). `shared_prefix=True`: each chunk's common first tokens run once
    (`interp.engine.shared_prefix`; the edits must allow it)."""
    texts = []
    for start in range(0, len(prompts), batch_size):
        chunk = slice(start, start + batch_size)
        chunk_edits = edits(chunk) if callable(edits) else edits
        gen = model.generate(list(prompts[chunk]), edits=list(chunk_edits), chat=chat, max_new_tokens=max_new_tokens,
                             shared_prefix=shared_prefix)
        texts += gen.texts
    return texts
