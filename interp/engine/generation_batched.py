"""Generation in chunks with automatic batch size and out-of-memory back-off.

`generate_batched(model, prompts, batch_size="auto", ...)` cuts the prompts into
length-sorted chunks (`interp.engine.batching.run_batched`), runs
`interp.engine.generation.generate` on each with the same edits and options, and halves
the chunk size whenever a chunk runs out of accelerator memory (CUDA's
`torch.OutOfMemoryError`, MPS's RuntimeError), retrying that chunk; the smaller size is
kept for the rest. The chunks are merged back into one `Generation` in the caller's order.

Merging: sequences are re-padded to the widest prompt (left, pad token) and to the longest
continuation (right, pad token), as one batch's generate pads rows that stopped early.
With `return_logits=True`, steps after a chunk stopped are NaN (that chunk computed no
logits there). Greedy decoding gives each prompt the tokens it gets in one batch (up to
the float noise of batch composition), and `capture=` values come back in that order too; with sampling the random stream follows the
chunks, so `seed` reproduces a run only at the same batch size. Edits see each row's
index in the caller's batch (`Patch` donors line up).
"""

from __future__ import annotations

import torch

from .batching import resolve_batch_size, run_batched
from .generation import Generation, generate
from .row_values import check_row_values
from .cache import left_pad
from .sites import ExpertSelection, has_key_axis


def generate_batched(model, prompts, *, batch_size: int | str | None = "auto", chat: bool = False,
                     progress: bool | str = False, **kwargs) -> Generation:
    """`generate` over chunks of at most `batch_size` prompts ("auto": 64 on accelerators, 8
    on CPU, halved on out-of-memory); same arguments and result as `generate`. `progress`
    shows a bar over prompts (a string labels it)."""
    if "rows" in kwargs or "width" in kwargs:
        raise ValueError("generate_batched assigns rows and width itself; drop rows= / width=")
    batch = model._as_batch(prompts, chat)
    width = batch.input_ids.shape[1]
    check_row_values(kwargs.get("edits", ()), len(batch.texts), width)
    size = resolve_batch_size(batch_size, model.device)

    def one(rows: list[int]) -> Generation:  # bool masks and per-row values follow their rows
        return generate(model, batch.select(rows), rows=rows, width=width, **kwargs)

    parts = run_batched(batch.lengths, one, size, progress=progress)
    return merge_generations(parts, batch.input_ids.shape[1], model.tokenizer.pad_token_id or 0, batch.texts)


def merge_generations(parts: list[tuple[list[int], Generation]], prompt_len: int, pad_id: int,
                      prompts: list[str]) -> Generation:
    """One `Generation` in prompt order from (rows, chunk result) pairs (see the module doc)."""
    new = max(g.new_tokens.shape[1] for _, g in parts)
    sequences, logits, texts, order = [], [], [], []
    for rows, g in parts:
        left, right = prompt_len - g.prompt_len, new - g.new_tokens.shape[1]
        sequences.append(torch.nn.functional.pad(g.sequences, (left, right), value=pad_id))
        if g.logits is not None:
            logits.append(torch.nn.functional.pad(g.logits, (0, 0, 0, right), value=float("nan")))
        texts += g.texts
        order += rows
    inverse = torch.argsort(torch.tensor(order))
    merged_logits = torch.cat(logits)[inverse] if logits else None
    cache = {name: _cat([g.cache[name] for _, g in parts], inverse, prompt_len if has_key_axis(name) else None)
             for name in parts[0][1].cache}
    return Generation(list(prompts), [texts[i] for i in inverse.tolist()], torch.cat(sequences)[inverse],
                      prompt_len, merged_logits, sum(g.seconds for _, g in parts), cache)


def _cat(values: list, order: torch.Tensor, keys: int | None = None):
    """Chunks' captured values ([b_i, ...] tensors or ExpertSelections of them) as one, reordered;
    with `keys`, the key axis of each chunk is left-padded with zeros to that width (the whole
    batch's padded prompt), as one batch's capture would be."""
    if isinstance(values[0], ExpertSelection):
        return ExpertSelection(*(torch.cat(ts)[order] for ts in zip(*values)))
    if keys is not None:
        values = [left_pad(v, (v.ndim - 1,), keys) for v in values]
    return torch.cat(values)[order]
