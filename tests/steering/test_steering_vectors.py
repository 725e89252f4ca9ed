"""SteeringVector files and construction from contrast data (steering/vectors.py, contrast.py)."""

import json

import pytest
import torch
from safetensors.torch import save_file
from tiny import tiny_model

from steering import ContrastConfig, SteeringVector, VectorFileError, make_vector, read_contrast_data
from steering.contrast import mean_difference, pca_of_differences, site_activations

POS = ["I love this, it is great", "What a wonderful day", "This is so nice"]
NEG = ["I hate this, it is awful", "What a terrible day", "This is so bad"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def test_save_load_round_trip_is_exact(model, tmp_path):
    v = SteeringVector.from_tensor(torch.randn(2, 64), layers=[1, 2], model=model, config={"note": "x"})
    v.extras["beta"] = torch.randn(3, 64)
    v.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(tmp_path / "v.safetensors")
    assert back.layers == [1, 2] and back.site == "layer" and back.kind == "add"
    assert all(torch.equal(back.vectors[layer], v.vectors[layer]) for layer in v.layers)
    assert torch.equal(back.extras["beta"], v.extras["beta"])
    assert back.model == v.model and back.config == {"note": "x"}


def test_from_tensor_same_direction_at_each_layer_and_bad_shape(model):
    v = SteeringVector.from_tensor(torch.ones(64), layers=[0, 2], model=model, normalize=True)
    assert torch.allclose(v.vectors[2].norm(), torch.tensor(1.0)) and v.normalization == "unit"
    with pytest.raises(VectorFileError, match="does not fit layers"):
        SteeringVector.from_tensor(torch.ones(3, 64), layers=[0, 1])



def test_subset_keeps_the_chosen_layers_and_the_metadata(model):
    v = SteeringVector.from_tensor(torch.arange(128.0).reshape(2, 64), layers=[0, 2], model=model, config={"a": 1})
    one = v.subset(2)
    assert one.layers == [2] and torch.equal(one.vectors[2], v.vectors[2])
    assert (one.site, one.kind, one.model, one.config) == (v.site, v.kind, v.model, v.config)
    with pytest.raises(VectorFileError, match=r"layers \[1\] are not in this vector; it has layers \[0, 2\]"):
        v.subset([1, 2])


def test_wrong_width_is_refused(model):
    v = SteeringVector.from_tensor(torch.ones(32), layers=[1])
    with pytest.raises(VectorFileError, match="width 32 .* 64 coordinates"):
        v.check_model(model)


def test_vector_for_another_model_is_refused(model):
    other = tiny_model("llama", num_hidden_layers=4)
    v = SteeringVector.from_tensor(torch.ones(64), layers=[1], model=other)
    with pytest.raises(VectorFileError, match="another model .*n_layers=4"):
        v.check_model(model)
    v.check_model(model, allow_other_model=True)  # same shape, explicitly allowed


def test_layer_out_of_range_is_refused(model):
    v = SteeringVector.from_tensor(torch.ones(64), layers=[7])
    with pytest.raises(VectorFileError, match="layer 7 out of range.*0..2"):
        v.check_model(model)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values_are_refused_on_load(tmp_path, bad):
    v = SteeringVector.from_tensor(torch.ones(64), layers=[1])
    tensor = torch.ones(64)
    tensor[5] = bad
    path = tmp_path / "bad.safetensors"
    save_file({"layer.1": tensor}, str(path), metadata={"steerlens.vector": json.dumps(v.metadata())})
    with pytest.raises(VectorFileError, match="1 non-finite values"):
        SteeringVector.load(path)


def test_integer_dtype_is_refused(tmp_path):
    v = SteeringVector.from_tensor(torch.ones(4), layers=[1])
    path = tmp_path / "int.safetensors"
    save_file({"layer.1": torch.ones(4, dtype=torch.int32)}, str(path),
              metadata={"steerlens.vector": json.dumps(v.metadata())})
    with pytest.raises(VectorFileError, match="must be floating point"):
        SteeringVector.load(path)


@pytest.mark.parametrize("name", ["v.pt", "v.pth", "v.pkl", "v.bin", "renamed.safetensors"])
def test_pickle_files_are_refused_with_an_explanation(tmp_path, name):
    path = tmp_path / name
    torch.save({"layer.1": torch.ones(4)}, path)
    with pytest.raises(VectorFileError, match="never unpickles"):
        SteeringVector.load(path)


def test_safetensors_without_steerlens_metadata_is_refused(tmp_path):
    path = tmp_path / "raw.safetensors"
    save_file({"direction": torch.ones(4)}, str(path))
    with pytest.raises(VectorFileError, match="without steerlens metadata"):
        SteeringVector.load(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(VectorFileError, match="not found"):
        SteeringVector.load(tmp_path / "nope.safetensors")


def test_mean_diff_equals_difference_of_captured_means(model):
    v = make_vector(model, POS, NEG, ContrastConfig(layers=[1], method="mean-diff"))
    _, cache = model.run_with_cache(POS + NEG, ["blocks.1.hook_resid_post"], positions="last")
    acts = cache["blocks.1.hook_resid_post"]  # [6, 64]
    assert torch.allclose(v.vectors[1], acts[:3].mean(0) - acts[3:].mean(0), atol=1e-6)
    assert v.method == "mean-diff" and v.config["n_positive"] == 3


def test_mean_pooling_averages_real_tokens_only(model):
    acts = site_activations(model, ["ab", "abcdef"], "layer", [0], pooling="mean")[0]  # [2, 64]
    _, cache = model.run_with_cache(["ab"], ["blocks.0.hook_resid_post"])
    alone = cache["blocks.0.hook_resid_post"][0].mean(0)  # no padding when alone
    assert torch.allclose(acts[0], alone, atol=1e-5)


def test_attention_site_vector_has_heads_times_d_head_coordinates(model):
    v = make_vector(model, POS, NEG, ContrastConfig(layers=[0], site="attention"))
    assert v.width == model.n_heads * model.d_head and v.site_name(0) == "blocks.0.attn.hook_z"


def test_pca_recovers_planted_direction_and_points_negative_to_positive():
    gen = torch.Generator().manual_seed(0)
    planted = torch.zeros(16)
    planted[3] = 1.0
    negative = torch.randn(50, 16, generator=gen)
    shift = (2.0 + torch.rand(50, 1, generator=gen)) * planted  # positive_i = negative_i + c_i * planted
    positive = negative + shift + 0.05 * torch.randn(50, 16, generator=gen)
    direction = pca_of_differences(positive, negative)
    assert direction[3] > 0 and abs(direction.norm() - (shift[:, 3].mean())) < 0.05
    assert torch.nn.functional.cosine_similarity(direction, planted, dim=0) > 0.99
    flipped = pca_of_differences(negative, positive)
    assert flipped[3] < 0
    assert torch.allclose(mean_difference(positive, negative), (positive - negative).mean(0), atol=1e-5)


def test_pca_needs_pairs(model):
    with pytest.raises(ValueError, match="paired"):
        make_vector(model, POS, NEG[:2], ContrastConfig(layers=[1], method="pca"))


def test_make_vector_layer_out_of_range(model):
    with pytest.raises(ValueError, match="layer 9 out of range"):
        make_vector(model, POS, NEG, ContrastConfig(layers=[9]))


def test_contrast_data_from_jsonl_and_from_two_files(tmp_path):
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"positive": p, "negative": n}) for p, n in zip(POS, NEG)))
    assert read_contrast_data(str(jsonl)) == (POS, NEG)
    (tmp_path / "pos.txt").write_text("\n".join(POS))
    (tmp_path / "neg.txt").write_text("\n".join(NEG))
    assert read_contrast_data(None, str(tmp_path / "pos.txt"), str(tmp_path / "neg.txt")) == (POS, NEG)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"positive": "x"}))
    with pytest.raises(ValueError, match="missing required field"):
        read_contrast_data(str(bad))
