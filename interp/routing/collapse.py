"""Step 7: cipher interchange collapse (arXiv 2604.04385, step 7).

The interchange screen is re-run on cipher-encoded pairs (`cipher_prompt` of the harmful
and of the benign request), restricted to a few heads (the gate and the DLA candidates,
`ScreenConfig.heads`), with the benign cipher prompt's own greedy continuation as the
scored text. Per head, collapse = 1 - mean|nec_cipher| / mean|nec_plain| (1 = the head's
necessity vanishes under the cipher; the paper reports 70-99% for the gate).
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


def plain_rows(screen, heads: list[tuple[int, int]]) -> torch.Tensor:
    """Rows of a plain `HeadScreen`'s exact necessity for `heads` (NaN where not measured)."""
    index = {tuple(h): i for i, h in enumerate(screen.heads)}
    n = screen.necessity.shape[1]
    rows = [screen.necessity[index[h]] if h in index else torch.full((n,), float("nan")) for h in heads]
    return torch.stack(rows).double()


def cipher_collapse(plain_screen, cipher_screen, gate: tuple[int, int] | None = None) -> CipherCollapse:
    """Collapse per head of `cipher_screen` (a screen restricted to a few heads); rows are
    reordered so `gate` (if given) comes first (the screen returns heads layer-major)."""
    heads = [tuple(h) for h in cipher_screen.heads]
    order = sorted(range(len(heads)), key=lambda i: heads[i] != tuple(gate)) if gate is not None else list(range(len(heads)))
    heads = [heads[i] for i in order]
    return CipherCollapse(heads, plain_rows(plain_screen, heads), cipher_screen.necessity[order].double(),
                          cipher_screen.p_necessity[order].double())
