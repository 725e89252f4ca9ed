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
    atp_necessity: torch.Tensor | None  # [H, n] AtP estimate (None when method == "exact")
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

    def __post_init__(self) -> None:
        self.heads = [(int(layer), int(head)) for layer, head in self.heads]  # JSON gives lists back

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
                         "sufficiency_pct": _num(self.sufficiency_pct[k]), "p_value": _num(self.p_necessity[k])},
                "pairs": int(self.nll_harmful.shape[0]), "heads": len(self.heads),
                "exact_heads": int(self.exact.sum()), "baseline_delta": float(self.baseline_delta.mean()),
                "method": self.method, "align": self.align, "rank_correlation": self.rank_correlation,
                "missed_top_k": self.missed_top_k, "topk_jaccard": self.topk_jaccard, "timings": self.timings}


def _num(x: torch.Tensor) -> float | None:
    value = float(x)
    return None if value != value else value


def _mean(row: torch.Tensor) -> float | None:
    return _num(row.mean())
