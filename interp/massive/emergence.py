"""Emergence of massive activations over training: a curve fit per layer across checkpoints.

Method: "Hidden Dynamics of Massive Activations in Transformer
Training" (arXiv 2508.03616). For each layer, the ratio r_t = max|h| / median|h| of the
decoder layer output at training step t is fitted with

    f(t) = A exp(-lambda x) log(x) + K,    x = gamma t + t0

by trust-region least squares (scipy `least_squares`, method "trf") with lambda > 0,
gamma > 0 and t0 > 0 (so x > 0 for every step t >= 0). R^2 is reported per layer.

Fitting details (ours; the paper gives only the model and the optimiser): steps are divided
by the largest step and ratios by their largest |value| before fitting, and the parameters
are mapped back afterwards (gamma scales with the step unit, A and K with the ratio unit).
Because f is linear in (A, K) once (lambda, gamma, t0) are fixed, the start point is the best
of a grid over (lambda, gamma, t0) with (A, K) solved exactly, then all five are refined.

    fits = fit_emergence_layers(steps, ratios)      # ratios [n checkpoints, L]
    result = run_emergence([(0, "ckpt-0"), (1000, "ckpt-1000"), ...], prompts)

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/massive.md.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from scipy.optimize import least_squares

from ..runs.config import option
from ..runs.results import Result, RunMeta

PARAMS = ("A", "lam", "gamma", "t0", "K")


def emergence_curve(t, A: float, lam: float, gamma: float, t0: float, K: float):
    """f(t) = A exp(-lam x) log(x) + K with x = gamma t + t0 (numpy arrays or floats)."""
    x = gamma * np.asarray(t, dtype=float) + t0
    return A * np.exp(-lam * x) * np.log(x) + K


@dataclass
class EmergenceFit:
    A: float
    lam: float
    gamma: float
    t0: float
    K: float
    r2: float
    n_points: int
    converged: bool
    message: str = ""

    def predict(self, t) -> np.ndarray:
        return emergence_curve(t, self.A, self.lam, self.gamma, self.t0, self.K)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination; NaN (undefined) for a flat series.

    A series with no variance (up to float rounding: every value within 1e-9 of the
    largest) leaves nothing to explain, so R^2 = 1 - SS_res / SS_tot is 0/0. It is stored
    as NaN, written as null in summaries and shown as "undefined", whatever the fit's
    residual: a flat layer must not count as a perfect or as a failed fit."""
    ss_res = float(((y - pred) ** 2).sum())
    spread = float(np.abs(y - y.mean()).max())
    if spread <= 1e-9 * max(float(np.abs(y).max()), 1e-30):
        return float("nan")
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot


