"""`steerlens trace --resume` after `kill -9`: the store equals an uninterrupted one, byte for byte.

The interrupted run is a real process killed with SIGKILL at a chosen instruction of the
shard protocol (interp.engine.shards): after batch K's temp file is written (a stale
`.tmp` is left). The other dangerous instant, after batch K's shard is renamed but before
the index lists it, is reproduced in-process (an exception no code catches stops the run
there; the files on disk are what a kill leaves), which saves a second interpreter start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interp.cli import main
from interp.engine.store import ActivationStore

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota kappa lambda", "mu nu", "xi omicron"]
KILL_AT = 2  # batches of 2 -> 4 shards; die while writing the third

KILLER = textwrap.dedent("""
    import os, signal, sys
    import interp.engine.shards as shards
    point, k = sys.argv[1], int(sys.argv[2])
    save, write_json = shards.save_safetensors, shards.write_json_atomic
    def save_then_die(tensors, path, *a, **kw):
        save(tensors, path, *a, **kw)
        if point == "tmp" and str(path).endswith(shards.shard_name(k) + ".tmp"):
            os.kill(os.getpid(), signal.SIGKILL)
    def list_or_die(obj, path):
        if point == "unlisted" and len(obj.get("shards", [])) == k + 1:
            os.kill(os.getpid(), signal.SIGKILL)
        write_json(obj, path)
    shards.save_safetensors, shards.write_json_atomic = save_then_die, list_or_die
    from interp.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def _trace(folder, prompts_file, out, *extra):
    return ["trace", "--model", str(folder), "--prompts", str(prompts_file), "--out", str(out),
            "--sites", "blocks.0.hook_resid_post,blocks.2.hook_mlp_out", "--batch-size", "2", "--json", *extra]


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def reference(tiny_llama_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    prompts = root / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    assert main(_trace(tiny_llama_folder, prompts, root / "store")) == 0
    return prompts, root / "store"


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing catches it, nothing after it runs."""


@pytest.mark.parametrize("point", ["tmp", "unlisted"])
def test_resume_after_kill_9_equals_an_uninterrupted_run(point, reference, tiny_llama_folder, tmp_path, capsys,
                                                         monkeypatch):
    prompts, expected = reference
    out = tmp_path / "store"
    if point == "tmp":
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", KILLER, point, str(KILL_AT),
                               *_trace(tiny_llama_folder, prompts, out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == -9, proc.stderr[-2000:]
    else:
        import interp.engine.shards as shards

        write_json = shards.write_json_atomic

        def list_or_die(obj, path):
            if len(obj.get("shards", [])) == KILL_AT + 1:
                raise Killed
            write_json(obj, path)

        monkeypatch.setattr(shards, "write_json_atomic", list_or_die)
        with pytest.raises(Killed):
            main(_trace(tiny_llama_folder, prompts, out))
        monkeypatch.undo()
    partial = ActivationStore(out)
    assert not partial.complete and len(partial.index["shards"]) == KILL_AT
    leftover = {p.name for p in out.iterdir()} - {"index.json"} - {s["file"] for s in partial.index["shards"]}
    assert leftover == ({f"shard-0000{KILL_AT}.safetensors.tmp"} if point == "tmp" else {f"shard-0000{KILL_AT}.safetensors"})

    assert main(_trace(tiny_llama_folder, prompts, out)) == 2  # an existing store needs --resume
    assert "pass --resume" in capsys.readouterr().err
    assert main(_trace(tiny_llama_folder, prompts, out, "--resume")) == 0
    assert _files(out) == _files(expected)


def test_resume_refuses_another_batch_size(reference, tiny_llama_folder, capsys):
    prompts, expected = reference
    argv = _trace(tiny_llama_folder, prompts, expected, "--resume")
    argv[argv.index("--batch-size") + 1] = "3"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "started with batch size 2" in err[0]
