"""Step 7: cipher interchange collapse (arXiv 2604.04385, step 7).

The interchange screen is re-run on cipher-encoded pairs (`cipher_prompt` of the harmful
and of the benign request), restricted to a few heads (the gate and the DLA candidates,
`ScreenConfig.heads`), with the benign cipher prompt's own greedy continuation as the
scored text. Per head, collapse = 1 - mean|nec_cipher| / mean|nec_plain| (1 = the head's
necessity vanishes under the cipher; the paper reports 70-99% for the gate), both means over
the same pairs: the cipher's (the first `cipher_n`). A head the plain screen did not measure
exactly (AtP only) takes its plain necessity from a second, exact screen of those heads
(`cipher_collapse(..., extra=)`), so no head's collapse is left undefined.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CipherCollapse:
    heads: list[tuple[int, int]]  # heads measured under the cipher (gate first)
    necessity_plain: torch.Tensor  # [h, n] plain-text necessity of these heads (nats)
    necessity_cipher: torch.Tensor  # [h, n] cipher necessity (nats)
    p_cipher: torch.Tensor  # [h] sign-flip p of the cipher necessity

    @property
    def collapse(self) -> torch.Tensor:  # [h] 1 - mean|cipher| / mean|plain|
        plain = self.necessity_plain.abs().nanmean(-1)
        return 1 - self.necessity_cipher.abs().nanmean(-1) / plain.clamp_min(1e-12)


def plain_rows(screens, heads: list[tuple[int, int]], n: int) -> torch.Tensor:
    """[h, n] exact necessity of `heads` over the first `n` pairs, each from the first of
    `screens` (plain `HeadScreen`s; None skipped) that measured it exactly (NaN where none did)."""
    measured = [(s, s.exact_heads()) for s in screens if s is not None]
    rows = []
    for head in heads:
        found = next((s for s, exact in measured if tuple(head) in exact), None)
        rows.append(found.necessity[found.heads.index(tuple(head)), :n] if found is not None
                    else torch.full((n,), float("nan")))
    return torch.stack(rows).double()


def cipher_collapse(plain_screen, cipher_screen, gate: tuple[int, int] | None = None,
                    extra=None) -> CipherCollapse:
    """Collapse per head of `cipher_screen` (a screen restricted to a few heads, over the first
    n' pairs of `plain_screen`'s n); `extra`: a plain exact screen of the heads `plain_screen`
    only estimated, over those n' pairs. Rows are reordered so `gate` (if given) comes first
    (the screen returns heads layer-major). Raises ValueError when the cipher screen has more
    pairs than the plain one."""
    n = cipher_screen.necessity.shape[1]
    if n > plain_screen.necessity.shape[1]:
        raise ValueError(f"the cipher screen has {n} pairs, the plain one {plain_screen.necessity.shape[1]}: "
                         "the cipher pairs must be the first of the plain ones")
    heads = [tuple(h) for h in cipher_screen.heads]
    order = sorted(range(len(heads)), key=lambda i: heads[i] != tuple(gate)) if gate is not None else list(range(len(heads)))
    heads = [heads[i] for i in order]
    return CipherCollapse(heads, plain_rows([plain_screen, extra], heads, n), cipher_screen.necessity[order].double(),
                          cipher_screen.p_necessity[order].double())
