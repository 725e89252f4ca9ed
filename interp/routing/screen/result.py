"""`HeadScreen`: per-head interchange necessity and sufficiency, exact and AtP, with statistics.

Saved as a steerlens run (`interp.runs.results`: manifest, fields.json, tensors.safetensors),
so `HeadScreen.load(dir)` and `load_run(dir)` read it back without unpickling anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...runs.results import Result


@dataclass
class HeadScreen(Result):
    """Interchange screen of H heads over n pairs (arXiv 2604.04385, step 3). Units: nats.

    Rows follow `heads` (layer-major). NaN rows in the exact fields are heads that were not
    measured exactly (`exact[h]` False: only AtP ran for them)."""

    analysis: ClassVar[str] = "routing-screen"
    heads: list[tuple[int, int]]
    necessity: torch.Tensor  # [H, n] NLL(harm) - NLL(harm | z_h <- z_h(benign))
    sufficiency: torch.Tensor  # [H, n] NLL(benign | z_h <- z_h(harm)) - NLL(benign)
    atp_necessity: torch.Tensor | None  # [H, n] the fast estimate: AtP, or IG for method ig/ig+exact (None: exact)
    atp_sufficiency: torch.Tensor | None
    nll_harmful: torch.Tensor  # [n] clean continuation NLL after the harmful prompt
    nll_benign: torch.Tensor  # [n]
    baseline_delta: torch.Tensor  # [n] nll_harmful - nll_benign
    necessity_pct: torch.Tensor  # [H] mean necessity as % of mean baseline_delta
    sufficiency_pct: torch.Tensor  # [H]
    p_necessity: torch.Tensor  # [H] two-sided sign-flip permutation p over pairs
    p_sufficiency: torch.Tensor  # [H]
    exact: torch.Tensor  # [H] bool
    method: str
    align: str
    rank_correlation: float | None  # Spearman AtP vs exact necessity over exactly measured heads
    missed_top_k: int | None  # exact top-k heads (by necessity) that AtP's top-k missed
    topk_jaccard: float | None  # bootstrap stability of the exact top-k set (mean Jaccard)
    timings: dict[str, float]
    top_k: int = 20
    p_family: torch.Tensor | None = None  # [H] Westfall-Young family-wise p of necessity (runs before 12-2026: None)
    fast_top: list[tuple[int, int]] | None = None  # the estimate's top --verify heads (atp+exact, ig+exact)
    ig_steps: int | None = None  # IG points per path (method ig, ig+exact), else None

    def __post_init__(self) -> None:
        self.heads = [(int(layer), int(head)) for layer, head in self.heads]  # JSON gives lists back
        if self.fast_top is not None:
            self.fast_top = [(int(layer), int(head)) for layer, head in self.fast_top]

    @property
    def estimator(self) -> str | None:
        """Name of the fast estimate in `atp_necessity`: "AtP", "IG (m=5)", or None (exact only)."""
        if self.atp_necessity is None:
            return None
        return f"IG (m={self.ig_steps})" if self.method.startswith("ig") else "AtP"

    def fast_rank_warning(self) -> str | None:
        """One line when the exact gate was outside the estimate's top --verify (it was measured
        only as a flagged or random head): the estimate ranked it wrongly there, and heads it
        ranked low were never measured, so a wider --verify is the fix. None otherwise."""
        if self.fast_top is None or not bool(self.exact.any()):
            return None
        gate = self.gate()
        if gate in self.fast_top:
            return None
        ranked = [self.heads[int(i)] for i in torch.argsort(
            torch.maximum(self.atp_necessity.mean(1).abs(), self.atp_sufficiency.mean(1).abs()), descending=True)]
        return (f"the exact gate L{gate[0]}H{gate[1]} was not in the {self.estimator} screen's top "
                f"{len(self.fast_top)} (it ranks {ranked.index(gate) + 1} of {len(self.heads)}): it was measured only "
                "as a flagged or random head, so the estimate may have missed the gate elsewhere too; rerun with a "
                "larger --verify (or --method exact)")

    def gate_p_family(self) -> float | None:
        """The gate's family-wise p (None for runs made before it was computed, or no exact scores)."""
        if self.p_family is None:
            return None
        return _num(self.p_family[self.head_index(*self.gate())])

    def gate(self) -> tuple[int, int]:
        """The head with the highest necessity_pct (exact where measured; AtP for method "atp")."""
        score = self.necessity_pct
        if not bool(self.exact.any()):
            score = self.atp_necessity.mean(1) if self.atp_necessity is not None else score
        return self.heads[int(score.nan_to_num(float("-inf")).argmax())]

    def exact_heads(self) -> set[tuple[int, int]]:
        """The heads measured exactly (`exact` True)."""
        return {h for h, e in zip(self.heads, self.exact.tolist()) if e}

    def head_index(self, layer: int, head: int) -> int:
        try:
            return self.heads.index((layer, head))
        except ValueError:
            raise ValueError(f"head {layer}.{head} was not screened") from None

    def table(self) -> list[dict]:
        """One record per head: layer, head, necessity/sufficiency (mean nats and %), p, AtP means."""
        rows = []
        for k, (layer, head) in enumerate(self.heads):
            row = {"layer": layer, "head": head, "exact": bool(self.exact[k]),
                   "necessity": _mean(self.necessity[k]), "sufficiency": _mean(self.sufficiency[k]),
                   "necessity_pct": _num(self.necessity_pct[k]), "sufficiency_pct": _num(self.sufficiency_pct[k]),
                   "p_necessity": _num(self.p_necessity[k]), "p_sufficiency": _num(self.p_sufficiency[k])}
            if self.atp_necessity is not None:
                row["atp_necessity"] = _mean(self.atp_necessity[k])
                row["atp_sufficiency"] = _mean(self.atp_sufficiency[k])
            rows.append(row)
        return rows

    def summary(self) -> dict:
        layer, head = self.gate()
        k = self.head_index(layer, head)
        return {"gate": {"layer": layer, "head": head, "necessity_pct": _num(self.necessity_pct[k]),
                         "sufficiency_pct": _num(self.sufficiency_pct[k]), "p_value": _num(self.p_necessity[k]),
                         "p_family": self.gate_p_family()},
                "pairs": int(self.nll_harmful.shape[0]), "heads": len(self.heads),
                "exact_heads": int(self.exact.sum()), "baseline_delta": float(self.baseline_delta.mean()),
                "method": self.method, "align": self.align, "rank_correlation": self.rank_correlation,
                "missed_top_k": self.missed_top_k, "topk_jaccard": self.topk_jaccard, "timings": self.timings,
                "estimator": self.estimator, "warning": self.fast_rank_warning()}


def _num(x: torch.Tensor) -> float | None:
    value = float(x)
    return None if value != value else value


def _mean(row: torch.Tensor) -> float | None:
    return _num(row.mean())
