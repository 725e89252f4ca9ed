"""Naming a direction: its extreme examples, contrasting keywords, and an optional namer.

For direction k the examples are ranked by the cosine between the component and each
text's uncentred pooled activation (as in the paper): the "+" pole is the top
`n_examples`, the "-" pole the bottom `n_examples`. Keywords need no model: scikit-learn's
`TfidfVectorizer` is fitted on the whole corpus, and a pole's keywords are the terms whose
mean TF-IDF weight is highest in that pole's group relative to the opposite group (the
groups are the top and bottom `max(n_examples, 10%)` texts by cosine, so keywords rest on
more than a handful of texts). The paper asks an LLM to name the contrast; a `Namer` is
that hook: any callable `(direction, positive_texts, negative_texts, keywords) -> str`,
for instance one that prompts an LLM judge you trust.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

Namer = Callable[[int, list[str], list[str], dict[str, list[str]]], str]
KEYWORD_SHARE = 0.10


def extreme_examples(cosines: np.ndarray, n: int) -> tuple[list[int], list[int]]:
    """(indices of the n highest cosines, best first; of the n lowest, lowest first)."""
    order = np.argsort(-cosines, kind="stable")
    n = min(n, len(order))
    return order[:n].tolist(), order[::-1][:n].tolist()


def keyword_model(texts: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
    """(dense TF-IDF matrix [N, terms] or None if no term survives, term names)."""
    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b[^\W\d_]\w+\b", sublinear_tf=True,
                                 max_features=20000, stop_words="english")
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # empty vocabulary: no text has a word of two letters
        return None, np.array([], dtype=object)
    return matrix, vectorizer.get_feature_names_out()


def contrast_keywords(matrix, terms: np.ndarray, positive: Sequence[int], negative: Sequence[int],
                      n: int) -> tuple[list[str], list[str]]:
    """(terms of the + group, terms of the - group) by difference of mean TF-IDF weight."""
    if matrix is None or not len(terms):
        return [], []
    diff = np.asarray(matrix[list(positive)].mean(0)).ravel() - np.asarray(matrix[list(negative)].mean(0)).ravel()
    up = [terms[i] for i in np.argsort(-diff, kind="stable")[:n] if diff[i] > 0]
    down = [terms[i] for i in np.argsort(diff, kind="stable")[:n] if diff[i] < 0]
    return up, down


def describe_directions(cosines: np.ndarray, texts: Sequence[str], ids: Sequence[str], n_examples: int = 10,
                        n_keywords: int = 10, namer: Namer | None = None) -> list[dict]:
    """One record per direction: top/bottom example ids (and indices), keywords per pole,
    and a name per pole when a namer is given."""
    matrix, terms = keyword_model(texts)
    group = max(n_examples, int(np.ceil(KEYWORD_SHARE * len(texts))))
    group = min(group, len(texts) // 2) or 1
    out = []
    for k in range(cosines.shape[1]):
        top, bottom = extreme_examples(cosines[:, k], n_examples)
        pos_group, neg_group = extreme_examples(cosines[:, k], group)
        plus, minus = contrast_keywords(matrix, terms, pos_group, neg_group, n_keywords)
        record = {"direction": k, "top_ids": [ids[i] for i in top], "bottom_ids": [ids[i] for i in bottom],
                  "top_index": top, "bottom_index": bottom, "keywords_pos": plus, "keywords_neg": minus,
                  "name": None}
        out.append(record)
    if namer is not None:
        apply_namer(out, texts, namer)
    return out


def apply_namer(directions: list[dict], texts: Sequence[str], namer: Namer) -> list[dict]:
    """Fill each direction's "name" with `namer(k, top texts, bottom texts, keywords)`."""
    for record in directions:
        keywords = {"+": record["keywords_pos"], "-": record["keywords_neg"]}
        name = namer(record["direction"], [texts[i] for i in record["top_index"]],
                     [texts[i] for i in record["bottom_index"]], keywords)
        record["name"] = None if name is None else str(name)
    return directions


def keyword_namer(direction: int, positive: list[str], negative: list[str], keywords: dict) -> str:
    """The default offline namer: '<top + keywords> vs <top - keywords>'."""
    plus = ", ".join(keywords["+"][:3]) or "?"
    minus = ", ".join(keywords["-"][:3]) or "?"
    return f"{plus} vs {minus}"


def load_namer(spec: str) -> Namer:
    """'package.module:function' -> the callable (for `steerlens skills show --namer`)."""
    import importlib

    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--namer must look like package.module:function, got '{spec}'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load namer '{spec}': {err}") from None
    if not callable(fn):
        raise ValueError(f"namer '{spec}' is not callable")
    return fn
