"""The SAE feature page in Streamlit's AppTest, on a dashboard run of a random SAE on tiny Llama."""

from __future__ import annotations

import json

import pytest
from apptest import open_app, problems

pytestmark = pytest.mark.usefixtures("one_thread")
SITE = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from sae_fixtures import random_sae
    from tiny import tiny_model

    from interp.features.explore import FeaturesConfig, explore_features

    root = tmp_path_factory.mktemp("runs")
    model = tiny_model("llama")
    attachment = model.attach_sae(random_sae(64, SITE))
    prompts = ["hello world, again", "hi there", "the cat sat on the mat", "<b> & 'quotes'"]
    explore_features(model, prompts, attachment, FeaturesConfig(top_k=3, window=4, features="0-15")).save(root / "sae-1")
    return root


def test_sae_page_shows_contexts_histogram_logits_and_steers(monkeypatch, runs):
    from interp.runs.results import load_run

    result = load_run(runs / "sae-1")
    at = open_app(monkeypatch, runs, "sae-1")
    assert not problems(at)
    at.radio(key="sae-1:order").set_value("max").run()
    top = max(result.features, key=lambda f: float(result.max_act[result.row(f)]))
    assert at.selectbox(key="sae-1:feature").options[0].startswith(f"{top} ")  # sorted by maximum
    at.selectbox(key="sae-1:feature").set_value(top).run()
    contexts = [h.proto.body for h in at.get("html") if "prompt" in h.proto.body]
    assert contexts and "outline" in "".join(contexts) and "<b>&" not in "".join(contexts)  # escaped tokens
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert any(f"Feature {top}: non-zero activations" in t for t in titles)
    assert any(f"Feature {top}: logits per unit activation" in t for t in titles)
    at.button(key=f"sae-1:write:{top}").click().run()
    assert not problems(at)
    assert (runs / f"sae-1.f{top}.safetensors").is_file()
    at.button(key=f"sae-1:playground:{top}").click().run()
    assert at.query_params["view"] == ["playground"] or at.query_params["view"] == "playground"
