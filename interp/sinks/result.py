"""Aggregates and summary of a `SinkResult` (means over sequences, over heads, per layer).

Kept apart from `interp.sinks.measure` so the analysis file reads top to bottom; every method here
only reads the per-sequence tensors the analysis stored. `kind` is "natural" (the prompts)
or "random" (random-token sequences); `position` is 0-based over real tokens (the paper's
k = position + 1).
"""

from __future__ import annotations

import torch


class SinkResultMixin:
    """Methods of `interp.sinks.measure.SinkResult`; reads `natural`, `random`, `eps`, `secondary`."""

    def stats(self, kind: str = "natural") -> dict[str, torch.Tensor]:
        if kind not in ("natural", "random"):
            raise ValueError(f"kind must be 'natural' or 'random', got {kind!r}")
        values = getattr(self, kind)
        if values is None:
            raise ValueError("no random-token statistics in this run (random_tokens=False)")
        return values

    # ---- sink importance and rate ------------------------------------------------------
    def per_sequence_sink_rate(self, kind: str = "natural", position: int = 0) -> torch.Tensor:  # [N']
        """% of (layer, head) with alpha > eps at `position`, per sequence long enough to have it."""
        alpha = self.stats(kind)["alpha"][..., position]  # [N, L, H]
        keep = ~alpha.isnan().any(-1).any(-1)
        return 100.0 * (alpha[keep] > self.eps).float().mean((-1, -2))

    def sink_rate(self, kind: str = "natural", position: int = 0) -> float:
        """Gu et al.'s Sink_k^eps (k = position + 1) in %, averaged over sequences."""
        rates = self.per_sequence_sink_rate(kind, position)
        return rates.mean().item() if rates.numel() else float("nan")

    def mean_alpha(self, kind: str = "natural") -> torch.Tensor:  # [L, H, T]
        return self.stats(kind)["alpha"].nanmean(0)

    def sink_rate_of_mean(self, kind: str = "natural", position: int = 0) -> float:
        """% of (layer, head) whose alpha averaged over sequences exceeds eps."""
        return 100.0 * (self.mean_alpha(kind)[..., position] > self.eps).float().mean().item()

    def head_sink_fraction(self, kind: str = "natural", position: int = 0) -> torch.Tensor:  # [L, H]
        """Fraction of sequences in which each head's alpha at `position` exceeds eps."""
        alpha = self.stats(kind)["alpha"][..., position]
        return (alpha > self.eps).float().mean(0)

    def sink_heads(self, kind: str = "natural", min_fraction: float = 0.5) -> list[str]:
        """Heads that sink on the first token in at least `min_fraction` of sequences."""
        frac = self.head_sink_fraction(kind)
        return [f"L{l}H{h}" for l, h in (frac >= min_fraction).nonzero().tolist()]

    def sink_layers(self, kind: str = "natural", min_fraction: float = 0.5) -> list[int]:
        return sorted({int(name[1:].split("H")[0]) for name in self.sink_heads(kind, min_fraction)})

    # ---- first-token share ------------------------------------------------------------
    def first_token_share(self, kind: str = "natural", last: bool = False) -> torch.Tensor:  # [L, H]
        """Share of attention on token 0, mean over sequences (queries t >= 1, or the last query)."""
        return self.stats(kind)["share_last" if last else "share_mean"].mean(0)

    def first_token_share_by_layer(self, kind: str = "natural", last: bool = False) -> list[float]:
        """Mean over heads of `first_token_share`, per layer."""
        return self.first_token_share(kind, last).mean(-1).tolist()

    def first_token_share_std_by_layer(self, kind: str = "natural", last: bool = False) -> list[float]:
        """Standard deviation over heads of `first_token_share`, per layer."""
        return self.first_token_share(kind, last).std(-1, unbiased=False).tolist()

    # ---- value drain and residual peak ---------------------------------------------------
    def value_drain(self, kind: str = "natural") -> tuple[torch.Tensor, torch.Tensor] | None:  # 2 x [L, H]
        """(||v_0 W_O^h||, mean over j >= 1 of ||v_j W_O^h||), mean over sequences; None if absent."""
        stats = self.stats(kind)
        if "drain_sink" not in stats:
            return None
        return stats["drain_sink"].mean(0), stats["drain_rest"].nanmean(0)

    def value_drain_ratio_by_layer(self, kind: str = "natural") -> list[float] | None:
        """Per layer: mean over heads of the sink token's value-output norm / the others'."""
        drain = self.value_drain(kind)
        if drain is None:
            return None
        sink, rest = drain
        return (sink.mean(-1) / rest.mean(-1).clamp_min(1e-12)).tolist()

    def resid_norm_by_layer(self, kind: str = "natural") -> tuple[list[float], list[float]]:
        """(||resid_0|| per layer, mean over tokens j >= 1 of ||resid_j|| per layer), mean over sequences."""
        norms = self.stats(kind)["resid_norm"]  # [N, L, T]
        return norms[:, :, 0].mean(0).tolist(), norms[:, :, 1:].nanmean((0, 2)).tolist()

    def resid_peak_ratio_by_layer(self, kind: str = "natural") -> list[float]:
        first, rest = self.resid_norm_by_layer(kind)
        return [a / max(b, 1e-12) for a, b in zip(first, rest)]

    # ---- summary ------------------------------------------------------------------------
    def summary(self) -> dict:
        nat = "natural"
        share = self.first_token_share_by_layer(nat)
        out = {
            "sink_rate": self.sink_rate(nat),
            "sink_rate_of_mean": self.sink_rate_of_mean(nat),
            "sink_rate_convention": "percent of (layer, head) with alpha > eps at position 0 (paper's k = 1), "
                                    "mean over sequences",
            "eps": self.eps, "tokens": self.tokens, "bos_policy": self.bos_policy, "bos_added": self.bos_added,
            "n_sequences": int(self.natural["lengths"].numel()),
            "first_token_share_by_layer": share,
            "first_token_share_std_by_layer": self.first_token_share_std_by_layer(nat),
            "first_token_share_last_query_by_layer": self.first_token_share_by_layer(nat, last=True),
            "sink_heads": self.sink_heads(nat),
            "sink_layers": self.sink_layers(nat),
            "value_drain_ratio_by_layer": self.value_drain_ratio_by_layer(nat),
            "resid_peak_ratio_by_layer": self.resid_peak_ratio_by_layer(nat),
            "n_secondary_sinks": int((self.secondary["input"] == nat).sum()) if len(self.secondary) else 0,
        }
        if self.random is not None:
            out["sink_rate_random"] = self.sink_rate("random")
            out["first_token_share_random_by_layer"] = self.first_token_share_by_layer("random")
        if len(self.secondary):
            top = self.secondary[self.secondary["input"] == nat].sort_values("max_alpha", ascending=False).head(5)
            out["top_secondary_sinks"] = [
                {"prompt": int(r.prompt), "position": int(r.position), "token": r.token,
                 "n_heads_above_eps": int(r.n_heads_above_eps), "max_alpha": float(r.max_alpha)}
                for r in top.itertuples()]
        if self.notes:
            out["notes"] = list(self.notes)
        return out
