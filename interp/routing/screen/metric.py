"""The interchange metric: mean negative log-likelihood of a fixed continuation.

arXiv 2604.04385, step 3: the first <= 5 non-special greedy tokens of the benign answer
are appended after each prompt and scored; NLL is in nats per continuation token. Rows are
left-padded, so each row's continuation occupies its last K_r columns, and the logits that
predict them sit in the K_r columns before the last.
"""

from __future__ import annotations

import torch


def continuation_nll(logits: torch.Tensor, input_ids: torch.Tensor, cont_len: torch.Tensor) -> torch.Tensor:
    """Mean NLL [b] (nats/token) of each row's last `cont_len[r]` tokens.

    logits: [b, T, vocab], the last T columns of the padded batch (T = P for full logits,
    T >= max(cont_len) + 1 always); input_ids: [b, P]; cont_len: [b] >= 1. Differentiable.
    """
    b, T, _ = logits.shape
    P = input_ids.shape[1]
    k = cont_len.to(logits.device).long()
    if int(k.max()) + 1 > T or int(k.min()) < 1:
        raise ValueError(f"continuation lengths {k.tolist()} need between 1 and {T - 1} tokens of logits")
    targets = input_ids.to(logits.device)[:, P - T + 1:]  # [b, T-1]: token predicted by column j
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, targets[..., None])[..., 0]  # [b, T-1]
    cols = torch.arange(T - 1, device=logits.device)[None, :]
    mask = cols >= (T - 1 - k[:, None])
    return -(logp * mask).sum(-1) / k.to(logp.dtype)
