"""`ScreenConfig`: how the head screen runs (field docs are the command-line help)."""

from __future__ import annotations

from dataclasses import dataclass

from ...runs.config import fit_option, option

METHODS = ("atp+exact", "exact", "atp", "ig+exact", "ig")
ALIGNS = ("left", "right", "paper")
FAST = {"atp": "atp", "atp+exact": "atp", "ig": "ig", "ig+exact": "ig"}  # the estimate each method computes
MIN_PAIRS = 2


@dataclass
class ScreenConfig:
    method: str = option("atp+exact", "atp+exact: AtP ranks every head, the top --verify plus --verify-random "
                         "others are re-measured exactly; ig+exact: the same with integrated gradients (--ig-steps "
                         "points per path) as the estimate; exact: every head exactly; atp, ig: the estimate only",
                         choices=METHODS)
    verify: int = option(24, "heads re-measured exactly after the estimate (atp+exact, ig+exact): the top by the "
                         "larger of |necessity| and |sufficiency| estimate, plus every head whose two estimates "
                         "differ 10x or more in magnitude")
    verify_random: int = option(8, "extra random heads re-measured exactly, to estimate what the estimate missed "
                                "(atp+exact, ig+exact)")
    ig_steps: int = option(5, "points on the base-to-donor path whose gradients IG averages (ig, ig+exact; 1 is AtP)")
    layers: tuple[int, int] | None = option(None, "[start, stop) layers screened, e.g. 4,12; default all")
    heads: list[tuple[int, int]] | None = option(None, "restrict to these (layer, head); default all in --layers")
    align: str = option("right", "position alignment of donor and base z_h: right (from the last prompt token), "
                        "left (from the first token, prompt positions only) or paper (the authors' code: from the "
                        "first token, over the base's continuation too; docs/fidelity/routing.md)", choices=ALIGNS)
    permutations: int = option(10_000, "sign-flip permutations over pairs for the p-values")
    bootstrap: int = option(2_000, "bootstrap resamples over pairs for the top-k Jaccard stability")
    top_k: int = option(20, "size of the head set whose stability and AtP misses are reported")
    seed: int = option(0, "seed of the permutations, the bootstrap and the random verification sample")
    batch_size: int | str = option("auto", "rows per forward pass, or auto (one layer's heads of one pair on CPU, "
                                   "64 on accelerators, halved on out-of-memory)")

    def validate(self) -> None:
        """Checks that need no model (run before loading one). ValueError with the fix."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.align not in ALIGNS:
            raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {self.align!r}")
        if self.ig_steps < 1:
            raise ValueError(f"--ig-steps must be >= 1 (1 is AtP), got {self.ig_steps}")
        for name in ("verify", "verify_random"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.method.endswith("+exact") and self.verify < 1:
            raise ValueError(f"--verify must be >= 1 with --method {self.method} (or use --method "
                             f"{FAST[self.method]})")
        for name in ("permutations", "bootstrap", "top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.layers is not None:
            if len(self.layers) != 2 or self.layers[0] >= self.layers[1] or self.layers[0] < 0:
                raise ValueError(f"layers must be [start, stop) with 0 <= start < stop, got {self.layers}")
        if self.batch_size != "auto":
            try:
                ok = int(self.batch_size) >= 1
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"batch size must be 'auto' or an int >= 1, got {self.batch_size!r}")

    def screened_heads(self, model) -> list[tuple[int, int]]:
        """The (layer, head) list in layer-major order; ValueError if out of the model's range."""
        n_layers, n_heads = model.n_layers, model.n_heads
        start, stop = self.layers if self.layers is not None else (0, n_layers)
        if not 0 <= start < stop <= n_layers:
            raise ValueError(f"layers {start}:{stop} out of range: model has layers 0..{n_layers - 1} "
                             f"(stop may be at most {n_layers})")
        if self.heads is None:
            return [(layer, head) for layer in range(start, stop) for head in range(n_heads)]
        heads = sorted({(int(layer), int(head)) for layer, head in self.heads})
        bad = [h for h in heads if not (start <= h[0] < stop and 0 <= h[1] < n_heads)]
        if bad:
            raise ValueError(f"heads {bad} out of range: layers {start}..{stop - 1}, heads 0..{n_heads - 1}")
        if not heads:
            raise ValueError("heads is empty; pass None to screen every head")
        return heads

    def check_model(self, model, n_pairs: int) -> list[tuple[int, int]]:
        """Checks that need the model and the data; returns the screened heads."""
        self.validate()
        heads = self.screened_heads(model)
        if self.method in ("atp+exact", "ig+exact"):  # a default above the heads is clamped, a given value refused
            fit_option(self, "verify", len(heads), "heads screened", doing=f"verifying all {len(heads)} heads exactly",
                       hint=", or --method exact")
            left = len(heads) - self.verify
            fit_option(self, "verify_random", left, "heads left unverified",
                       doing=None if left else "no random heads verified")
        if n_pairs < MIN_PAIRS:
            raise ValueError(f"{n_pairs} pair(s) given; the permutation test and the bootstrap need at least "
                             f"{MIN_PAIRS} (the paper uses 120)")
        return heads
