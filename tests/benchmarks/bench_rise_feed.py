"""Does the store feed starve sae-lens' trainer? Wait fraction and activations/s of
`saes.train.train_layer` (store -> `StoreBatches` -> prefetch thread -> `SAETrainer`),
against the same training fed from one tensor already in memory (the baseline).

    python tests/benchmarks/bench_rise_feed.py [--d 896] [--rows 32768] [--steps 200] [--batch 1024]

Activations are random (the SAE's compute does not depend on them); d 896 and the RISE
width (round(2048 / 1536 * d)) match Qwen2.5-0.5B. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "saes"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--d", type=int, default=896)
    parser.add_argument("--rows", type=int, default=32768)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    from sae_lens.training.sae_trainer import SAETrainer
    from synthetic import SITE, write_store

    from saes.train import TrainConfig, _sae, _trainer_config, train_layer

    samples = torch.randn(args.rows, args.d)
    config = TrainConfig(batch_size=args.batch, steps=args.steps, checkpoints=0, normalize=False)
    with tempfile.TemporaryDirectory() as tmp:
        write_store(Path(tmp) / "store", samples, shards=max(1, args.rows // 2048))
        folder = train_layer(Path(tmp) / "store", SITE, Path(tmp) / "sae", config, progress=False)
        store = json.loads((folder / "training.json").read_text())["throughput"]

    def memory_feed():
        gen = torch.Generator().manual_seed(0)
        while True:
            yield samples[torch.randint(0, args.rows, (args.batch,), generator=gen)]

    trainer = SAETrainer(_trainer_config(config), _sae(config, args.d, SITE), memory_feed())
    start = time.perf_counter()
    trainer.fit()
    memory_rate = args.steps * args.batch / (time.perf_counter() - start)
    print(f"d={args.d} d_sae={config.width(args.d)} batch={args.batch} steps={args.steps} threads={torch.get_num_threads()}")
    print(f"store feed : {store['activations_per_s']:.0f} activations/s, trainer waited {store['wait_fraction']:.1%} of the time")
    print(f"memory feed: {memory_rate:.0f} activations/s (baseline)")
    print(f"store / memory throughput ratio: {store['activations_per_s'] / memory_rate:.2f}")


if __name__ == "__main__":
    main()
