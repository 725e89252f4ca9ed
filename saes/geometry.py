"""Geometry of decoder columns: a 2-D map and silhouette scores of behaviour groups.

RISE (arXiv 2512.23988, section 4.2) maps decoder columns with UMAP (cosine metric) and
finds behaviour-specific columns clustered apart. Here the map uses UMAP with the cosine
metric when `umap-learn` is installed, otherwise scikit-learn's t-SNE with the cosine
metric; the method used is returned with the map. The silhouette score (cosine) of the
columns grouped by the behaviour they are associated with measures the separation without
any 2-D projection; columns associated with no step are left out.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch


def decoder_map(decoder: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, str]:
    """(coordinates [d_sae, 2], method: "umap-cosine" or "tsne-cosine") of the columns."""
    x = decoder.detach().double().cpu().numpy()
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    if importlib.util.find_spec("umap") is not None:
        import umap

        coords = umap.UMAP(n_components=2, metric="cosine", random_state=seed,
                           n_neighbors=min(15, len(x) - 1)).fit_transform(x)
        return torch.tensor(np.asarray(coords), dtype=torch.float32), "umap-cosine"
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    coords = TSNE(n_components=2, metric="cosine", init="random", random_state=seed, perplexity=perplexity).fit_transform(x)
    return torch.tensor(coords, dtype=torch.float32), "tsne-cosine"


def behaviour_silhouette(decoder: torch.Tensor, groups: list[str]) -> float | None:
    """Cosine silhouette of decoder columns grouped by behaviour (None with < 2 groups or
    too few columns)."""
    from sklearn.metrics import silhouette_score

    keep = [i for i, g in enumerate(groups) if g != "none"]
    labels = [groups[i] for i in keep]
    if len(set(labels)) < 2 or len(keep) <= len(set(labels)):
        return None
    x = decoder[keep].detach().double().cpu().numpy()
    return float(silhouette_score(x, labels, metric="cosine"))
