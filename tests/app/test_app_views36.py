"""Issue 36, views: a key figure per run in the run list, tokens coloured by value."""

from __future__ import annotations

import re

import pytest
from apptest import open_app, problems
from test_app_runs import saved_runs

from app.keyfigures import key_figure
from app.tokenstrip import colour, token_strip_html

pytestmark = pytest.mark.usefixtures("one_thread")


def html_blocks(at) -> list[str]:
    return [e.proto.body for e in at.get("html")]


def strip_values(block: str) -> tuple[list[str], list[str]]:
    """(tokens, values) of a token strip."""
    spans = re.findall(r"data-value='([^']*)'[^>]*>([^<]*)</span>", block)
    return [t for _, t in spans], [v for v, _ in spans]


def test_token_strip_colours_by_value_and_shows_whitespace():
    block = token_strip_html([" a", "\n", "b"], [0.0, 0.5, 1.0], "p", low=0.0, high=1.0, notes=["x", "y", "z"])
    tokens, values = strip_values(block)
    assert tokens == ["␣a", "⏎", "b"] and values == ["0", "0.5", "1"]
    colours = re.findall(r"background:(rgb\([^)]*\))", block)
    assert colours == [colour(v, 0, 1, False) for v in (0.0, 0.5, 1.0)]
    assert colours[0] == "rgb(255,255,255)" and colours[2] == "rgb(33,102,172)"
    assert colour(-1.0, -1, 1, True) == "rgb(178,24,43)" and colour(float("nan"), 0, 1, False) == "rgb(255,255,255)"
    assert "title='1: ⏎ · p 0.5 · y'" in block
    with pytest.raises(ValueError, match="2 tokens but 1 values"):
        token_strip_html(["a", "b"], [1.0], "p")


def test_voids_page_colours_each_token_by_its_layers_used(monkeypatch):
    from interp.runs.results import load_run

    r = load_run(saved_runs() / "voids-1")
    at = open_app(monkeypatch, saved_runs(), run="voids-1")
    assert not problems(at)
    (block,) = [b for b in html_blocks(at) if "layers used" in b and "token-strip" in b]
    tokens, values = strip_values(block)
    n = len(r.prompt_tokens[0])
    assert len(tokens) == n
    assert [int(v) for v in values] == r.prompt_active[0, :n].sum(-1).tolist()


def test_lens_page_colours_every_position_by_the_target_probability(monkeypatch):
    from interp.runs.results import load_run

    r = load_run(saved_runs() / "lens-1")
    at = open_app(monkeypatch, saved_runs(), run="lens-1")
    at.selectbox(key="lens-1:layer").set_value(1).run()
    assert not problems(at)
    (block,) = [b for b in html_blocks(at) if "token-strip" in b]
    rows = [i for i, p in enumerate(r.row_prompt) if p == 0]
    tokens, values = strip_values(block)
    assert len(tokens) == len(rows)
    assert [float(v) for v in values] == pytest.approx([float(r.target_prob[i, 1]) for i in rows], abs=0.006)


def test_run_list_says_what_each_run_found(monkeypatch):
    at = open_app(monkeypatch, saved_runs())
    (listing,) = [d.value for d in at.dataframe if "finding" in d.value.columns]
    found = dict(zip(listing["run"], listing["finding"]))
    assert re.match(r"'a' - 'b' = -?[\d.e+-]+ \(attention", found["dla-1"])
    assert found["sinks-1"].startswith("sink rate ") and "% of heads above eps" in found["sinks-1"]
    assert "of layers used (alpha" in found["voids-1"]
    assert found["probe-1"] == ""  # no numbers in its summary: nothing made up
    assert "vector at site" in found["v.safetensors"]
    assert any("**" in c.value and "sink rate" in c.value for c in at.caption)  # under the Open buttons too


def test_key_figure_falls_back_to_labelled_numbers_and_never_raises():
    assert key_figure("dla", {"direction": "x"}) == ""  # a summary of another version: no numbers to show
    assert key_figure("unknown", {"n_questions": 8, "accuracy": 0.5, "note": "x"}) == "Questions 8, Accuracy 0.5"
    assert key_figure("sinks", None) == "" and key_figure(None, {}) == ""
    assert key_figure("voids_eval", {"n_questions": 8, "skip": "paper", "accuracy": {"0.8": {
        "no_skip": 0.375, "skip": 0.25}}}) == "paper skipping, alpha 0.8: 3/8 -> 2/8 correct"


def test_dla_at_every_position_colours_each_token_and_ends_at_the_saved_value(monkeypatch):
    import threading

    import torch
    from tiny import tiny_model

    import app.playground
    from interp.runs.results import load_run

    torch.set_num_threads(1)
    model = tiny_model("llama")
    monkeypatch.setattr(app.playground, "load_model", lambda spec: (model, threading.Lock()))
    r = load_run(saved_runs() / "dla-1")
    at = open_app(monkeypatch, saved_runs(), run="dla-1")
    at.selectbox(key="dla-1:prompt").set_value(1).run()
    at.button(key="dla-1:positions:go").click().run()
    assert not problems(at)
    (block,) = [b for b in html_blocks(at) if "token-strip" in b and "logit difference" in b]
    tokens, values = strip_values(block)
    assert len(tokens) == int(model.tokenize([r.prompts[1]]).attention_mask.sum())
    assert float(values[-1]) == pytest.approx(float(r.attributed[1, -1]), rel=1e-2)  # the run's own last position
    assert "attention" in block and "MLP" in block
