"""Which heads the exact screen re-measures after a fast estimate (AtP or IG), issue 38.

A first-order estimate can miss a head in either direction: where a downstream unit is
saturated on the harmful prompt, the necessity gradient is ~0 while the sufficiency
estimate (taken on the benign prompt, in the unit's linear range) is large, and the reverse.
So the verification list ranks heads by what can matter, max(|necessity|, |sufficiency|)
of the estimate's mean over pairs, not by necessity alone; and a head whose two estimates
differ 10x or more in magnitude is measured whatever its rank, when the larger reaches
`FLOOR_PCT` % of the mean baseline gap (below that, both are noise and the ratio means
nothing). `verify_random` further heads, drawn at random from the rest (seeded), estimate
what the list missed.
"""

from __future__ import annotations

import torch

from .stats import top_k

DISAGREE = 10.0  # ratio of the larger to the smaller |estimate| that flags a head
FLOOR_PCT = 1.0  # the larger |estimate| must reach this % of |mean baseline gap| to be flagged


def disagreeing(nec: torch.Tensor, suf: torch.Tensor, gap: float) -> torch.Tensor:
    """Bool [H]: heads whose |necessity| and |sufficiency| estimates (means [H], nats) differ by
    DISAGREE x or more, the larger at least FLOOR_PCT % of |gap| (nats)."""
    a, b = nec.double().abs().nan_to_num(), suf.double().abs().nan_to_num()
    big, small = torch.maximum(a, b), torch.minimum(a, b)
    return (big >= DISAGREE * small) & (big >= FLOOR_PCT / 100 * abs(gap)) & (big > 0)


def verification_rows(nec: torch.Tensor, suf: torch.Tensor, gap: float, verify: int, verify_random: int,
                      seed: int) -> tuple[list[int], list[int]]:
    """(rows to measure exactly, sorted; the top `verify` rows by max(|nec|, |suf|), best first).

    nec, suf: [H] mean estimates over pairs; gap: the mean baseline NLL gap (nats)."""
    score = torch.maximum(nec.double().abs(), suf.double().abs())
    ranked = top_k(score, score.shape[0]).tolist()
    top = ranked[:verify]
    flagged = [int(r) for r in torch.nonzero(disagreeing(nec, suf, gap)).flatten() if int(r) not in top]
    rest = [r for r in ranked[verify:] if r not in flagged]
    gen = torch.Generator().manual_seed(seed)
    extra = [rest[int(k)] for k in torch.randperm(len(rest), generator=gen)[:verify_random]]
    return sorted(top + flagged + extra), top
