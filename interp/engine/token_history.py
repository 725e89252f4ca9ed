"""The tokens fed before a KV-cached pass, so an edit can match token sequences across passes.

During `generate` each pass after the first feeds one new token per row; what came before
sits only in the KV cache. `ForwardState.previous_ids` keeps the last `HISTORY` ids the
earlier passes fed (same rows), so `OnTokens(sequences=...)` can tell "\\n" after "\\n" from
a lone "\\n" at the step where the second one is fed. A pass that starts a sequence (no
tokens cached) has no history; nor does one whose batch size differs from the pass before
(the history would belong to other rows), except a batch of 1 before, which every row shares.
"""

from __future__ import annotations

import torch

HISTORY = 16  # ids kept: token sequences up to HISTORY + 1 long match across passes


def previous_ids(state) -> torch.Tensor | None:
    """[b, <= HISTORY] ids fed by the passes before this KV-cached one (`state` is the
    `ForwardState` of the new pass, before its `input_ids` are replaced), or None when unknown."""
    last = state.input_ids
    if last is None or last.shape[0] != state.batch:
        return None
    before = state.previous_ids
    if before is not None and before.shape[0] == state.batch:
        last = torch.cat([before.to(last.device), last], 1)
    return last[:, -HISTORY:]
