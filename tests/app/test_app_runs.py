"""Explorer run listing and vector files: safe paths, broken runs, uploads never unpickled.

Also builds the small saved runs the other app tests open (`saved_runs()`): one run of each
analysis with a page, from the tiny llama, plus a test-only analysis the explorer has
never seen, an AUSteer mask file and a steering-vector file.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from safetensors.torch import save as save_safetensors_bytes

from app.runs import SavedRun, UnsafePathError, find_run, inside, scan_runs
from app.vectors import read_vector_bytes, vector_sets
from interp.runs.results import Result, RunMeta
from steering.vectors import SteeringVector, VectorFileError

PROMPTS = ["The cat sat on the mat", "Hello world, this is"]
RUN_NAMES = ["austeer-eval-1", "dla-1", "lens-1", "massive-1", "probe-1", "refusal-1", "sinks-1", "voids-1"]
FILE_NAMES = ["au.safetensors", "v.safetensors"]


@dataclass
class ProbeResult(Result):
    """A made-up analysis with no explorer page: the generic view must show it all."""

    analysis: ClassVar[str] = "app_test_probe"
    scores: torch.Tensor  # [L, H, T]
    per_layer: pd.DataFrame
    label: str

    def figures(self) -> dict:
        fig = go.Figure(go.Heatmap(z=self.scores.mean(-1).tolist()))
        return {"scores": fig.update_layout(title="probe scores")}


@lru_cache(maxsize=1)
def saved_runs() -> Path:
    """A runs folder with one small run of every analysis (built once per test session)."""
    from tiny import tiny_model

    from interp.dla.attribution import dla
    from interp.dla.lens import logit_lens
    from interp.massive.activations import massive_activations
    from interp.sinks.measure import sinks
    from interp.voids.maps import VoidConfig, run_voids
    from steering.austeer import fit_austeer
    from steering.austeer_eval import AUSteerEvalConfig, run_austeer_eval
    from steering.refusal_steer import RefusalSteerConfig, run_refusal_steer
    from steering.tasks import get_task, triples

    root = Path(tempfile.mkdtemp(prefix="steerlens-app-runs-"))
    model = tiny_model("llama")
    dla(model, PROMPTS, target="a", contrast="b").save(root / "dla-1")
    logit_lens(model, PROMPTS, target="a").save(root / "lens-1")
    sinks(model, PROMPTS, tokens=12, n_random=2).save(root / "sinks-1")
    massive_activations(model, PROMPTS, tokens=12, abs_threshold=0, ratio_threshold=5).save(root / "massive-1")
    run_voids(model, PROMPTS, VoidConfig(max_new_tokens=5)).save(root / "voids-1")
    task = get_task("arithmetic")
    config = AUSteerEvalConfig(ks=[2, 4], alphas=[2.0], block_alphas=[1.0], block_layer_stride=2, n_train=6,
                               n_val=2, n_test=2)
    run_austeer_eval(model, task, config, progress=False).save(root / "austeer-eval-1")
    run_refusal_steer(model, RefusalSteerConfig(alphas=[1.0], max_new_tokens=3)).save(root / "refusal-1")
    fit_austeer(model, triples(task.split(6, 0, 0)["train"]), site="ffn", k=8).save(root / "au.safetensors")
    torch.manual_seed(0)
    SteeringVector.from_tensor(10 * torch.randn(3, model.d_model), layers=[0, 1, 2], model=model).save(
        root / "v.safetensors")
    probe = ProbeResult(torch.rand(3, 4, 5), pd.DataFrame({"layer": [0, 1, 2], "kind": ["a", "b", "a"],
                                                           "value": [0.5, 1.5, 2.5]}), "probe",
                        meta=RunMeta(model={"spec": "tiny-llama"}, config={"k": 3}))
    probe.save(root / "probe-1")
    return root


def copy_runs(dest: Path) -> Path:
    shutil.copytree(saved_runs(), dest)
    return dest


# ---- listing -------------------------------------------------------------------------------
def test_scan_lists_every_run_and_vector_file():
    entries = scan_runs(saved_runs())
    assert [e.name for e in entries] == RUN_NAMES + FILE_NAMES
    assert not any(e.broken for e in entries)
    by_name = {e.name: e for e in entries}
    assert by_name["dla-1"].analysis == "dla" and by_name["dla-1"].model == "tiny-llama"
    assert by_name["v.safetensors"].kind == "vector" and by_name["v.safetensors"].analysis == "steering-vector"
    assert by_name["au.safetensors"].summary["method"] == "austeer"


def test_missing_or_empty_root_lists_nothing(tmp_path):
    assert scan_runs(tmp_path / "nope") == []
    assert scan_runs(tmp_path) == []


def test_corrupt_and_partial_runs_are_marked_broken_others_still_listed(tmp_path):
    root = copy_runs(tmp_path / "runs")
    (root / "dla-1" / "manifest.json").write_text("{not json")
    (root / "lens-1" / "fields.json").unlink()  # a file the manifest names is missing
    (root / "half-run").mkdir()  # interrupted: no manifest
    (root / "bad.safetensors").write_bytes(b"\x00" * 3)
    entries = {e.name: e for e in scan_runs(root)}
    assert {n for n, e in entries.items() if e.broken} == {"dla-1", "lens-1", "half-run", "bad.safetensors"}
    assert "corrupt" in entries["dla-1"].error and "missing" in entries["lens-1"].error
    assert not entries["sinks-1"].broken and SavedRun(entries["sinks-1"].path).figure_names()


def test_find_run_answers_only_listed_names():
    entries = scan_runs(saved_runs())
    assert find_run(entries, "dla-1").path == (saved_runs() / "dla-1").resolve()
    for bad in ["../dla-1", str(saved_runs() / "dla-1"), "/etc", "..", "", None, ["dla-1"]]:
        assert find_run(entries, bad) is None


def test_symlinked_run_outside_root_is_not_opened(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(saved_runs() / "probe-1", tmp_path / "elsewhere")
    (root / "sneaky").symlink_to(tmp_path / "elsewhere")
    (entry,) = scan_runs(root)
    assert entry.broken and "outside" in entry.error


def test_manifest_naming_a_file_outside_the_run_is_refused(tmp_path):
    root = copy_runs(tmp_path / "runs")
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    (tmp_path / "secret.json").write_text(go.Figure().to_json())
    manifest_path = root / "probe-1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"].append("../../secret.csv")
    manifest["files"].append("figures/../../../secret.json")
    manifest["schema"]["per_layer"]["path"] = "../../secret.csv"
    manifest_path.write_text(json.dumps(manifest))
    run = SavedRun(root / "probe-1")
    assert run.figure_names() == ["scores"]
    with pytest.raises(UnsafePathError):
        run.table("per_layer")
    with pytest.raises(UnsafePathError):
        inside(root, root / ".." / "secret.csv")


def test_saved_run_reads_any_analysis_without_its_class():
    run = SavedRun(saved_runs() / "probe-1")
    assert run.analysis == "app_test_probe"
    assert run.tensor_info() == {"scores": ((3, 4, 5), "F32")}
    assert run.field("scores").shape == (3, 4, 5) and run.field("label") == "probe"
    assert run.table("per_layer")["kind"].tolist() == ["a", "b", "a"]
    assert run.figure("scores").data[0].type == "heatmap"


# ---- vectors ---------------------------------------------------------------------------------
def test_plain_safetensors_vectors_are_grouped_by_layer():
    tensors = {"layer.0": torch.ones(8), "layer.2": torch.zeros(8), "blocks.1.hook_mlp_out": torch.ones(8),
               "directions": torch.ones(4, 8), "ids": torch.arange(8)}
    found = {c.label.split(" · ")[1]: c.vector for c in vector_sets(tensors, "t")}
    assert found["layer"].layers == [0, 2] and found["layer"].site == "layer"
    assert found["hook_mlp_out"].site == "ffn" and found["hook_mlp_out"].layers == [1]
    assert found["directions"].layers == [0, 1, 2, 3]
    assert len(found) == 3  # the integer tensor is not a direction


def test_upload_of_a_steerlens_vector_keeps_its_metadata():
    data = (saved_runs() / "v.safetensors").read_bytes()
    (choice,) = read_vector_bytes("my vector.safetensors", data)
    assert choice.vector.layers == [0, 1, 2] and choice.vector.model["family"] == "llama"


def test_upload_that_is_a_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    data = pickle.dumps(Payload())
    for name in ("vector.safetensors", "vector.pt"):
        with pytest.raises(VectorFileError):
            read_vector_bytes(name, data)
    assert not marker.exists()


def test_upload_needs_the_safetensors_suffix_and_some_vectors():
    data = save_safetensors_bytes({"layer.3": torch.ones(8)})
    with pytest.raises(VectorFileError, match="only .safetensors"):
        read_vector_bytes("v.bin", data)
    with pytest.raises(VectorFileError, match="no per-layer vectors"):
        read_vector_bytes("v.safetensors", save_safetensors_bytes({"ids": torch.arange(3)}))
    (choice,) = read_vector_bytes("v.safetensors", data)
    assert choice.vector.layers == [3]


# ---- CLI ---------------------------------------------------------------------------------------
def test_app_command_runs_streamlit_on_the_main_file(tmp_path):
    from app.cli_app import MAIN, command
    from interp.cli import build_parser

    args = build_parser().parse_args(["app", "--runs", str(tmp_path), "--port", "8123"])
    assert args.port == 8123 and args.runs == str(tmp_path)
    cmd = command(str(tmp_path), 8123)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(MAIN) and MAIN.is_file()
    assert cmd[cmd.index("--server.port") + 1] == "8123" and cmd[cmd.index("--runs") + 1] == str(tmp_path)


def test_app_command_rejects_a_file_as_runs_folder(tmp_path, capsys):
    from interp.cli import main

    file = tmp_path / "f.txt"
    file.write_text("x")
    assert main(["app", "--runs", str(file)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["app", "--port", "0"]) == 2
