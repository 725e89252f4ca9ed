"""Data-parallel trace: `torchrun --nproc-per-node 2` on gloo writes the single-process store.

Each rank runs every second planned batch and writes those shards; rank 0 merges the
lists into index.json (interp.engine.shards). The store must equal, file for file and
byte for byte, the one a single process writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interp.cli import main
from interp.engine.distributed import Ranks, rank_device
from interp.engine.shards import plan_batches, shard_items
from interp.engine.store import ActivationStore

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota kappa lambda", "mu nu", "xi omicron"]


def _trace(folder, prompts_file, out):
    return ["trace", "--model", str(folder), "--prompts", str(prompts_file), "--out", str(out),
            "--sites", "blocks.1.hook_resid_post,blocks.1.attn.hook_z", "--positions", "all",
            "--batch-size", "2", "--json"]


def test_two_gloo_processes_write_the_single_process_store(tiny_llama_folder, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    assert main(_trace(tiny_llama_folder, prompts, tmp_path / "single")) == 0
    single = json.loads(capsys.readouterr().out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "interp.cli", *_trace(tiny_llama_folder, prompts, tmp_path / "dp")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])  # rank 0 alone prints
    assert summary["processes"] == 2 and summary["rows"] == single["rows"]
    files = {p.name: p.read_bytes() for p in sorted((tmp_path / "dp").iterdir())}
    expected = {p.name: p.read_bytes() for p in sorted((tmp_path / "single").iterdir())}
    assert sorted(files) == sorted(expected) and files == expected
    store = ActivationStore(tmp_path / "dp")
    assert store.complete and len(store.index["shards"]) == 4


def test_more_processes_than_prompts_is_one_line(tiny_llama_folder, tmp_path, capsys, monkeypatch):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one\ntwo\n")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    assert main(_trace(tiny_llama_folder, prompts, tmp_path / "s")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 processes for 2 prompts" in err[0]
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_ranks_share_every_batch_once():
    plan = plan_batches([3, 9, 1, 9, 4], 2)
    assert plan == [[1, 3], [4, 0], [2]]  # longest first, ties in input order
    assert shard_items(5, Ranks(1, 2, 1)) == [1, 3] and shard_items(5, Ranks(0, 2, 0)) == [0, 2, 4]
    assert rank_device("cpu", Ranks(1, 2, 1)) == "cpu"
    if not torch.cuda.is_available():
        assert rank_device(None, Ranks(1, 2, 1)) is None
    assert rank_device("cuda", Ranks(1, 2, 1)) == "cuda:1" and rank_device("cuda:0", Ranks(1, 2, 1)) == "cuda:0"
