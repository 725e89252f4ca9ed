"""Data-parallel runs with torch.distributed: which process this is, and meeting points.

A command started by `torchrun` or `accelerate launch` runs once per process (a *rank*);
both launchers describe the run in the environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`MASTER_ADDR`, `MASTER_PORT`). steerlens reads them here, joins the process group with
the gloo backend (CPU collectives only: ranks exchange no tensors, they only wait for
each other, so gloo serves CPU and GPU runs alike and needs no NCCL), and gives each rank
its own GPU (`cuda:LOCAL_RANK`) when the run is on CUDA.

Work is split by `interp.engine.shards`: each rank runs every `world`-th planned batch
and writes those shards; rank 0 merges the shard list into the store's index. Without a
launcher (`WORLD_SIZE` unset or 1) everything here is a no-op and the run is one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run (rank 0 of 1 when not launched)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


SINGLE = Ranks()


def launched_ranks() -> Ranks:
    """Ranks as a launcher set them in the environment (torchrun, accelerate launch);
    `SINGLE` when none did. Raises ValueError on inconsistent values."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}; start the run with torchrun or accelerate launch")
    return Ranks(rank, world, local)


def current_ranks() -> Ranks:
    """Ranks of the joined process group, else of the environment."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return Ranks(rank, world, int(os.environ.get("LOCAL_RANK", str(rank))))
    return launched_ranks()


def join(ranks: Ranks | None = None) -> Ranks:
    """Join the process group (gloo) if this process was launched as one of several; idempotent."""
    import torch.distributed as dist

    ranks = ranks or launched_ranks()
    if ranks.distributed and not dist.is_initialized():
        if not dist.is_available():
            raise ValueError("this torch build has no torch.distributed; run one process")
        dist.init_process_group(backend="gloo", rank=ranks.rank, world_size=ranks.world)
    return ranks


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()


def leave(ranks: Ranks) -> None:
    """Leave the process group joined by `join` (no-op in a single process)."""
    import torch.distributed as dist

    if ranks.distributed and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: str | torch.device | None, ranks: Ranks) -> str | torch.device | None:
    """The device this rank should load on: `cuda` (or no device on a CUDA machine) becomes
    `cuda:LOCAL_RANK` in a multi-process run; anything else is returned unchanged."""
    if not ranks.distributed:
        return device
    wants_cuda = (device is None and torch.cuda.is_available()) or (
        device is not None and torch.device(device).type == "cuda" and torch.device(device).index is None)
    return f"cuda:{ranks.local_rank}" if wants_cuda else device


def check_enough_items(n_items: int, ranks: Ranks, what: str = "prompts") -> None:
    """ValueError (one line) when there are more processes than items to share among them."""
    if ranks.world > n_items:
        raise ValueError(f"{ranks.world} processes for {n_items} {what}: every process needs at least one; "
                         f"start at most {n_items} (torchrun --nproc-per-node) or pass more {what}")
