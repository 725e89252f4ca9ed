"""Run directories: exact round trips, atomic saves, clear errors on broken runs."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from interp.runs import results
from interp.runs.results import (
    RESULT_TYPES,
    Result,
    RunLoadError,
    RunMeta,
    default_run_dir,
    list_runs,
    load_figures,
    load_run,
    read_manifest,
)


@dataclass
class ToyConfig:
    layers: list[int] = field(default_factory=lambda: [0, 1])
    scale: float = 0.5


@dataclass
class ToyResult(Result):
    analysis: ClassVar[str] = "toy"

    logits: torch.Tensor
    table: pd.DataFrame
    score: float
    tokens: list[str]
    weights: np.ndarray
    per_layer: dict[int, float]
    vectors: dict[str, torch.Tensor]
    shape: tuple[int, int]
    config: ToyConfig
    baseline: torch.Tensor | None = None
    note: str | None = None

    def figures(self) -> dict[str, go.Figure]:
        return {"scores": go.Figure(go.Bar(y=self.logits[0].tolist()))}

    def summary(self) -> dict:
        return {"score": self.score}


@dataclass
class OtherResult(Result):
    analysis: ClassVar[str] = "other"
    value: int = 0


def make_toy() -> ToyResult:
    table = pd.DataFrame(
        {
            "token": ["a", "", None, "NA"],
            "count": [1, 2, 3, 4],
            "logit": [0.1, float("nan"), 1 / 3, -2.5e-30],
            "hit": [True, False, True, False],
            "maybe": pd.array([1, None, 3, 4], dtype="Int64"),
            "kind": pd.Categorical(["x", "y", "x", "x"], categories=["y", "x"], ordered=True),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-04"]),
        },
        index=pd.Index([10, 11, 12, 13], name="prompt"),
    )
    meta = RunMeta(model={"spec": "toy-model", "sha256": "abc"}, config=ToyConfig(), seed=7)
    return ToyResult(
        logits=torch.randn(2, 5, dtype=torch.bfloat16)[:, ::2],  # non-contiguous view
        table=table,
        score=0.25,
        tokens=["<bos>", " the"],
        weights=np.arange(6, dtype=np.float32).reshape(2, 3),
        per_layer={0: 1.5, 3: -2.0},
        vectors={"refusal": torch.ones(4), "honesty": torch.zeros(4, dtype=torch.float16)},
        shape=(2, 3),
        config=ToyConfig(layers=[3], scale=2.0),
        meta=meta,
    )


def assert_same(a: ToyResult, b: ToyResult) -> None:
    assert torch.equal(a.logits, b.logits) and a.logits.dtype == b.logits.dtype
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.weights.dtype == b.weights.dtype
    assert a.vectors.keys() == b.vectors.keys()
    assert all(torch.equal(a.vectors[k], b.vectors[k]) for k in a.vectors)
    assert (a.baseline is None and b.baseline is None) or torch.equal(a.baseline, b.baseline)
    for name in ("score", "tokens", "per_layer", "shape", "config", "note"):
        assert getattr(a, name) == getattr(b, name), name


def test_round_trip_is_exact(tmp_path: Path) -> None:
    toy = make_toy()
    run = toy.save(tmp_path / "run")
    loaded = ToyResult.load(run)
    assert_same(toy, loaded)
    assert loaded.meta.model == {"spec": "toy-model", "sha256": "abc"}
    assert loaded.meta.config == {"layers": [0, 1], "scale": 0.5}  # dataclass saved as dict
    assert loaded.meta.seed == 7


def test_optional_fields_round_trip_when_set(tmp_path: Path) -> None:
    toy = make_toy()
    toy.baseline, toy.note = torch.arange(3), "with baseline"
    assert_same(toy, ToyResult.load(toy.save(tmp_path / "run")))


def test_manifest_records_provenance(tmp_path: Path) -> None:
    toy = make_toy()
    with toy.meta.timed("forward"):
        pass
    manifest = read_manifest(toy.save(tmp_path / "run"))
    assert manifest["analysis"] == "toy" and manifest["complete"] is True
    assert manifest["created"].endswith("+00:00")
    assert manifest["summary"] == {"score": 0.25}
    assert manifest["timings"]["forward"] >= 0
    assert {"python", "torch", "numpy", "pandas"} <= manifest["versions"].keys()
    assert "tables/table.csv" in manifest["files"] and "tensors.safetensors" in manifest["files"]


def test_figures_written_as_html_and_json(tmp_path: Path) -> None:
    run = make_toy().save(tmp_path / "run")
    html = (run / "figures" / "scores.html").read_text()
    assert "cdn.plot.ly" in html and len(html) < 100_000  # plotly.js not inlined
    assert set(load_figures(run)) == {"scores"}


def test_load_run_dispatches_on_manifest(tmp_path: Path) -> None:
    run = make_toy().save(tmp_path / "run")
    assert RESULT_TYPES["toy"] is ToyResult
    assert isinstance(load_run(run), ToyResult)
    assert isinstance(Result.load(run), ToyResult)


def test_to_json_is_plain_json() -> None:
    out = make_toy().to_json()
    json.dumps(out, allow_nan=True)
    assert out["analysis"] == "toy" and out["per_layer"] == {0: 1.5, 3: -2.0}


def test_save_refuses_existing_dir_unless_overwrite(tmp_path: Path) -> None:
    run = OtherResult(value=1).save(tmp_path / "run")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        OtherResult(value=2).save(run)
    OtherResult(value=3).save(run, overwrite=True)
    assert OtherResult.load(run).value == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no old or temp dir left


def test_crash_mid_save_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(results, "_write_figures", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        make_toy().save(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_overwrite_keeps_previous_run(tmp_path: Path, monkeypatch) -> None:
    run = make_toy().save(tmp_path / "run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    monkeypatch.setattr(results, "_write_tensors", lambda *a: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        make_toy().save(run, overwrite=True)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_load_without_manifest_says_interrupted(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(RunLoadError, match="no manifest.json; the run was interrupted"):
        load_run(tmp_path / "run")


def test_load_incomplete_manifest_says_so(tmp_path: Path) -> None:
    run = make_toy().save(tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(RunLoadError, match="not marked complete"):
        ToyResult.load(run)


def test_load_with_missing_file_names_it(tmp_path: Path) -> None:
    run = make_toy().save(tmp_path / "run")
    (run / "tables" / "table.csv").unlink()
    with pytest.raises(RunLoadError, match=r"tables/table.csv.*missing"):
        load_run(run)


def test_load_with_corrupt_tensors_is_run_load_error(tmp_path: Path) -> None:
    run = make_toy().save(tmp_path / "run")
    (run / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(RunLoadError, match="corrupt"):
        load_run(run)


def test_load_run_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "weights.pt").write_bytes(b"\x80\x04")
    with pytest.raises(RunLoadError, match="not a directory"):
        load_run(tmp_path / "weights.pt")


def test_load_with_wrong_analysis_names_both(tmp_path: Path) -> None:
    run = OtherResult().save(tmp_path / "run")
    with pytest.raises(RunLoadError, match="is a 'other' run, not 'toy'"):
        ToyResult.load(run)


def test_list_runs_marks_broken_and_keeps_good(tmp_path: Path) -> None:
    make_toy().save(tmp_path / "a-good")
    (tmp_path / "b-broken").mkdir()
    (tmp_path / "b-broken" / "manifest.json").write_text("{not json")
    (tmp_path / ".c.tmp-123").mkdir()  # left by a killed save: not a run
    good, broken = list_runs(tmp_path)
    assert (good.analysis, good.model, good.complete) == ("toy", "toy-model", True)
    assert broken.broken and "unreadable" in broken.error
    assert list_runs(tmp_path / "nowhere") == []


def test_unsupported_field_type_names_the_field(tmp_path: Path) -> None:
    @dataclass
    class BadResult(Result):
        analysis: ClassVar[str] = "bad"
        model: torch.nn.Module

    with pytest.raises(TypeError, match=r"BadResult.model: unsupported field type"):
        BadResult(model=torch.nn.Linear(1, 1)).save(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_wrong_value_type_names_the_field(tmp_path: Path) -> None:
    toy = make_toy()
    toy.logits = [1.0, 2.0]
    with pytest.raises(TypeError, match="'logits' should be a Tensor, got list"):
        toy.save(tmp_path / "run")


def test_duplicate_analysis_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @dataclass
        class Clash(Result):
            analysis: ClassVar[str] = "toy"


def test_default_run_dir_is_unique(tmp_path: Path) -> None:
    first = default_run_dir("dla", root=tmp_path)
    first.mkdir()
    second = default_run_dir("dla", root=tmp_path)
    assert first.name.startswith("dla-") and second.name == first.name + "-2"


def test_table_strings_with_carriage_returns_round_trip(tmp_path):
    from interp.runs.tables import read_table, write_table

    df = pd.DataFrame({"token": ["a", "\r", "b\rc", "\n", ""], "count": [1, 2, 3, 4, 5]})
    info = write_table(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv", info), df)
