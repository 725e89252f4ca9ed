"""`steerlens generate`, `vector ...` and `austeer fit` on a tiny model saved to a folder,
including the bad inputs that must stop with one clear line (exit code 2)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from tiny import save_tiny, tiny_model

from interp.cli import main
from steering import SteeringVector
from steering.cli_steering import side_by_side


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("tiny-llama")
    save_tiny(model, path)
    return path


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory, folder):
    data = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    data.write_text("\n".join(json.dumps({"positive": f"good {i}", "negative": f"bad {i}"}) for i in range(4)))
    out = data.parent / "v.safetensors"
    assert main(["vector", "make", "--model", str(folder), "--data", str(data), "--layers", "1,2",
                 "--method", "pca", "--out", str(out), "--json"]) == 0
    return out


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_vector_make_and_info(vector_file, capsys):
    assert main(["vector", "info", str(vector_file), "--json"]) == 0
    info = _json(capsys)
    assert info["layers"] == [1, 2] and info["method"] == "pca" and info["width"] == 64


def test_export_and_import_gguf_round_trip(vector_file, tmp_path):
    assert main(["vector", "export-gguf", str(vector_file), str(tmp_path / "v.gguf")]) == 0
    assert main(["vector", "import-gguf", str(tmp_path / "v.gguf"), str(tmp_path / "back.safetensors")]) == 0
    a, b = SteeringVector.load(vector_file), SteeringVector.load(tmp_path / "back.safetensors")
    assert all(torch.equal(a.vectors[layer], b.vectors[layer]) for layer in a.layers)


def test_generate_alpha_zero_matches_plain_and_compare_prints_both(folder, vector_file, capsys):
    base = ["generate", "--model", str(folder), "--prompt", "hello", "--max-new-tokens", "5", "--json"]
    assert main(base) == 0
    plain = _json(capsys)
    assert main([*base, "--vector", f"{vector_file}@1,2:0"]) == 0
    zero = _json(capsys)
    assert zero["steered"] == plain["steered"] and "unsteered" not in zero
    assert main([*base, "--vector", f"{vector_file}@2:50", "--compare"]) == 0
    both = _json(capsys)
    assert both["unsteered"] == plain["steered"] and set(both) == {"prompt", "steered", "unsteered", "tokens_per_s", "sampling"}
    assert both["sampling"].startswith("sampling: neutral (greedy")


def test_generate_streams_and_side_by_side(folder, vector_file, capsys):
    assert main(["generate", "--model", str(folder), "--prompt", "hi", "--max-new-tokens", "3",
                 "--ablate", f"{vector_file}@1"]) == 0
    err = capsys.readouterr().err
    assert "edits" in err and "sampling: neutral" in err
    assert main(["generate", "--model", str(folder), "--prompt", "hi", "--max-new-tokens", "3", "--temperature", "1",
                 "--sampling", "model"]) == 0
    assert "sampling: model (temperature 1.0; checkpoint's generation_config" in capsys.readouterr().err
    text = side_by_side("p", "left words here", "right words", width=40)
    assert "unsteered" in text and "| right words" in text


def test_austeer_fit_then_generate_with_the_mask(folder, tmp_path, capsys):
    task = tmp_path / "task.jsonl"
    task.write_text("\n".join(json.dumps({"prompt": f"{a}+{a}=", "answer": str(2 * a), "wrong": str(2 * a + 1)})
                              for a in range(6)))
    out = tmp_path / "au.safetensors"
    assert main(["austeer", "fit", "--model", str(folder), "--data", str(task), "--site", "ffn", "--k", "3",
                 "--n-train", "5", "--out", str(out), "--json"]) == 0
    assert _json(capsys)["nonzero_coordinates"] == 3
    assert main(["generate", "--model", str(folder), "--prompt", "1+1=", "--max-new-tokens", "2",
                 "--austeer", f"{out}:4", "--json"]) == 0
    assert "steered" in _json(capsys)


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_stop_with_one_line(folder, vector_file, tmp_path, capsys):
    gen = ["generate", "--model", str(folder), "--prompt", "hello", "--max-new-tokens", "2"]
    assert "is not a number" in _error(capsys, [*gen, "--vector", f"{vector_file}:strong"])
    torch.save({"layer.1": torch.ones(64)}, tmp_path / "v.pt")
    assert "never unpickles" in _error(capsys, [*gen, "--vector", str(tmp_path / "v.pt")])
    SteeringVector.from_tensor(torch.ones(32), layers=[1]).save(tmp_path / "narrow.safetensors")
    assert "width 32" in _error(capsys, [*gen, "--vector", str(tmp_path / "narrow.safetensors")])
    assert "no direction for layers [9]" in _error(capsys, [*gen, "--vector", f"{vector_file}@9"])
    SteeringVector.from_tensor(torch.ones(64), layers=[1], model=tiny_model("llama")).save(tmp_path / "one.safetensors")
    assert "layer 9 out of range" in _error(capsys, [*gen, "--vector", f"{tmp_path / 'one.safetensors'}@9"])
    other = tiny_model("llama", num_hidden_layers=4)
    SteeringVector.from_tensor(torch.ones(64), layers=[1], model=other).save(tmp_path / "other.safetensors")
    assert "another model" in _error(capsys, [*gen, "--vector", str(tmp_path / "other.safetensors")])
    meta = SteeringVector.from_tensor(torch.ones(64), layers=[1]).metadata()
    save_file({"layer.1": torch.full((64,), float("nan"))}, str(tmp_path / "nan.safetensors"),
              metadata={"steerlens.vector": json.dumps(meta)})
    assert "non-finite" in _error(capsys, [*gen, "--vector", str(tmp_path / "nan.safetensors")])
    assert "AUSteer mask" in _error(capsys, [*gen, "--austeer", str(vector_file)])
    assert "--out FILE.safetensors is required" in _error(capsys, ["vector", "make", "--model", str(folder),
                                                                   "--positive", "a", "--negative", "b"])


def test_generate_one_prompt_with_generated_positions_steers(folder, vector_file, capsys):
    """One unpadded prompt: `--positions generated` must change the text (it once did nothing)."""
    argv = ["generate", "--model", str(folder), "--prompt", "hello there", "--max-new-tokens", "6", "--json",
            "--vector", f"{vector_file}@1:40", "--positions", "generated", "--compare"]
    assert main(argv) == 0
    out = _json(capsys)
    assert out["steered"] != out["unsteered"]
    assert out["steered"][0] == out["unsteered"][0]  # the first new token comes from the unsteered prompt
