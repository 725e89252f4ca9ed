"""The skill basis: PCA of the pooled activations (mean-centred, no whitening), K components.

scikit-learn does the decomposition: `PCA` (exact SVD) when the activations fit in memory,
`IncrementalPCA` fed chunk by chunk from the activation store otherwise, so a corpus of
tens of thousands of texts never needs all its activations at once. Components are rows of
unit length, orthonormal in the concatenated (layers x d_model) space; their sign is made
deterministic (the largest-magnitude coordinate of each component is positive) so full
and incremental fits, and reruns, name the same pole "+".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA

METHODS = ("auto", "full", "incremental")

Chunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # () -> iter of (indices [n], rows [n, D])


@dataclass
class Basis:
    components: np.ndarray  # [K, D] orthonormal rows
    mean: np.ndarray  # [D]
    variance: np.ndarray  # [K] variance of the corpus along each component
    variance_ratio: np.ndarray  # [K] fraction of the total variance
    method: str  # "full" or "incremental"

    @property
    def k(self) -> int:
        return self.components.shape[0]

    def orthonormality_error(self) -> float:
        """max |V V^T - I| over the K x K Gram matrix (0 for an exactly orthonormal basis)."""
        gram = self.components @ self.components.T  # [K, K]
        return float(np.abs(gram - np.eye(self.k)).max())

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Centred projections [n, K] (the PCA scores)."""
        return (rows - self.mean) @ self.components.T

    def cosines(self, rows: np.ndarray) -> np.ndarray:
        """Cosine [n, K] between each uncentred row and each component (unit rows)."""
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows @ self.components.T) / np.maximum(norms, 1e-12)


def choose_method(method: str, n_rows: int, incremental_above: int) -> str:
    if method not in METHODS:
        raise ValueError(f"pca must be one of {METHODS}, got '{method}'")
    if method == "auto":
        return "incremental" if n_rows > incremental_above else "full"
    return method


def check_size(n_rows: int, k: int) -> None:
    """A centred corpus of n texts spans at most n - 1 directions."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n_rows <= k:
        raise ValueError(f"the corpus has {n_rows} texts; k={k} directions need at least {k + 1} "
                         f"(a centred corpus of n texts spans at most n - 1 directions)")


def fit_basis(chunks: Chunks, n_rows: int, k: int, method: str = "full", seed: int = 0) -> Basis:
    """Fit K components on every row that `chunks()` yields (called once for "full", once
    per pass for "incremental"; each chunk must hold at least k rows but the last)."""
    check_size(n_rows, k)
    if method == "full":
        rows = np.concatenate([r for _, r in chunks()])  # [N, D]
        if rows.shape[1] < k:
            raise ValueError(f"k={k} exceeds the activation width {rows.shape[1]}")
        pca = PCA(n_components=k, svd_solver="full", whiten=False, random_state=seed).fit(rows)
    elif method == "incremental":
        pca = IncrementalPCA(n_components=k, whiten=False)
        for _, rows in chunks():
            pca.partial_fit(rows)
    else:
        raise ValueError(f"pca method must be 'full' or 'incremental', got '{method}'")
    components = pca.components_.astype(np.float64)  # [K, D]
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(1)])
    components = components * signs[:, None]
    return Basis(components, pca.mean_.astype(np.float64), pca.explained_variance_.astype(np.float64),
                 pca.explained_variance_ratio_.astype(np.float64), method)


def project(basis: Basis, chunks: Chunks, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores [N, K], cosines [N, K], norms [N]) in row order, one chunk at a time."""
    scores = np.zeros((n_rows, basis.k))
    cosines = np.zeros((n_rows, basis.k))
    norms = np.zeros(n_rows)
    for index, rows in chunks():
        scores[index] = basis.scores(rows)
        cosines[index] = basis.cosines(rows)
        norms[index] = np.linalg.norm(rows, axis=1)
    return scores, cosines, norms
