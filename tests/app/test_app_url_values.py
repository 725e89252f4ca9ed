"""Pickers kept in the URL hold the chosen value (a layer number), not its index among the
picker's options, so a shared link opens the same layer even where the options differ."""

import pytest
import torch
from apptest import MAIN, problems
from streamlit.testing.v1 import AppTest
from tiny import tiny_model

from steering.vectors import SteeringVector

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    model = tiny_model("llama")
    SteeringVector.from_tensor(torch.randn(2, model.d_model), layers=[1, 2], model=model).save(root / "v.safetensors")
    return root


def _open(monkeypatch, root, **params):
    monkeypatch.setenv("STEERLENS_RUNS", str(root))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["run"] = "v.safetensors"
    for key, value in params.items():
        at.query_params[f"v.safetensors:{key}"] = value
    return at.run()


def test_the_url_names_the_layer_and_a_link_opens_on_it(monkeypatch, root):
    at = _open(monkeypatch, root, layer="1")  # layer 1 (option 0), not option 1 (layer 2, the default)
    assert not problems(at)
    assert at.selectbox(key="v.safetensors:layer").value == 1
    at.selectbox(key="v.safetensors:layer").set_value(2).run()
    assert at.query_params["v.safetensors:layer"] in ("2", ["2"])  # option 1 holds layer 2


def test_a_layer_the_picker_lacks_falls_back_to_the_default(monkeypatch, root):
    at = _open(monkeypatch, root, layer="0")  # (as an option index: layer 1)
    assert not problems(at)
    assert at.selectbox(key="v.safetensors:layer").value == 2  # the default: the middle option
