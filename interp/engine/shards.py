"""Planned shards: resumable, data-parallel writing of a store directory, one batch per file.

A long collection (captures, pooled activations, a screen's scores) is cut into a fixed
*plan* before any work starts: items sorted by length (longest first, ties in input
order) and cut into batches of `batch_size`. Batch j is always written to
`shard-{j:05d}.safetensors`, whichever process writes it and whenever. Hence:

- **resume**: a rerun on the same directory skips the batches whose shards the index
  lists and runs the others exactly as an uninterrupted run would have (same batches, same
  shard names, same bytes); the batch size is recorded in the index and reused.
- **data parallel** (`interp.engine.distributed`): rank r runs the batches j with
  j % world == r. The directory ends up the same as the one a single process writes.

Writing protocol, safe against `kill -9` at any instruction: a shard goes to
`shard-j.safetensors.tmp` and is renamed; only then is it listed, in `index.json`
(one process) or in the rank's own `index.rank-R.json` (several; merged into `index.json`
by rank 0 at the end, or at the start of the next run). A listed shard is always whole;
an unlisted file (a `.tmp`, or a renamed shard the kill left unlisted) is rewritten.

    plan = ShardPlan.open(path, header, lengths, batch_size="auto", device=model.device)
    for j, rows in plan.todo():
        plan.write(j, rows, {"site": values, "prompt_index": torch.tensor(rows), ...})
    plan.finish()
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .batching import resolve_batch_size
from .distributed import SINGLE, Ranks, barrier
from .files import save_safetensors
from .provenance import differences

INDEX = "index.json"
RANK_INDEX = "index.rank-{rank}.json"


class StoreError(ValueError):
    """A store directory that cannot be resumed or read."""


def write_json_atomic(obj: dict, path: Path) -> None:
    """Write JSON through a temp file and a rename: a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def open_or_create(path: Path, header: dict) -> dict:
    """The index of the store at `path`, created with `header` if new; raises StoreError
    when an existing index was written for another capture (a header field differs)."""
    file = path / INDEX
    if file.is_file():
        index = json.loads(file.read_text())
        mismatched = differences(index, header)
        if mismatched:
            raise StoreError(f"{path} holds a different capture ({'; '.join(mismatched)}); resume it with the same "
                             "settings, or choose another directory or delete it")
        return index
    path.mkdir(parents=True, exist_ok=True)
    index = {**header, "shards": []}
    write_json_atomic(index, file)
    return index


def shard_name(j: int) -> str:
    return f"shard-{j:05d}.safetensors"


def plan_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Item indices sorted by length (longest first, stable) and cut into batches of `size`."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start:start + size] for start in range(0, len(order), size)]


def shard_items(n_items: int, ranks: Ranks) -> list[int]:
    """The items a rank takes when work is split item by item (round robin): a generic
    helper for loops that are not store batches (a screen's pairs, a list of layers)."""
    return list(range(ranks.rank, n_items, ranks.world))


