"""Perplexity of a set of texts, optionally under edits: token-level NLL from `model.forward`.

Each text is tokenized with the model's BOS policy, cut to its first `max_tokens` tokens,
and every token after the first is scored given the ones before it; pads are excluded
from the mean (the attention mask), so batching never changes the number. Perplexity is
exp(mean NLL over all scored tokens of all texts), as for a corpus.

The shipped sample `interp/data/ppl_sample.txt` is original prose written for steerlens
(no third-party text; free to use like the rest of the package): twelve paragraphs of
plain English on everyday subjects, one per line. It is a small smoke-test corpus, not
a benchmark: its numbers compare edits with each other, not with published WikiText
perplexities.

    score = perplexity(model, sample_texts(), edits=[Zero("blocks.2.hook_resid_post", dims=[5])])
    score.ppl, score.n_tokens
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..engine.edits import Edit
from ..engine.model import TokenBatch
from ..engine.tokens import first_tokens

PPL_SAMPLE = "ppl_sample.txt"


def read_text_file(path) -> list[str]:
    """Texts from a file: one per non-blank line, or JSONL with 'text' (as prompt files)."""
    from ..runs.prompts import read_prompts

    return read_prompts(path)


def sample_texts() -> list[str]:
    """The shipped perplexity sample (see the module docstring)."""
    with resources.as_file(resources.files("interp") / "data" / PPL_SAMPLE) as path:
        return read_text_file(path)


@dataclass
class PerplexityScore:
    ppl: float
    mean_nll: float
    n_tokens: int
    n_texts: int

    def to_dict(self) -> dict:
        return {"ppl": self.ppl, "mean_nll": self.mean_nll, "n_tokens": self.n_tokens, "n_texts": self.n_texts}


def token_nll(model, batch: TokenBatch, edits: Sequence[Edit] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """NLL of each next token [b, P-1] and whether it counts [b, P-1] (both tokens real)."""
    logits = model.forward(batch, edits=edits)  # [b, P, V]
    targets = batch.input_ids[:, 1:].to(logits.device)  # [b, P-1]
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets, reduction="none")  # [b, P-1]
    mask = batch.attention_mask.to(logits.device).bool()
    return nll.cpu(), (mask[:, 1:] & mask[:, :-1]).cpu()


def perplexity(model, texts: Sequence[str], *, edits: Sequence[Edit] = (),
               edits_for: Callable[[TokenBatch], Sequence[Edit]] | None = None, batch_size: int = 2,
               max_tokens: int | None = 256, progress: bool = False) -> PerplexityScore:
    """Perplexity of `texts` with `edits` (plus `edits_for(batch)`, for edits whose
    positions depend on the batch, such as a bool position mask)."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to score")
    batch = model.tokenize(texts)
    if max_tokens is not None:
        batch = first_tokens(batch, max_tokens, model.tokenizer.pad_token_id or 0)
    total, count = 0.0, 0
    order = sorted(range(len(texts)), key=lambda i: -batch.lengths[i])  # similar lengths pad little
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    for rows in tqdm(chunks, desc="perplexity", disable=not progress, leave=False):
        sub = batch.select(rows)
        chunk_edits = list(edits) + (list(edits_for(sub)) if edits_for is not None else [])
        nll, mask = token_nll(model, sub, chunk_edits)
        total += float(nll[mask].double().sum())
        count += int(mask.sum())
    if count == 0:
        raise ValueError("no token to score: every text is a single token")
    mean = total / count
    return PerplexityScore(ppl=float(torch.tensor(mean, dtype=torch.float64).exp()), mean_nll=mean, n_tokens=count, n_texts=len(texts))
