"""tests/benchmarks/gpu_check.py: every part of its --tiny mode runs and finishes (CI's .ci/run runs
the same command after the suite, so a part that breaks fails here first), and the quick parts
run with sae-lens, TransformerLens, nnsight and streamlit unimportable, as on the offline GPU
machine, where the SAE part says it is skipped and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("sae_lens", "transformer_lens", "nnsight", "streamlit", "plotly", "kaleido", "gguf")
PROBE = """
import runpy, sys
for name in {absent!r}:
    sys.modules[name] = None  # import fails, as on a machine without the package
sys.argv = ["gpu_check.py", "--tiny", "--parts", "generation,experts,sae_features", "--out", {out!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_tiny_parts_run_without_the_heavy_packages(tmp_path):
    script = str(ROOT / "tests" / "benchmarks" / "gpu_check.py")
    done = subprocess.run([sys.executable, "-c", PROBE.format(absent=ABSENT, out=str(tmp_path), script=script)],
                          capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1",
                                                                            "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = report["parts"]
    assert [parts[p]["status"] for p in ("generation", "experts", "sae_features")] == ["ok", "ok", "skipped"]
    oom = parts["generation"]["auto_batch_oom"]
    assert oom["simulated"] and oom["recovered"] and oom["tried"][:3] == [8, 4, 2] and oom["settled_at"] == 2
    assert parts["generation"]["steering"]["steered_vs_unsteered"] > 0
    assert parts["experts"]["batched_vs_looped"]["max_abs"] < 1e-4  # the batched screen equals one pass each
    assert parts["sae_features"]["measured"] is False and "sae-lens" in parts["sae_features"]["reason"]
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.startswith("| part | status |") and "| sae_features | skipped |" in table


def test_every_tiny_part_finishes_and_its_identities_hold(tmp_path):
    script = ROOT / "tests" / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--tiny", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                      "HF_HUB_OFFLINE": "1"})
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = report["parts"]
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(
        ("exactness", "capture", "generation", "routing", "experts", "sae_features"), "ok"), done.stderr[-3000:]
    assert done.returncode == 0
    exact = parts["exactness"]["float32"]
    assert exact["hooks_vs_hf_hidden_states"]["max_abs"] < 1e-5
    assert exact["alone_vs_padded_batch_last_logits"]["max_rel"] < 1e-4
    assert exact["steered_cached_vs_uncached_logits"]["max_rel"] < 1e-4
    assert all(parts["routing"][m]["seconds"] > 0 for m in ("atp", "atp+exact", "exact"))
    sae = [v for k, v in parts["sae_features"].items() if k.startswith("batch_")]
    assert len(sae) == 2 and all(v["features_vs_encode"]["max_abs"] < 1e-5 for v in sae)
    assert all(v["logits_with_vs_without_sae"]["max_abs"] == 0 for v in sae)  # capture alone changes nothing
