"""Position alignment of a donor prompt onto a base prompt (arXiv 2604.04385, step 3).

The interchange replaces a head's `z_h` at the base prompt's positions with the donor's
`z_h` at the matching positions. "left" matches position i with donor position i (the
paper's code: from the start of the sequence); "right" matches the last prompt token with
the donor's last prompt token, and so on backwards (natural for prompts of unequal length).
Base positions without a donor counterpart are left unpatched. Only prompt positions are
patched; the continuation that follows is never patched.

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

ALIGNS = ("left", "right")


def aligned_positions(base_len: int, donor_len: int, align: str, shared: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(base positions, donor positions), each [m - shared] long, m = min(base_len, donor_len),
    all >= `shared` (the length of the prefix both prompts share, which is never patched).

    Positions count real prompt tokens from 0. Raises ValueError for an unknown align or a
    shared prefix longer than a prompt."""
    if align not in ALIGNS:
        raise ValueError(f"align must be 'left' or 'right', got {align!r}")
    m = min(base_len, donor_len)
    if not 0 <= shared <= m:
        raise ValueError(f"shared prefix {shared} is outside 0..{m} (the shorter prompt's length)")
    if align == "left":
        idx = torch.arange(shared, m)
        return idx, idx.clone()
    back = torch.arange(m - shared, 0, -1)
    return base_len - back, donor_len - back


def aligned_donor(base_len: int, donor_z: torch.Tensor, align: str,
                  shared: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The donor's `z` moved onto the base prompt's positions.

    donor_z: [Ld, ...] over the donor prompt's real tokens; `shared`: the shared prefix length.
    Returns (values [base_len, ...], where [base_len] bool: positions that have a donor
    counterpart; values are 0 elsewhere).
    """
    base_idx, donor_idx = aligned_positions(base_len, int(donor_z.shape[0]), align, shared)
    values = donor_z.new_zeros((base_len, *donor_z.shape[1:]))
    values[base_idx] = donor_z[donor_idx]
    where = torch.zeros(base_len, dtype=torch.bool)
    where[base_idx] = True
    return values, where
