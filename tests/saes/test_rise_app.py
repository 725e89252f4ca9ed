"""The explorer pages of RISE runs (app/pages_rise.py) render, and the latent picker redraws."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_model

pytest.importorskip("streamlit")
from apptest import open_app, problems

SITE = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from saes.analyze import AnalyzeConfig, analyze
    from saes.collect import CollectConfig, collect
    from saes.steer import SteerConfig, steer
    from saes.train import TrainConfig, train_layer

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("rise-app")
    rows = [{"question": f"What is {i}+1?", "answer": i + 1,
             "response": f"{i} plus 1.\n\nWait, let me check: {i + 1}.\n\nThe answer is {i + 1}"} for i in range(6)]
    (base / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = tiny_model("llama")
    collect(model, CollectConfig(layers=[1]), base / "collect", problems_file=str(base / "p.jsonl"), chat=True,
            progress=False)
    train_layer(base / "collect" / "store", SITE, base / "collect" / "sae" / "layer_1",
                TrainConfig(architecture="standard", d_sae=16, batch_size=8, steps=20, lr=3e-3, checkpoints=0), progress=False)
    runs = base / "runs"
    analyze(model, base / "collect", AnalyzeConfig(min_count=1, min_specificity=0.0, ce_traces=0),
            progress=False).save(runs / "rise-1")
    steer(model, base / "collect", SteerConfig(alphas=[0.0, 1.0], n=2, max_new_tokens=4),
          progress=False).save(runs / "rise-steer-1")
    return runs




def test_latent_browser_shows_top_steps_highlighted(monkeypatch, root):
    at = open_app(monkeypatch, root, "rise-1")
    assert not problems(at)
    assert any("rise-1:map" in c.proto.id for c in at.get("plotly_chart"))
    picker = at.selectbox(key="rise-1:latent")
    marked = [m.value for m in at.markdown if "<mark" in m.value]
    first = picker.value
    assert marked or any("fires on no step" in i.value for i in at.info)
    other = next(j for j in picker.options if j != picker.format_func(first))
    picker.set_value(int(other.split()[1])).run()
    assert not problems(at) and at.selectbox(key="rise-1:latent").value != first


def test_dose_response_page(monkeypatch, root):
    at = open_app(monkeypatch, root, "rise-steer-1")
    assert not problems(at)
    assert any("rise-steer-1:dose" in c.proto.id for c in at.get("plotly_chart"))


def test_a_latent_on_every_token_of_its_traces_with_a_histogram(monkeypatch, root):
    """Issue 36: per-token activations (the run's model and SAE, rerun) and the latent's histogram."""
    import threading

    import app.playground
    from app.rise_tokens import token_latents
    from interp.runs.results import load_run
    from saes.collect import load_traces
    from saes.train import load_sae

    model = tiny_model("llama")
    monkeypatch.setattr(app.playground, "load_model", lambda spec: (model, threading.Lock()))
    at = open_app(monkeypatch, root, "rise-1")
    r = load_run(root / "rise-1")
    latent = at.selectbox(key="rise-1:latent").value
    if not any(v > 0 for v in r.top_steps["layer_1.value"][latent].tolist()):
        pytest.skip("the first latent of this tiny SAE fires on no step")
    at.button(key="rise-1:tokens:go").click().run()
    assert not problems(at)
    blocks = [e.proto.body for e in at.get("html") if "token-strip" in e.proto.body]
    index, values = r.top_steps["layer_1.index"][latent], r.top_steps["layer_1.value"][latent]
    shown = list(dict.fromkeys(int(r.steps.iloc[int(i)]["trace"]) for i, v in zip(index, values) if v > 0))[:3]
    sae, traces = load_sae(root.parent / "collect" / "sae" / "layer_1"), load_traces(r.run)
    expected = [token_latents(model, sae, SITE, traces[t].prompt, traces[t].response) for t in shown]
    assert [b.count("class='tok'") for b in blocks] == [len(tokens) for tokens, _ in expected]
    (hist,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "rise-1:tokens:histogram" in c.proto.id]
    fired = sum(int((acts[:, latent] > 0).sum()) for _, acts in expected)
    total = sum(len(tokens) for tokens, _ in expected)
    assert f"activation over {total} response tokens ({fired} > 0" in hist["layout"]["title"]["text"]
