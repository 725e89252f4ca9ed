"""tests/benchmarks/gpu_check.py: the fast parts of its --tiny mode run with sae-lens, TransformerLens,
nnsight and streamlit unimportable (the offline GPU machine has none of them) and write the JSON
and table. CI (.ci/run) runs every part with --tiny; here only the quick ones."""

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
    assert parts["sae_features"]["measured"] is False
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.startswith("| part | status |") and "| sae_features | skipped |" in table
