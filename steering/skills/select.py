"""Data selection along a skill direction: rank a pool by its projection, keep the top fraction.

The projection is the PCA score (x - mean) . v_k of each text's pooled activation, pooled
exactly as the basis was (same layers, truncation and template; the model must be the
one the basis was made on). Pole "+" keeps the highest scores, "-" the lowest. Without a
pool the fitted corpus itself is ranked (its scores are in the run, no model needed).
The report says what the selection looks like: how many texts, their length against the
pool's (characters, and tokens when pooled here), its score range, the metadata mix, and
the keywords that set it apart from the rest of the pool (TF-IDF difference, as in naming).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .basis import project
from .corpus import SkillCorpus
from .naming import contrast_keywords, keyword_model
from .pooling import iter_pooled, pool_to_store, store_column
from .result import SkillBasisResult

POLES = ("+", "-")


@dataclass
class Selection:
    """The chosen rows of a pool (best first) and a report of what they look like."""

    index: list[int]  # rows of the pool, most extreme first
    scores: np.ndarray  # [pool size] projection of every pool text
    records: list[dict]  # the chosen original records, in rank order
    report: dict = field(default_factory=dict)


def check_selection(basis: SkillBasisResult, direction: int, pole: str, fraction: float) -> None:
    basis._check(direction)
    if pole not in POLES:
        raise ValueError(f"pole must be '+' or '-', got '{pole}'")
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")


def pool_scores(model, basis: SkillBasisResult, pool: SkillCorpus, *, store: str | Path | None = None,
                resume: bool = False, batch_size=None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(scores [N, K], pooled tokens [N]) of a pool, pooled as the basis was."""
    basis.vector(0).check_model(model)
    settings = basis.pooling
    texts, formatted = pool.model_texts(model, settings["template"])
    with tempfile.TemporaryDirectory(prefix="skills-pool-") as scratch:
        path = Path(store) if store is not None else Path(scratch) / "store"
        acts = pool_to_store(model, texts, basis.layers, path, formatted=formatted,
                             max_tokens=settings["max_tokens"], batch_size=batch_size, resume=resume,
                             progress=progress)
        scores, _, _ = project(basis.basis(), lambda: iter_pooled(acts), len(texts))
        return scores, store_column(acts, "n_tokens")


def select(basis: SkillBasisResult, direction: int, pole: str = "+", fraction: float = 0.5, *, model=None,
           pool: SkillCorpus | None = None, store: str | Path | None = None, resume: bool = False,
           batch_size=None, progress: bool = True, n_keywords: int = 10) -> Selection:
    """Rank `pool` (default: the fitted corpus) on `direction` and keep the top `fraction` of `pole`."""
    check_selection(basis, direction, pole, fraction)
    if pool is None:
        scores = basis.scores[:, direction].double().numpy()
        texts = basis.corpus["text"].astype(str).tolist()
        tokens = basis.corpus["n_tokens"].to_numpy()
        records = basis.corpus.drop(columns=["n_chars", "n_tokens", "truncated_tokens", "norm"],
                                    errors="ignore").to_dict("records")
        meta = basis.corpus.drop(columns=["id", "text", "n_chars", "n_tokens", "truncated_tokens", "norm"],
                                 errors="ignore")
    else:
        if model is None:
            raise ValueError("selecting from a pool needs the model the basis was made on (model=...)")
        all_scores, tokens = pool_scores(model, basis, pool, store=store, resume=resume, batch_size=batch_size,
                                         progress=progress)
        scores = all_scores[:, direction]
        texts = pool.display_texts()
        records = pool.records
        meta = pool.frame().drop(columns=["id", "text", "n_chars"], errors="ignore")
    n_keep = max(1, math.ceil(fraction * len(scores)))
    order = np.argsort(-scores if pole == "+" else scores, kind="stable")
    index = order[:n_keep].tolist()
    report = selection_report(basis, direction, pole, fraction, scores, index, texts, tokens, meta, n_keywords)
    return Selection(index, scores, [records[i] for i in index], report)


def selection_report(basis, direction, pole, fraction, scores, index, texts, tokens, meta, n_keywords) -> dict:
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[index] = True
    chars = np.array([len(t) for t in texts])
    rest = np.flatnonzero(~chosen)
    matrix, terms = keyword_model(texts)
    plus, minus = contrast_keywords(matrix, terms, index, rest.tolist(), n_keywords) if len(rest) else ([], [])

    def lengths(values: np.ndarray) -> dict:
        return {"mean": round(float(values.mean()), 1), "median": float(np.median(values))}

    report = {"direction": direction, "pole": pole, "fraction": fraction, "n_pool": len(scores),
              "n_selected": int(chosen.sum()),
              "score_range": [round(float(scores[index].min()), 4), round(float(scores[index].max()), 4)],
              "pool_score_range": [round(float(scores.min()), 4), round(float(scores.max()), 4)],
              "chars_selected": lengths(chars[chosen]), "chars_pool": lengths(chars),
              "keywords_selected": plus, "keywords_rest": minus,
              "direction_keywords": {"+": basis.directions[direction]["keywords_pos"][:n_keywords],
                                     "-": basis.directions[direction]["keywords_neg"][:n_keywords]}}
    if tokens is not None and len(tokens) == len(scores):
        tokens = np.asarray(tokens, dtype=float)
        report["tokens_selected"], report["tokens_pool"] = lengths(tokens[chosen]), lengths(tokens)
    for column in meta.columns:
        values = meta[column].astype(str)
        if 1 < values.nunique() <= 20:
            report[f"{column}_selected"] = values[chosen].value_counts().to_dict()
            report[f"{column}_pool"] = values.value_counts().to_dict()
    return report
