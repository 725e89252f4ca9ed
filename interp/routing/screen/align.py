"""Position alignment of a donor prompt onto a base prompt (arXiv 2604.04385, step 3).

The interchange replaces a head's `z_h` at the base prompt's positions with the donor's
`z_h` at the matching positions. "left" matches position i with donor position i, from the
start of the sequence, over the base's prompt only; "right" matches the last prompt token
with the donor's last prompt token, and so on backwards (natural for prompts of unequal
length). Base positions without a donor counterpart are left unpatched. With "left" and
"right" only prompt positions are patched; the continuation that follows never is.

"paper" is the authors' literal patch (gregfrank/how-alignment-routes,
src/routing_head_ablation.py; docs/fidelity/routing.md): the donor's `z` from its prompt
alone overwrites base positions 0..min(len(base prompt + continuation), len(donor prompt)),
counted from the start. When the donor prompt is longer than the base prompt this also
overwrites the base's first continuation positions (with donor prompt tokens' `z`).

The prefix the two prompts share (`PairTokens.shared_prefix`: the chat template's system
and user header, and any words the requests start with) is never patched: there both
prompts hold the same tokens at the same positions, so the donor's `z` is the base's own,
and "right" aligns the rest from the end without reaching into it. For "left" this changes
nothing (the patch there was a no-op); for "right" on prompts of unequal length it keeps
template tokens from receiving the `z` of other template tokens a few positions away. The
exact screen uses this to start its passes after the prefix (`interp.engine.prefix`).
"""

from __future__ import annotations

import torch

ALIGNS = ("left", "right", "paper")


def aligned_positions(base_len: int, donor_len: int, align: str, shared: int = 0,
                      cont_len: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(base positions, donor positions), each [m - shared] long, all >= `shared` (the length of
    the prefix both prompts share, which is never patched). m = min(base_len, donor_len); for
    "paper", m = min(base_len + cont_len, donor_len) (`cont_len`: the base's continuation).

    Positions count real tokens from 0. Raises ValueError for an unknown align or a shared
    prefix longer than a prompt."""
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    m = min(base_len + (cont_len if align == "paper" else 0), donor_len)
    if not 0 <= shared <= min(base_len, donor_len):
        raise ValueError(f"shared prefix {shared} is outside 0..{min(base_len, donor_len)} (the shorter prompt's length)")
    if align in ("left", "paper"):
        idx = torch.arange(shared, m)
        return idx, idx.clone()
    back = torch.arange(m - shared, 0, -1)
    return base_len - back, donor_len - back


def aligned_donor(base_len: int, donor_z: torch.Tensor, align: str, shared: int = 0,
                  cont_len: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The donor's `z` moved onto the base's positions.

    donor_z: [Ld, ...] over the donor prompt's real tokens; `shared`: the shared prefix length;
    `cont_len`: the base continuation's length, which the result also covers (patched only
    with "paper"). Returns (values [base_len + cont_len, ...], where [base_len + cont_len]
    bool: positions that have a donor counterpart; values are 0 elsewhere).
    """
    base_idx, donor_idx = aligned_positions(base_len, int(donor_z.shape[0]), align, shared, cont_len)
    values = donor_z.new_zeros((base_len + cont_len, *donor_z.shape[1:]))
    values[base_idx] = donor_z[donor_idx]
    where = torch.zeros(base_len + cont_len, dtype=torch.bool)
    where[base_idx] = True
    return values, where
