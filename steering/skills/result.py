"""`fit_skills`: pooled activations -> PCA basis -> named directions, as a saved run.

    from steering.skills import SkillFitConfig, fit_skills, read_corpus
    result = fit_skills(model, read_corpus("corpus.jsonl"), SkillFitConfig(k=10))
    result.summary()["explained_variance"]; result.directions[3]["keywords_pos"]
    result.vector(3).save("skill3.safetensors")     # steerlens generate --vector skill3.safetensors:2
    result.save("runs/skills")

See `steering.skills` for the paper and the deliberate differences.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from interp.runs.config import fit_option, option
from interp.runs.results import Result, RunMeta

from ..vectors import SteeringVector, model_facts
from .basis import METHODS, Basis, check_size, choose_method, fit_basis, project
from .corpus import TEMPLATES, SkillCorpus
from .naming import Namer, describe_directions
from .pooling import context_limit, iter_pooled, pool_to_store, resolve_layers, store_column

SCALES = ("std", "unit")


@dataclass
class SkillFitConfig:
    k: int = option(10, "number of directions (principal components) to keep")
    layers: str = option("inner", "layers whose outputs are pooled: inner (all but the first and last), all, "
                                  "or a list like 4,8-12")
    max_tokens: int = option(512, "tokens per text; longer texts are cut to their first max_tokens (never more "
                                  "than the model's context)")
    template: str = option("auto", "prompt/response records: auto (chat template when the tokenizer has one), "
                                   "chat, or plain (prompt, blank line, response)", choices=TEMPLATES)
    pca: str = option("auto", "full (exact, all activations in memory), incremental (scikit-learn "
                              "IncrementalPCA over the store's chunks) or auto", choices=METHODS)
    incremental_above: int = option(2000, "pca=auto uses incremental PCA above this many texts")
    pca_chunk: int = option(1024, "rows per IncrementalPCA partial_fit")
    n_examples: int = option(10, "top and bottom examples kept per direction")
    n_keywords: int = option(10, "contrasting keywords kept per pole")

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got '{self.template}'")
        if self.pca not in METHODS:
            raise ValueError(f"pca must be one of {METHODS}, got '{self.pca}'")
        if self.max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {self.max_tokens}")
        if self.n_examples < 1 or self.n_keywords < 0 or self.pca_chunk < 1:
            raise ValueError("n_examples and pca_chunk must be >= 1, n_keywords >= 0")


@dataclass
class SkillBasisResult(Result):
    analysis: ClassVar[str] = "skills"
    main_table = "directions"  # result.table(): one row per direction
    layers: list[int]
    d_model: int
    model_facts: dict
    pooling: dict  # layers, max_tokens, template, formatted: what a pool must reuse to be comparable
    components: torch.Tensor  # [K, len(layers) * d_model] orthonormal rows
    mean: torch.Tensor  # [len(layers) * d_model]
    variance: torch.Tensor  # [K]
    variance_ratio: torch.Tensor  # [K]
    scores: torch.Tensor  # [N, K] centred projections
    cosines: torch.Tensor  # [N, K] cosine with the uncentred pooled activation
    corpus: pd.DataFrame  # id, text, n_chars, n_tokens, truncated_tokens, norm, metadata...
    directions: list  # per direction: top/bottom ids and indices, keywords per pole, name
    orthonormality_error: float
    pca_method: str
    store: str | None = None

    # ---- facts -----------------------------------------------------------------------
    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    def basis(self) -> Basis:
        return Basis(self.components.double().numpy(), self.mean.double().numpy(), self.variance.double().numpy(),
                     self.variance_ratio.double().numpy(), self.pca_method)

    def std(self, direction: int) -> float:
        """Standard deviation of the corpus along a direction (sqrt of its variance)."""
        return float(self.variance[self._check(direction)].sqrt())

    def _check(self, direction: int) -> int:
        if not 0 <= direction < self.k:
            raise ValueError(f"direction {direction} out of range: this basis has directions 0..{self.k - 1}")
        return direction

    def examples(self, direction: int, pole: str = "+", n: int | None = None) -> pd.DataFrame:
        """The corpus rows of a pole, most extreme first, with their cosine and score."""
        record = self.directions[self._check(direction)]
        index = record["top_index"] if pole == "+" else record["bottom_index"]
        rows = self.corpus.iloc[index[:n]].copy()
        rows.insert(1, "cosine", self.cosines[index[:n], direction].tolist())
        rows.insert(2, "score", self.scores[index[:n], direction].tolist())
        return rows

    # ---- steering vectors ---------------------------------------------------------------
    def vector(self, direction: int, scale: str = "std") -> SteeringVector:
        """Direction k as a multi-layer "ffn" vector: layer l gets its slice of the component,
        added to that layer's MLP output. scale "std": times the corpus' standard deviation
        along k (alpha 1 = one standard deviation); "unit": the unit component (the paper's alpha)."""
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got '{scale}'")
        factor = self.std(direction) if scale == "std" else 1.0
        slices = self.components[self._check(direction)].view(len(self.layers), self.d_model) * factor  # [n, d]
        record = self.directions[direction]
        config = {"direction": direction, "scale": scale, "std": self.std(direction),
                  "variance_ratio": float(self.variance_ratio[direction]), "pooled_layers": self.layers,
                  "keywords_pos": record["keywords_pos"][:5], "keywords_neg": record["keywords_neg"][:5],
                  "run_model": self.meta.model.get("spec")}
        return SteeringVector(dict(zip(self.layers, slices)), site="ffn", kind="add", method="skill-pca",
                              normalization="corpus-std" if scale == "std" else "unit",
                              model=dict(self.model_facts), config=config)

    # ---- reporting ----------------------------------------------------------------------
    def summary(self) -> dict:
        return {"n_texts": len(self.corpus), "k": self.k, "layers": self.layers, "pca": self.pca_method,
                "explained_variance": [round(float(v), 6) for v in self.variance_ratio],
                "explained_variance_total": round(float(self.variance_ratio.sum()), 6),
                "orthonormality_error": float(self.orthonormality_error),
                "truncated_texts": int((self.corpus["truncated_tokens"] > 0).sum()),
                "directions": [{"direction": d["direction"], "top_ids": d["top_ids"], "bottom_ids": d["bottom_ids"],
                                "keywords_pos": d["keywords_pos"], "keywords_neg": d["keywords_neg"],
                                **({"name": d["name"]} if d.get("name") else {})} for d in self.directions]}

    def figures(self) -> dict:
        from .figures import explained_variance_figure, projection_figure

        figures = {"explained_variance": explained_variance_figure(self)}
        if self.k >= 2:
            figures["projection"] = projection_figure(self)
        return figures


def fit_corpus(config: SkillFitConfig, n_texts: int, width: int | None = None) -> None:
    """--k against what the corpus (and the activation width, when known) can give: a centred
    corpus of n texts spans at most n - 1 directions. A default k is clamped with a note, a
    given one refused (`fit_option`); ValueError for a corpus of fewer than two texts."""
    check_size(n_texts, 1)
    limit = n_texts - 1 if width is None else min(n_texts - 1, width)
    fit_option(config, "k", limit, f"directions a corpus of {n_texts} texts spans"
               + ("" if width is None else f" at activation width {width}"))


def fit_skills(model, corpus: SkillCorpus, config: SkillFitConfig | None = None, *, store: str | Path | None = None,
               resume: bool = False, batch_size: int | str | None = None, progress: bool = True, seed: int = 0,
               namer: Namer | None = None) -> SkillBasisResult:
    """Pool the corpus (streamed to `store`; a temporary one if None), fit the basis, name it."""
    config = config or SkillFitConfig()
    config.validate()
    layers = resolve_layers(model, config.layers)
    width = len(layers) * model.d_model
    fit_corpus(config, len(corpus), width)  # before any work
    method = choose_method(config.pca, len(corpus), config.incremental_above)
    texts, formatted = corpus.model_texts(model, config.template)
    limit = context_limit(model, config.max_tokens)
    meta = RunMeta(model=dict(model.info), config={**asdict(config), "pca_used": method}, seed=seed)
    with tempfile.TemporaryDirectory(prefix="skills-store-") as scratch:
        path = Path(store) if store is not None else Path(scratch) / "store"
        with meta.timed("pool"):
            acts = pool_to_store(model, texts, layers, path, formatted=formatted, max_tokens=limit,
                                 batch_size=batch_size, resume=resume, progress=progress)
        min_rows = max(config.k, config.pca_chunk) if method == "incremental" else 1

        def chunks():
            return iter_pooled(acts, min_rows)

        with meta.timed("pca"):
            basis = fit_basis(chunks, len(texts), config.k, method, seed)
            scores, cosines, norms = project(basis, chunks, len(texts))
        frame = corpus.frame()
        frame.insert(3, "n_tokens", store_column(acts, "n_tokens").astype(int))
        frame.insert(4, "truncated_tokens", store_column(acts, "truncated_tokens").astype(int))
        frame.insert(5, "norm", norms)
    with meta.timed("name"):
        directions = describe_directions(cosines, corpus.display_texts(), corpus.ids, config.n_examples,
                                         config.n_keywords, namer)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()
    return SkillBasisResult(
        layers=layers, d_model=model.d_model, model_facts=model_facts(model),
        pooling={"layers": layers, "max_tokens": limit, "template": config.template, "formatted": formatted,
                 "bos": getattr(model, "bos", "default")},
        components=as_tensor(basis.components), mean=as_tensor(basis.mean), variance=as_tensor(basis.variance),
        variance_ratio=as_tensor(basis.variance_ratio), scores=as_tensor(scores), cosines=as_tensor(cosines),
        corpus=frame, directions=directions, orthonormality_error=basis.orthonormality_error(),
        pca_method=method, store=str(store) if store is not None else None, meta=meta)
