"""`RoutingConfig`: every option of the routing pipeline; field docs become `steerlens routing` help.

Checks that need no model run in `validate` (before loading); checks that need the model's
shape or tokenizer run in `check_model` (after loading, before any forward pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..metrics.refusal import MODES
from ..runs.config import fit_option, option

STEPS = ("screen", "ablate", "interchange", "knockout", "modulate", "cipher")
# What each step reads from earlier ones; run_routing adds missing prerequisites.
NEEDS = {"screen": (), "ablate": ("screen",), "interchange": (), "knockout": ("screen", "interchange"),
         "modulate": (), "cipher": ("screen", "interchange")}
MIN_PAIRS = 8  # the sign-flip null over n pairs cannot reach p < 0.01 below 2**-7


@dataclass
class RoutingConfig:
    n: int = option(120, f"use the first N pairs of the pairs file (at least {MIN_PAIRS})")
    layers: str | None = option(None, "layers A:B ([A, B)) for the interchange screen and the DLA band "
                                      "(default: all layers to screen; 0.25L..0.65L for the DLA band)")
    top_k: int = option(20, "candidate heads from the DLA screen and the top-k of the interchange screen")
    method: str = option("atp+exact", "interchange screen: AtP ranks all heads and the top --verify are "
                                      "re-measured exactly; 'ig+exact' the same with integrated gradients as the "
                                      "estimate (finds gates behind saturated units; --ig-steps times AtP's cost); "
                                      "'exact' measures all; 'atp', 'ig' only estimate (docs/routing.md)",
                         choices=("atp+exact", "ig+exact", "exact", "atp", "ig"))
    verify: int = option(24, "heads re-measured exactly after the estimate (atp+exact, ig+exact): the top by the "
                             "larger of |necessity| and |sufficiency| estimate; heads whose two estimates differ 10x "
                             "or more are measured too")
    verify_random: int = option(8, "further heads, drawn at random from the rest, re-measured exactly to estimate "
                                    "what the estimate's ranking missed (atp+exact, ig+exact; 0 to skip)")
    ig_steps: int = option(5, "points on each base-to-donor path whose gradients integrated gradients averages "
                              "(ig, ig+exact; 1 is AtP)")
    permutations: int = option(10_000, "sign-flip permutations over pairs for p-values")
    bootstrap: int = option(2_000, "bootstrap resamples over pairs for the top-k stability")
    align: str = option("right", "donor/base position alignment: 'right' pairs last tokens, 'left' first tokens "
                                 "(prompt positions only), 'paper' the authors' literal patch (first tokens, over "
                                 "the base's continuation too; docs/fidelity/routing.md)",
                         choices=("left", "right", "paper"))
    generation_config: str = option("neutral", "generation config of the greedy continuations: 'neutral' (ours: "
                                               "greedy, nothing inherited) or 'model' (the checkpoint's "
                                               "generation_config, e.g. its repetition_penalty, at temperature 0, "
                                               "as the authors' code)", choices=("neutral", "model"))
    steps: list[str] = option(default_factory=lambda: list(STEPS),
                              help="steps to run, comma-separated: " + ",".join(STEPS)
                                   + " (prerequisites are added)")
    probe_layer: int | None = option(None, "layer of the probe direction (default: the middle layer)")
    amplifiers: int = option(5, "deeper heads with the largest refusal DLA tested as amplifiers")
    null_heads: int = option(8, "random non-gate heads of similar depth knocked out for the null band")
    alpha_max: float = option(50.0, "largest modulation strength (residual units)")
    alpha_step: float = option(5.0, "modulation strength step")
    modulate_n: int = option(16, "pairs the steered dose-response generations use, spread evenly over the "
                                   "pairs (the unsteered refusal rates use every pair)")
    gen_tokens: int = option(32, "tokens generated per prompt (refusal, modulation, rescue)")
    cipher_n: int | None = option(None, "pairs used for the cipher steps (default: all pairs)")
    classifier: str = option("rules", "refusal classifier mode for dose-response and rescue", choices=MODES)

    def validate(self) -> None:
        """Checks that need no model; ValueError with a one-line fix."""
        if self.n < MIN_PAIRS:
            raise ValueError(f"--n {self.n}: the permutation statistics need at least {MIN_PAIRS} pairs "
                             f"(smallest reachable p is 2^-(n-1)); pass --n {MIN_PAIRS} or more")
        bad = [s for s in self.steps if s not in STEPS]
        if bad or not self.steps:
            raise ValueError(f"--steps {','.join(self.steps)}: unknown step(s) {bad}; choose from {','.join(STEPS)}")
        for name in ("top_k", "amplifiers", "modulate_n", "gen_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.verify < 0 or self.verify_random < 0 or self.null_heads < 0:
            raise ValueError("--verify, --verify-random and --null-heads must be >= 0")
        if self.method.endswith("+exact") and self.verify < 1:
            raise ValueError(f"--verify must be >= 1 with --method {self.method} (or use --method "
                             f"{self.method.split('+')[0]})")
        if self.ig_steps < 1:
            raise ValueError(f"--ig-steps must be at least 1 (1 is AtP), got {self.ig_steps}")
        if self.bootstrap < 1:
            raise ValueError(f"--bootstrap must be >= 1, got {self.bootstrap}")
        if self.cipher_n is not None and self.cipher_n > self.n:
            raise ValueError(f"--cipher-n {self.cipher_n} is more than --n {self.n}: the cipher steps use the first "
                             f"--cipher-n of the --n pairs; pass --cipher-n {self.n} or fewer")
        if self.permutations < 100:
            raise ValueError(f"--permutations {self.permutations}: use at least 100 for a usable p-value")
        if self.alpha_step <= 0 or self.alpha_max < 0:
            raise ValueError("--alpha-step must be > 0 and --alpha-max >= 0")
        if self.cipher_n is not None and self.cipher_n < MIN_PAIRS:
            raise ValueError(f"--cipher-n must be at least {MIN_PAIRS}, got {self.cipher_n}")
        self.layer_range(None)

    def layer_range(self, n_layers: int | None) -> tuple[int, int] | None:
        """--layers as [start, stop), range-checked when `n_layers` is known; None if not given."""
        if self.layers is None:
            return None
        parts = str(self.layers).split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--layers {self.layers!r} is not A:B (two non-negative ints, e.g. 4:16)")
        start, stop = int(parts[0]), int(parts[1])
        if start >= stop:
            raise ValueError(f"--layers {self.layers}: start must be below stop")
        if n_layers is not None and stop > n_layers:
            raise ValueError(f"--layers {self.layers} out of range: the model has layers 0..{n_layers - 1} "
                             f"(use stop <= {n_layers})")
        return start, stop

    def band(self, n_layers: int) -> tuple[int, int]:
        """DLA candidate band [start, stop): --layers, else 0.25L..0.65L (at least one layer)."""
        given = self.layer_range(n_layers)
        if given is not None:
            return given
        start = int(0.25 * n_layers)
        return start, max(start + 1, math.ceil(0.65 * n_layers))

    def alphas(self) -> list[float]:
        """0, step, 2*step, ... <= alpha_max."""
        count = int(math.floor(self.alpha_max / self.alpha_step + 1e-9))
        return [round(i * self.alpha_step, 6) for i in range(count + 1)]

    def check_model(self, model, n_pairs: int, chat: bool) -> None:
        """Checks that need the model and the pairs; run after loading, before any forward pass."""
        if n_pairs < MIN_PAIRS:
            raise ValueError(f"{n_pairs} pairs: the permutation statistics need at least {MIN_PAIRS}; "
                             "add pairs to the pairs file")
        if chat and not getattr(model.tokenizer, "chat_template", None):
            raise ValueError("this model's tokenizer has no chat template; pass --no-chat to run on the raw "
                             "request texts")
        self.fit_model(model)
        if self.probe_layer is not None and not 0 <= self.probe_layer < model.n_layers:
            raise ValueError(f"--probe-layer {self.probe_layer} out of range: the model has layers "
                             f"0..{model.n_layers - 1}")

    def fit_model(self, model) -> None:
        """The given-versus-default rule (`interp.runs.config.fit_option`) for the options whose
        default may exceed what the model has: --verify and --verify-random (heads screened),
        --top-k (heads of the DLA band and heads screened), --amplifiers (heads below the last
        layer), --null-heads (heads of three adjacent layers but the gate). A default is clamped
        and the run says so on stderr; a value the user gave is refused (ValueError)."""
        steps = self.ordered_steps()
        start, stop = self.layer_range(model.n_layers) or (0, model.n_layers)
        heads = (stop - start) * model.n_heads
        screened = f"heads screened ({stop - start} layers x {model.n_heads})"
        if self.method in ("atp+exact", "ig+exact") and "interchange" in steps:
            fit_option(self, "verify", heads, screened, doing=f"verifying all {heads} heads exactly",
                       hint=", or --method exact")
            left = heads - self.verify
            fit_option(self, "verify_random", left, "heads left unverified",
                       doing=None if left else "no random heads verified")
        if "screen" in steps:
            band = self.band(model.n_layers)
            fit_option(self, "top_k", (band[1] - band[0]) * model.n_heads,
                       f"heads in the DLA band (layers {band[0]}..{band[1] - 1} x {model.n_heads})")
        if "interchange" in steps:
            fit_option(self, "top_k", heads, screened)
        if "knockout" in steps:
            fit_option(self, "amplifiers", (model.n_layers - 1) * model.n_heads,
                       f"heads after the first layer ({model.n_layers - 1} layers x {model.n_heads})")
            fit_option(self, "null_heads", min(3, model.n_layers) * model.n_heads - 1,
                       "heads of the gate's layer and its neighbours, the gate excluded")

    def probe(self, model) -> int:
        return model.n_layers // 2 if self.probe_layer is None else self.probe_layer

    def ordered_steps(self) -> list[str]:
        """Requested steps plus their prerequisites, in pipeline order."""
        wanted = set(self.steps)
        for step in self.steps:
            wanted |= set(NEEDS[step])
        return [s for s in STEPS if s in wanted]
