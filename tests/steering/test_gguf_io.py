"""llama.cpp control-vector export / import (steering/gguf_io.py)."""

import gguf
import numpy as np
import pytest
import torch
from tiny import tiny_model

from steering import SteeringVector, VectorFileError, export_gguf, import_gguf


@pytest.fixture(scope="module")
def model():
    return tiny_model("qwen2")


def test_round_trip_is_exact(model, tmp_path):
    v = SteeringVector.from_tensor(torch.randn(2, 64), layers=[1, 2], model=model, method="mean-diff",
                                   config={"layers": [1, 2]})
    path = export_gguf(v, tmp_path / "v.gguf")
    back = import_gguf(path)
    assert back.layers == [1, 2]
    assert all(torch.equal(back.vectors[layer], v.vectors[layer]) for layer in v.layers)
    assert back.method == "mean-diff" and back.model == v.model and back.config == v.config
    assert all(torch.equal(SteeringVector.load(path).vectors[layer], v.vectors[layer]) for layer in v.layers)


def test_file_has_the_llama_cpp_layout(model, tmp_path):
    v = SteeringVector.from_tensor(torch.randn(64), layers=[2], model=model)
    reader = gguf.GGUFReader(str(export_gguf(v, tmp_path / "v.gguf")))
    fields = {name: f.contents() for name, f in reader.fields.items()}
    assert fields["general.architecture"] == "controlvector"
    assert fields["controlvector.model_hint"] == "qwen2" and fields["controlvector.layer_count"] == 1
    [tensor] = reader.tensors
    assert tensor.name == "direction.2" and tensor.tensor_type == gguf.GGMLQuantizationType.F32
    assert np.array_equal(np.asarray(tensor.data), v.vectors[2].numpy())


def test_foreign_control_vector_imports(tmp_path):
    path = tmp_path / "foreign.gguf"
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", "llama")
    writer.add_int32("controlvector.layer_count", 2)
    for layer in (1, 2):
        writer.add_tensor(f"direction.{layer}", np.full(64, layer, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    v = import_gguf(path)
    assert v.layers == [1, 2] and v.method == "gguf" and float(v.vectors[2][0]) == 2.0
    v.check_model(tiny_model("llama"))  # width matches; a foreign file names no family to contradict


def test_layer_zero_and_non_layer_sites_are_refused(model, tmp_path):
    with pytest.raises(VectorFileError, match="layer 0"):
        export_gguf(SteeringVector.from_tensor(torch.randn(64), layers=[0], model=model), tmp_path / "a.gguf")
    ffn = SteeringVector.from_tensor(torch.randn(64), layers=[1], model=model, site="ffn")
    with pytest.raises(VectorFileError, match="site=ffn"):
        export_gguf(ffn, tmp_path / "b.gguf")


def test_model_gguf_is_not_a_control_vector(tmp_path):
    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(VectorFileError, match="not 'controlvector'"):
        import_gguf(path)