@dataclass
class ShardPlan:
    """The batches of one store directory and which of them this rank still has to write."""

    path: Path
    index: dict
    batches: list[list[int]]
    ranks: Ranks = SINGLE
    _mine: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path, header: dict, lengths: Sequence[int], *, batch_size: int | str | None,
             device: torch.device | str = "cpu", ranks: Ranks = SINGLE) -> "ShardPlan":
        """Create or reopen the store at `path` (StoreError if it holds another capture).

        `batch_size` "auto"/None reuses the size recorded in the index, else the device's
        automatic size (capped so every rank gets a batch); an int that differs from the
        recorded one is refused, since it would change the batches."""
        path = Path(path)
        if ranks.is_main:
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.tmp"):  # a write that a kill cut short
                stale.unlink(missing_ok=True)
            index = open_or_create(path, header)
            _fold_rank_indexes(path, index)
            recorded = index.get("batch_size")
            if batch_size in (None, "auto"):
                size = recorded or min(resolve_batch_size(None, torch.device(device)),
                                       max(1, math.ceil(len(lengths) / ranks.world)))
            else:
                size = resolve_batch_size(batch_size, torch.device(device))
                if recorded is not None and recorded != size:
                    raise StoreError(f"{path} was started with batch size {recorded}; resume it with "
                                     f"--batch-size {recorded} (or auto), or choose another directory")
            if recorded is None:
                index["batch_size"] = size
                write_json_atomic(index, path / INDEX)
        barrier(ranks)
        if not ranks.is_main:
            index = open_or_create(path, header)
        return cls(path, index, plan_batches(lengths, int(index["batch_size"])), ranks)

    @property
    def done(self) -> set[str]:
        return {s["file"] for s in self.index["shards"]}

    def todo(self) -> list[tuple[int, list[int]]]:
        """(j, item indices) of this rank's batches not yet written, in plan order."""
        done = self.done
        return [(j, rows) for j, rows in enumerate(self.batches)
                if j % self.ranks.world == self.ranks.rank and shard_name(j) not in done]

    def n_done_items(self) -> int:
        return sum(len(s["prompts"]) for s in self.index["shards"])

    def write(self, j: int, rows: list[int], tensors: dict[str, torch.Tensor]) -> None:
        """Write batch j's tensors atomically, then list it (see the module docstring)."""
        name = shard_name(j)
        tmp = self.path / (name + ".tmp")
        save_safetensors({k: v.contiguous() for k, v in tensors.items()}, tmp)
        os.replace(tmp, self.path / name)
        entry = {"file": name, "prompts": list(rows)}
        if self.ranks.distributed:
            self._mine.append(entry)
            write_json_atomic({"shards": self._mine}, self.path / RANK_INDEX.format(rank=self.ranks.rank))
        else:
            self.index["shards"] = _sorted([*self.index["shards"], entry])
            write_json_atomic(self.index, self.path / INDEX)

    def finish(self) -> None:
        """Wait for every rank; rank 0 merges the ranks' lists into the index."""
        barrier(self.ranks)
        if self.ranks.is_main:
            _fold_rank_indexes(self.path, self.index)
        barrier(self.ranks)
        if not self.ranks.is_main:
            self.index = json.loads((self.path / INDEX).read_text())


def run_plan(plan: ShardPlan, batch: Callable[[list[int]], dict[str, torch.Tensor]], *,
             progress: bool = True, desc: str = "capture") -> None:
    """Run `batch(rows) -> tensors` for every batch this rank still owes, writing each shard;
    then merge (`finish`). Shows a tqdm bar over this rank's items."""
    from tqdm.auto import tqdm

    todo = plan.todo()
    total = sum(len(rows) for j, rows in enumerate(plan.batches) if j % plan.ranks.world == plan.ranks.rank)
    label = desc if not plan.ranks.distributed else f"{desc} [rank {plan.ranks.rank}/{plan.ranks.world}]"
    bar = tqdm(total=total, initial=total - sum(len(r) for _, r in todo), desc=label, disable=not progress,
               leave=False)
    try:
        for j, rows in todo:
            plan.write(j, rows, batch(rows))
            bar.update(len(rows))
    finally:
        bar.close()
    plan.finish()


def _sorted(entries: list[dict]) -> list[dict]:
    unique = {e["file"]: e for e in entries}
    return [unique[name] for name in sorted(unique)]


def _fold_rank_indexes(path: Path, index: dict) -> None:
    """Move the shards listed by rank files into the index (whose shards exist), then
    delete the rank files. Only rank 0 calls this, while no rank writes."""
    files = sorted(path.glob(RANK_INDEX.format(rank="*")))
    if not files:
        return
    extra = []
    for file in files:
        extra += [e for e in json.loads(file.read_text())["shards"] if (path / e["file"]).is_file()]
    index["shards"] = _sorted([*index["shards"], *extra])
    write_json_atomic(index, path / INDEX)
    for file in files:
        file.unlink()
