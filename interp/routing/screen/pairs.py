"""Token sequences of matched pairs: each prompt followed by its pair's fixed continuation.

The interchange metric scores a continuation after a prompt, so every sequence the screen
runs is `prompt ids + continuation ids`. `PairTokens` holds them per pair (real tokens only,
no padding) and builds left-padded batches of any rows, plus where each row's prompt and
continuation sit in the padded layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ...engine.tokens import pad_rows

MAX_CONTINUATION = 5
HARM, BENIGN = 0, 1  # member index of a pair


@dataclass
class PairTokens:
    """Per pair i and member m (HARM / BENIGN): prompt ids and the shared continuation ids."""

    prompts: list[tuple[torch.Tensor, torch.Tensor]]  # [n] (harm ids [Lh], benign ids [Lb])
    continuations: list[torch.Tensor]  # [n] ids [K_i], 1 <= K_i <= 5
    pad_id: int
    bos_added: bool

    @property
    def n(self) -> int:
        return len(self.prompts)

    def prompt_len(self, pair: int, member: int) -> int:
        return int(self.prompts[pair][member].shape[0])

    def run_len(self, pair: int, member: int, after_prefix: bool) -> int:
        """Prompt tokens a row runs: all of them, or (`after_prefix`: its pair's shared prefix
        comes from a cache) those after that prefix. Rows are bucketed by it."""
        return self.prompt_len(pair, member) - (self.shared_prefix(pair) if after_prefix else 0)

    def sequence(self, pair: int, member: int) -> torch.Tensor:
        return torch.cat([self.prompts[pair][member], self.continuations[pair]])

    def shared_prefix(self, pair: int) -> int:
        """Tokens at the start that both prompts of `pair` share (the chat template's header
        and any common first words), at most the shorter prompt's length - 1 so that every
        prompt keeps its last token outside it. The interchange never patches them (`align.py`)."""
        harm, benign = self.prompts[pair]
        m = min(int(harm.shape[0]), int(benign.shape[0]))
        same = (harm[:m] == benign[:m]).long()
        return min(int(same.cumprod(0).sum()), m - 1)

    def batch(self, rows: Sequence[tuple[int, int]], start: int | Sequence[int] = 0):
        """Left-padded `TokenBatch` of (pair, member) rows from token `start` on (0: whole
        sequences; after a cached prefix: the tokens that follow it; one start per row for
        rows after prefixes of different lengths), and the continuation lengths [b]."""
        starts = [start] * len(rows) if isinstance(start, int) else list(start)
        seqs = [self.sequence(i, m)[s:] for (i, m), s in zip(rows, starts)]
        batch = pad_rows(seqs, [f"pair {i} {'harmful' if m == HARM else 'benign'}" for i, m in rows],
                         self.bos_added, self.pad_id)
        cont = torch.tensor([int(self.continuations[i].shape[0]) for i, _ in rows])
        return batch, cont

    def tail(self) -> int:
        """Logit columns the metric needs at the end of every padded row (max K + 1)."""
        return max(int(c.shape[0]) for c in self.continuations) + 1


def tokenize_pairs(model, harmful: Sequence[str], benign: Sequence[str], continuations: Sequence[Sequence[int]],
                   chat: bool) -> PairTokens:
    """Tokenise each prompt alone (`model.tokenize([text], chat=chat)`, so no padding)."""
    prompts = []
    for h, b in zip(harmful, benign):
        ids = []
        for text in (h, b):
            tb = model.tokenize([text], chat=chat)
            ids.append(tb.input_ids[0][tb.attention_mask[0].bool()])
        prompts.append((ids[0], ids[1]))
    bos = model.tokenize([harmful[0]], chat=chat).bos_added
    conts = [torch.tensor([int(t) for t in c], dtype=torch.long) for c in continuations]
    return PairTokens(prompts, conts, int(model.tokenizer.pad_token_id), bos)


def check_continuations(model, continuations: Sequence[Sequence[int]]) -> None:
    """ValueError unless every continuation has 1..5 ids inside the vocabulary."""
    vocab = model.d_vocab
    special = set(getattr(model.tokenizer, "all_special_ids", []) or [])
    for i, cont in enumerate(continuations):
        ids = list(cont)
        if not 1 <= len(ids) <= MAX_CONTINUATION:
            raise ValueError(f"continuation {i} has {len(ids)} tokens; give 1..{MAX_CONTINUATION} token ids")
        try:
            ids = [int(t) for t in ids]
        except (TypeError, ValueError):
            raise ValueError(f"continuation {i} must be token ids (ints), got {list(cont)!r}") from None
        if any(not 0 <= t < vocab for t in ids):
            raise ValueError(f"continuation {i} has ids outside the vocabulary 0..{vocab - 1}: {ids}")
        if special & set(ids):
            raise ValueError(f"continuation {i} contains special token ids {sorted(special & set(ids))}; "
                             "use the first non-special tokens of the benign answer")
