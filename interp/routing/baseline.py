"""What every later step reads: greedy continuations, refusal direction, probe direction.

"How Alignment Routes" (arXiv 2604.04385):
- continuation of pair i: the first <= 5 non-special greedy tokens the model produces for
  the benign prompt (the interchange metric scores them after either prompt);
- refusal direction (for DLA): mean unembedding of the refusal openers' first tokens minus
  the unembedding of the benign prompt's first non-whitespace greedy token, one per pair
  (`interp.dla.directions.refusal_direction`);
- probe direction (ablation, modulation, cipher contrast): the unit mean over pairs of the
  harmful minus benign residual at the last prompt token, at a middle decoder layer
  (`blocks.{layer}.hook_resid_post`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..dla.directions import first_nonspace_token
from ..metrics.refusal import MODES, refusal_rate

MAX_CONTINUATION = 5


@dataclass
class Baseline:
    """Greedy benign continuations and the probe direction of one model and pair set."""

    continuations: list[list[int]]  # n lists of <= 5 token ids
    benign_first: list[int]  # [n] first non-whitespace greedy token of each benign prompt
    probe_layer: int
    probe: torch.Tensor  # [d_model] float32, unit norm
    probe_norm: float  # norm of the mean difference before normalising
    harmful_refusal: dict | None = None  # {mode: rate} of the harmful prompts' greedy openings (runs before 12-2026: None)


def greedy_continuations(model, prompts: Sequence[str], *, chat: bool, batch_size: int = 8,
                         max_tokens: int = MAX_CONTINUATION,
                         generation_config: str = "neutral") -> tuple[list[list[int]], list[int]]:
    """(first <= `max_tokens` non-special greedy tokens, first non-whitespace token) per prompt.

    Generates up to `max_tokens + 3` tokens (stopping at EOS: the continuation is the model's
    own greedy answer, never forced past its end) so a few leading special tokens can be
    skipped; raises ValueError when a prompt's greedy answer holds no non-special token.
    `generation_config`: "neutral" (greedy, nothing inherited) or "model" (the checkpoint's
    generation config at temperature 0, as the authors' code: the engine's `sampling="model"`)."""
    gen = model.generate(list(prompts), chat=chat, max_new_tokens=max_tokens + 3, batch_size=batch_size,
                         shared_prefix=True, sampling=generation_config)
    return continuations_of(model, gen, chat=chat, max_tokens=max_tokens)


def continuations_of(model, gen, *, chat: bool, max_tokens: int = MAX_CONTINUATION) -> tuple[list[list[int]], list[int]]:
    """`greedy_continuations` read off a `Generation` of at least `max_tokens + 3` new tokens."""
    special = set(getattr(model.tokenizer, "all_special_ids", []) or [])
    conts, firsts = [], []
    for prompt, row in zip(gen.prompts, gen.new_tokens.tolist()):
        kept = [t for t in row if t not in special][:max_tokens]
        if not kept:
            hint = (" (without the chat template a chat model often ends its answer at once: drop --no-chat)"
                    if not chat else "")
            raise ValueError(f"the greedy answer to {prompt!r} holds only special tokens{hint}; drop this pair")
        conts.append(kept)
        try:
            firsts.append(first_nonspace_token(model, row))
        except ValueError:
            firsts.append(kept[0])
    return conts, firsts


def unit_mean_difference(harmful: torch.Tensor, benign: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(unit mean over rows of `harmful - benign` [n, d] as float32 [d], the mean's norm),
    summed in float64; ValueError when the mean is zero."""
    diff = (harmful.double() - benign.double()).mean(0)
    norm = float(diff.norm())
    if norm == 0.0:
        raise ValueError("harmful and benign residuals are identical at the probe layer; the probe direction is undefined")
    return (diff / norm).float(), norm


OPENING_TOKENS = 16  # enough for a refusal opener ("I'm sorry, but I can't help with that")


def compute_baseline(model, harmful: Sequence[str], benign: Sequence[str], probe_layer: int, *, chat: bool,
                     batch_size: int = 8, progress: bool = False, generation_config: str = "neutral") -> Baseline:
    """The baseline record from two generations: the benign prompts' continuations and the
    harmful prompts' openings (the first 16 greedy tokens; `harmful_refusal` is their
    refusal rate under each `interp.metrics.refusal` mode: whether the model refuses these
    prompts at all), each reading the probe layer's residual at the last prompt token in its
    prefill (no separate pass over the prompts). Generation runs in length-sorted chunks of
    `batch_size`, each chunk's shared chat header once (`interp.engine.shared_prefix`);
    `progress` draws a bar per generation on stderr. `generation_config` ("neutral" or
    "model") applies to the benign continuations, the scored tokens of the interchange (see
    `greedy_continuations`); the harmful openings are always greedy with the neutral config."""
    site = f"blocks.{probe_layer}.hook_resid_post"
    ben = model.generate(list(benign), chat=chat, max_new_tokens=MAX_CONTINUATION + 3, batch_size=batch_size,
                         capture=[site], shared_prefix=True, progress="baseline (benign)" if progress else False,
                         sampling=generation_config)
    conts, firsts = continuations_of(model, ben, chat=chat)
    harm = model.generate(list(harmful), chat=chat, max_new_tokens=OPENING_TOKENS, batch_size=batch_size,
                          capture=[site], shared_prefix=True, progress="baseline (harmful)" if progress else False)
    refusal = {mode: refusal_rate(harm.texts, mode) for mode in MODES}
    probe, norm = unit_mean_difference(harm.cache[site], ben.cache[site])
    return Baseline(conts, firsts, probe_layer, probe, norm, refusal)
