"""Step 8: rescue (arXiv 2604.04385, step 8).

The gate's plaintext z_h at the last prompt token is cached from a clean pass over the
plain harmful prompt; during greedy generation on the cipher-encoded prompt the gate's
z_h is overwritten with it at the last position of every step (`Set` on
`blocks.{l}.attn.hook_z`, heads=[h], positions "last+generated": the last prompt token in
the prefill, then each new token). Refusals are counted with and without the overwrite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..engine.edits import Set
from ..engine.shared_prefix import AFTER_PROMPT
from ..metrics.refusal import classify_responses
from .generation import generate_texts


@dataclass
class Rescue:
    gate: tuple[int, int]
    cipher_texts: list[str]  # greedy outputs on the cipher prompts
    rescued_texts: list[str]  # the same with the plaintext gate z_h written in
    cipher_refusal: float  # fraction of refusals without the overwrite
    rescued_refusal: float  # fraction with it (the paper's rescue %, e.g. 58/120)
    mode: str  # classifier mode


def donor_z(model, prompts: Sequence[str], gate: tuple[int, int], *, chat: bool = True,
            batch_size: int | str = "auto") -> torch.Tensor:
    """The gate's z_h at the last prompt token of each prompt: [n, d_head]."""
    site = f"blocks.{gate[0]}.attn.hook_z"
    _, cache = model.run_with_cache(list(prompts), [site], positions="last", chat=chat, logits=None,
                                    to_cpu=True, batch_size=batch_size)
    return cache[site][:, gate[1]]


def rescue_edit(model, donor: torch.Tensor, gate: tuple[int, int], positions="last+generated") -> Set:
    """Overwrite the gate's z_h with donor rows [b, d_head] at `positions`."""
    value = torch.zeros(donor.shape[0], 1, model.n_heads, model.d_head, dtype=donor.dtype)
    value[:, 0, gate[1]] = donor
    return Set(f"blocks.{gate[0]}.attn.hook_z", positions=positions, heads=[gate[1]], value=value)


def rescue(model, plain: Sequence[str], cipher: Sequence[str], gate: tuple[int, int], *, chat: bool = True,
           max_new_tokens: int = 32, batch_size: int = 8, mode: str = "rules",
           positions="last+generated") -> Rescue:
    """Generate on `cipher` with and without the gate z_h cached from `plain` (row i from row i)."""
    gate = tuple(gate)
    donor = donor_z(model, plain, gate, chat=chat, batch_size=batch_size)
    # an overwrite after the prompt leaves the cipher preamble and chat header alone: they run once per chunk
    shared = isinstance(positions, str) and positions in AFTER_PROMPT
    base = generate_texts(model, cipher, chat=chat, max_new_tokens=max_new_tokens, batch_size=batch_size,
                          shared_prefix=shared)
    fixed = generate_texts(model, cipher, edits=lambda rows: [rescue_edit(model, donor[rows], gate, positions)],
                           chat=chat, max_new_tokens=max_new_tokens, batch_size=batch_size, shared_prefix=shared)

    def rate(texts):
        labels = classify_responses(texts, mode)
        return labels.count("refusal") / len(labels)

    return Rescue(gate, base, fixed, rate(base), rate(fixed), mode)
