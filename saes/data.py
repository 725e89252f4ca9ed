"""The data feed of SAE training: batches of step activations streamed from the store.

`StoreBatches` reads the store's shards in a seeded order, pools a few of them, shuffles the
pool and yields `[batch_size, d_model]` float32 tensors forever (epochs repeat with new
orders). It is a pure function of (store, site, batch size, seed, start): `start=k` yields
exactly the batches an uninterrupted iterator would yield from its k-th on, which is how
`--resume` continues with the same data. `Timed` wraps any iterator and records how long
its consumer waited on `next()` (the trainer's time starved of data).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from safetensors.torch import load_file

from interp.engine.store import ActivationStore


class StoreBatches(Iterator[torch.Tensor]):
    """Shuffled batches [batch_size, d] of one site of an activation store (see module doc)."""

    def __init__(self, store: ActivationStore, site: str, batch_size: int, seed: int = 0, start: int = 0,
                 pool_shards: int = 8):
        index = store.index
        if site not in index["sites"]:
            raise ValueError(f"site '{site}' is not in {store.path}; it has {index['sites']}")
        self.files = [store.path / s["file"] for s in index["shards"]]
        if not self.files:
            raise ValueError(f"{store.path} holds no activations yet; run `rise collect` first")
        self.site, self.batch_size, self.pool_shards = site, batch_size, pool_shards
        self.generator = torch.Generator().manual_seed(seed)
        self.pool = torch.zeros(0)
        self._order: list[int] = []
        self.served = 0
        for _ in range(start):
            self._next_batch()

    def __iter__(self) -> "StoreBatches":
        return self

    def __next__(self) -> torch.Tensor:
        return self._next_batch()

    def _next_batch(self) -> torch.Tensor:
        while self.pool.shape[0] < self.batch_size:
            self._refill()
        batch, self.pool = self.pool[: self.batch_size], self.pool[self.batch_size:]
        self.served += 1
        return batch

    def _refill(self) -> None:
        parts = [self.pool]
        for _ in range(self.pool_shards):
            if not self._order:
                self._order = torch.randperm(len(self.files), generator=self.generator).tolist()
            parts.append(load_file(self.files[self._order.pop()])[self.site].float())
        pool = torch.cat(parts)
        if pool.shape[0] == 0:
            raise ValueError(f"the store at {self.files[0].parent} has no rows for '{self.site}'")
        self.pool = pool[torch.randperm(pool.shape[0], generator=self.generator)]


@dataclass
class Timed(Iterator[torch.Tensor]):
    """Counts the seconds spent inside `next()` of `source` (the consumer's wait)."""

    source: Iterator[torch.Tensor]
    waited: float = 0.0
    batches: int = 0
    rows: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __iter__(self) -> "Timed":
        return self

    def __next__(self) -> torch.Tensor:
        t = time.perf_counter()
        batch = next(self.source)
        self.waited += time.perf_counter() - t
        self.batches += 1
        self.rows += batch.shape[0]
        return batch

    def report(self) -> dict:
        total = time.perf_counter() - self.started
        return {"seconds": total, "wait_seconds": self.waited, "wait_fraction": self.waited / total if total else 0.0,
                "activations_per_s": self.rows / total if total else 0.0, "batches": self.batches}
