"""The explorer pages of skill runs (app/pages_skills.py) render, and their pickers redraw."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_model

pytest.importorskip("streamlit")
from apptest import open_app, problems
from streamlit.testing.v1 import AppTest



@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from steering.skills import SkillFitConfig, SkillSteerConfig, corpus_from_records, fit_skills, run_skill_steer
    from steering.tasks import get_task

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("skill-runs")
    model = tiny_model("llama")
    records = [{"id": f"t{i}", "text": ("apple song " * (1 + i % 3)) if i % 2 else f"{i} plus {i}",
                "category": "prose" if i % 2 else "math"} for i in range(12)]
    basis = fit_skills(model, corpus_from_records(records), SkillFitConfig(k=3), progress=False)
    basis.save(folder / "skills-1")
    config = SkillSteerConfig(alphas=[2.0], top=1, n_val=2, n_test=2, samples=2, pass_k=1, ppl_texts=1,
                              ppl_max_tokens=16)
    run_skill_steer(model, basis, get_task("arithmetic"), config, progress=False).save(folder / "skills-steer-1")
    return folder




def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_basis_page_shows_variance_examples_and_projection(monkeypatch, root):
    at = open_app(monkeypatch, root, "skills-1")
    assert not problems(at)
    ids = list(charts(at))
    assert any("skills-1:variance" in i for i in ids) and any("skills-1:projection" in i for i in ids)
    at.selectbox(key="skills-1:y").set_value(2).run()
    assert not problems(at)
    (spec,) = [s for i, s in charts(at).items() if "skills-1:projection" in i]
    assert "and 2 (" in spec["layout"]["title"]["text"]
    at.selectbox(key="skills-1:direction").set_value(1).run()
    assert not problems(at)


def test_steer_page_shows_effect_and_damage(monkeypatch, root):
    at = open_app(monkeypatch, root, "skills-steer-1")
    assert not problems(at)
    assert any("skills-steer-1:effect" in i for i in charts(at))
    at.radio(key="skills-steer-1:metric").set_value("pass_at_k").run()
    assert not problems(at)
