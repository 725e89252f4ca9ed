"""Skill basis on a real offline model (slow; select with `pytest -m zoo`).

SmolLM2-135M-Instruct answers half of the shipped mixed prompt set (arithmetic, code,
prose); the first two directions of the basis of its own answers must separate the kinds
of task, which the basis never sees, and a direction must steer (and cost perplexity)
when added at a large alpha.
"""

import pytest
import torch

import interp

pytestmark = pytest.mark.zoo
SMOL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol():
    from zoo_models import require

    require(SMOL)
    torch.set_num_threads(1)  # steadier on a shared CPU
    return interp.load(SMOL, device="cpu", dtype="float32")


def test_basis_of_the_models_own_answers_separates_the_kinds_of_task(smol):
    from interp.metrics.perplexity import perplexity, sample_texts
    from steering.apply import VectorUse, steering_edits
    from steering.skills import SkillFitConfig, corpus_from_records, default_prompts, fit_skills, make_corpus

    records = make_corpus(smol, default_prompts()[::2], max_new_tokens=32, progress=False)  # 30 answers
    basis = fit_skills(smol, corpus_from_records(records), SkillFitConfig(k=5), progress=False)
    assert basis.layers == list(range(1, 29)) and basis.orthonormality_error < 1e-5
    assert float(basis.variance_ratio[0]) > 0.1
    category = basis.corpus.set_index("id")["category"]
    purity = []
    for d in basis.directions[:2]:
        for ids in (d["top_ids"][:5], d["bottom_ids"][:5]):
            purity.append(category[ids].value_counts().iloc[0] / 5)
    assert sum(purity) / len(purity) >= 0.8  # each pole of directions 0 and 1 is mostly one kind of task

    edits = steering_edits(smol, [VectorUse(basis.vector(0), alpha=1.0)])
    texts = sample_texts()[:4]
    assert perplexity(smol, texts, edits=edits, max_tokens=64).ppl > perplexity(smol, texts, max_tokens=64).ppl
