"""Steering playground in AppTest: tiny model folder, uploaded and run vectors, side by side."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from test_app_runs import saved_runs

from steering.vectors import SteeringVector

MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    from tiny import tiny_hf, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_hf("llama").save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vector_bytes(tmp_path_factory) -> bytes:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("vec") / "v.safetensors"
    SteeringVector.from_tensor(20 * torch.randn(3, 64), layers=[0, 1, 2]).save(path)
    return path.read_bytes()


def playground(monkeypatch, model_folder: Path) -> AppTest:
    monkeypatch.setenv("STEERLENS_RUNS", str(saved_runs()))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["view"] = "playground"
    at.run()
    at.text_input(key="pg:spec").set_value(str(model_folder))
    at.button(key="pg:load").click().run()
    assert not at.exception and not at.error
    return at


def generate(at: AppTest, alpha: float | None) -> dict:
    at.text_area(key="pg:prompts").set_value("Hello there\nThe cat")
    at.number_input(key="pg:max_new").set_value(8)
    if alpha is not None:
        at.slider(key="pg:alpha").set_value(alpha)
    at.button(key="pg:generate").click().run()
    assert not at.exception and not at.error
    return at.session_state["pg:result"]


def test_uploaded_vector_steers_and_alpha_zero_changes_nothing(monkeypatch, model_folder, vector_bytes):
    at = playground(monkeypatch, model_folder)
    at.radio(key="pg:source").set_value("upload").run()
    at.file_uploader(key="pg:upload").set_value(("v.safetensors", vector_bytes, "application/octet-stream")).run()
    assert not at.error
    layers = at.multiselect(key=next(w.key for w in at.multiselect if w.key.startswith("pg:layers")))
    layers.set_value([0, 1]).run()
    same = generate(at, 0.0)
    assert same["plain"] == same["steered"] and len(same["plain"]) == 2
    steered = generate(at, 30.0)
    assert steered["plain"] == same["plain"]  # same seed and settings: the unsteered side repeats exactly
    assert steered["steered"] != steered["plain"]
    shown = [c.value for c in at.code]
    assert steered["plain"][0] in shown and steered["steered"][0] in shown  # side by side on the page


def test_vectors_from_the_runs_folder_are_offered(monkeypatch, model_folder):
    at = playground(monkeypatch, model_folder)
    labels = at.selectbox(key="pg:vector:runs").options  # as shown
    assert labels == ["file au.safetensors", "file v.safetensors"]  # run results are not offered as vectors
    au = next(i for i, label in enumerate(labels) if "au.safetensors" in label)
    at.selectbox(key="pg:vector:runs").set_value(au).run()
    assert not at.exception and not at.error
    result = generate(at, 8.0)
    assert len(result["steered"]) == 2


def test_pickle_upload_is_refused_and_never_run(monkeypatch, model_folder, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    at = playground(monkeypatch, model_folder)
    at.radio(key="pg:source").set_value("upload").run()
    at.file_uploader(key="pg:upload").set_value(("v.safetensors", pickle.dumps(Payload()), "x")).run()
    assert not at.exception
    assert at.error and "not a safetensors file" in at.error[0].value
    assert not marker.exists()
    assert at.button(key="pg:generate").proto.disabled  # no vector, nothing to steer with


def test_registered_controls_add_their_edits_to_the_steered_side(monkeypatch, model_folder):
    import streamlit as st

    from app import playground as pg
    from interp import Zero

    def ablate_layer_1(model):
        st.caption("test control: zero layer 1's output")
        return [Zero("blocks.1.hook_resid_post")]

    monkeypatch.setattr(pg, "EXTRA_CONTROLS", [ablate_layer_1])
    at = playground(monkeypatch, model_folder)
    at.radio(key="pg:source").set_value("upload").run()  # no vector uploaded: only the control's edit
    assert any("test control" in c.value for c in at.caption)
    result = generate(at, None)
    assert result["steered"] != result["plain"] and "1 other edit" in result["what"]


def test_bad_model_spec_shows_an_error_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("STEERLENS_RUNS", str(tmp_path))
    at = AppTest.from_file(str(MAIN), default_timeout=180)
    at.query_params["view"] = "playground"
    at.run()
    at.text_input(key="pg:spec").set_value(str(tmp_path / "no-such-model"))
    at.button(key="pg:load").click().run()
    assert not at.exception
    assert at.error and "Cannot load" in at.error[0].value