def _defined(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _linear_part(tau, y, lam, gamma, t0) -> tuple[float, float, float]:
    """Best (A, K) for fixed (lam, gamma, t0), and the sum of squared residuals."""
    basis = emergence_curve(tau, 1.0, lam, gamma, t0, 0.0)
    design = np.stack([basis, np.ones_like(basis)], 1)
    (a, k), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(a), float(k), float(((design @ np.array([a, k]) - y) ** 2).sum())


def fit_emergence(steps: Sequence[float], ratios: Sequence[float]) -> EmergenceFit:
    """Fit f(t) to one layer's ratios at `steps` (at least 5 checkpoints: f has 5 parameters)."""
    t = np.asarray(steps, dtype=float)
    y = np.asarray(ratios, dtype=float)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError(f"steps and ratios must be 1-D of the same length, got {t.shape} and {y.shape}")
    if len(t) < 5:
        raise ValueError(f"the emergence fit has 5 parameters; it needs at least 5 checkpoints, got {len(t)}")
    if (t < 0).any() or not np.isfinite(y).all():
        raise ValueError("steps must be >= 0 and ratios finite")
    t_scale = float(t.max()) or 1.0
    y_scale = float(np.abs(y).max()) or 1.0
    tau, z = t / t_scale, y / y_scale
    grid = itertools.product((0.01, 0.1, 0.3, 1.0, 3.0), (0.3, 1.0, 3.0, 10.0, 30.0, 100.0), (0.5, 1.0, 2.0, 5.0))
    best = min(((lam, g, t0, *_linear_part(tau, z, lam, g, t0)) for lam, g, t0 in grid), key=lambda c: c[-1])
    lam, g, t0, a, k, _ = best

    def residuals(p):
        return emergence_curve(tau, p[0], p[1], p[2], p[3], p[4]) - z

    tiny = 1e-9
    fit = least_squares(residuals, x0=[a, lam, g, t0, k], method="trf",
                        bounds=([-np.inf, tiny, tiny, tiny, -np.inf], [np.inf, np.inf, np.inf, np.inf, np.inf]),
                        x_scale="jac", max_nfev=2000, xtol=1e-10, ftol=1e-10, gtol=1e-10)
    a, lam, g, t0, k = fit.x
    result = EmergenceFit(A=float(a * y_scale), lam=float(lam), gamma=float(g / t_scale), t0=float(t0),
                          K=float(k * y_scale), r2=0.0, n_points=len(t), converged=bool(fit.success),
                          message=str(fit.message))
    result.r2 = _r2(y, result.predict(t))
    return result


def fit_emergence_layers(steps: Sequence[float], ratios) -> pd.DataFrame:
    """One fit per layer of `ratios` [n checkpoints, L]: a table (layer, A, lam, gamma, t0, K, r2, ...)."""
    values = np.asarray(ratios, dtype=float)
    rows = []
    for layer in range(values.shape[1]):
        fit = fit_emergence(steps, values[:, layer])
        rows.append({"layer": layer, **dataclasses.asdict(fit)})
    return pd.DataFrame(rows)


@dataclass
class EmergenceResult(Result):
    """Ratios max|h| / median|h| per checkpoint and layer, and the per-layer fits."""

    analysis: ClassVar[str] = "emergence"
    steps: list[float]
    checkpoints: list[str]
    ratios: torch.Tensor  # [n checkpoints, L]
    fits: pd.DataFrame

    def summary(self) -> dict:
        r2 = self.fits["r2"].to_numpy(dtype=float)
        fits = self.fits[["layer", *PARAMS, "r2"]].to_dict(orient="records")
        for row in fits:  # undefined R^2 (a flat layer) is null, so the summary compares equal after a reload
            row["r2"] = _defined(row["r2"])
        mean = float(np.nanmean(r2)) if np.isfinite(r2).any() else None
        return {"n_checkpoints": len(self.steps), "steps": self.steps, "mean_r2": mean,
                "n_undefined_r2": int((~np.isfinite(r2)).sum()), "fits": fits}

    def figures(self) -> dict:
        fig = go.Figure()
        dense = np.linspace(min(self.steps), max(self.steps), 200)
        for row in self.fits.itertuples():
            fig.add_trace(go.Scatter(x=self.steps, y=self.ratios[:, row.layer].tolist(), mode="markers",
                                     name=f"L{row.layer}", legendgroup=f"L{row.layer}"))
            curve = emergence_curve(dense, row.A, row.lam, row.gamma, row.t0, row.K)
            fig.add_trace(go.Scatter(x=dense.tolist(), y=curve.tolist(), mode="lines", legendgroup=f"L{row.layer}",
                                     name=f"L{row.layer} fit (R2 {row.r2:.3f})" if np.isfinite(row.r2)
                                     else f"L{row.layer} fit (R2 undefined: flat)"))
        fig.update_layout(title="Massive-activation ratio max|h| / median|h| over training, with fits",
                          xaxis_title="training step", yaxis_title="ratio")
        return {"emergence": fig}


def layer_ratios(model, prompts: Sequence[str], tokens: int = 64, batch_size: int = 8) -> torch.Tensor:
    """max|h_l| / median|h_l| of every decoder layer output over `prompts` (pads excluded): [L]."""
    from .activations import capture_decoder_outputs
    from ..engine.tokens import first_tokens

    batch = first_tokens(model.tokenize(list(prompts)), tokens, model.tokenizer.pad_token_id or 0)
    resid = capture_decoder_outputs(model, batch, batch_size, False)
    flat = torch.cat([r.abs() for r in resid], dim=1).flatten(1)  # [L, entries]
    return flat.amax(1) / flat.median(1).values.clamp_min(1e-30)


@dataclass
class EmergenceConfig:
    """Options of `interp.emergence` (`steerlens emergence` spells them --tokens)."""

    tokens: int = option(64, "prompts are cut to this many tokens")

    def validate(self) -> None:
        if self.tokens < 1:
            raise ValueError(f"tokens must be at least 1, got {self.tokens}")


def run_emergence(checkpoints: Sequence[tuple[float, object]], prompts: Sequence[str], *, tokens: int = 64,
                  load_kwargs: dict | None = None, progress: bool = False) -> EmergenceResult:
    """Per-layer ratios at each checkpoint `(step, model spec or loaded Model)`, then the fits."""
    from ..models.opening import load

    if len(checkpoints) < 5:
        raise ValueError(f"the emergence fit needs at least 5 checkpoints, got {len(checkpoints)}")
    meta = RunMeta(config={"tokens": tokens, "checkpoints": [[s, str(c if isinstance(c, str) else
                                                                     c.info.get("spec"))] for s, c in checkpoints]})
    steps, names, rows = [], [], []
    for step, spec in checkpoints:
        model = load(spec, **(load_kwargs or {})) if isinstance(spec, str) else spec
        with meta.timed("ratios"):
            ratios = layer_ratios(model, prompts, tokens)
        if rows and len(ratios) != len(rows[0]):
            raise ValueError(f"checkpoint {spec!r} has {len(ratios)} layers, the first had {len(rows[0])}")
        steps.append(float(step))
        names.append(spec if isinstance(spec, str) else str(model.info.get("spec")))
        rows.append(ratios)
    ratios = torch.stack(rows)  # [n checkpoints, L]
    with meta.timed("fit"):
        fits = fit_emergence_layers(steps, ratios.numpy())
    return EmergenceResult(steps=steps, checkpoints=names, ratios=ratios, fits=fits, meta=meta)
