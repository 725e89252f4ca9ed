"""`run_routing`: the steps of "How Alignment Routes" (arXiv 2604.04385) chained, timed, saved and resumable.

    result = run_routing(model, load_pairs(), RoutingConfig(n=120), out="runs/routing")

Steps (`RoutingConfig.steps`, prerequisites added): screen (1: DLA), ablate (2),
interchange (3 and 4's gate), knockout (4-5: amplifiers, cascade, null), modulate (6 and the
unsteered refusal rates), cipher (7 collapse, 8 rescue, 9 contrast). A baseline record
(greedy benign continuations, probe direction) is computed first. With `out`, the run is
saved before the first new step (with this call's options and steps, so that an interrupted
call can be resumed as it was made: `steerlens routing --resume`) and after every step, and a
later call on the same `out` with the same model, pairs,
chat setting and options reuses the steps already there (only new ones are computed); one
with other settings is refused (ValueError) rather than overwriting the finished steps.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from ..engine.batching import GENERATION_BATCH
from ..engine.provenance import provenance
from ..runs.config import field_default
from ..runs.results import RunLoadError, RunMeta
from .cipher import cipher_prompt
from .config import RoutingConfig
from .pairs import Pair
from .result import RoutingResult

RESULT_OPTIONS = ("steps",)  # options that do not change stored numbers


def _fingerprint(model, pairs: Sequence[Pair], config: RoutingConfig, chat: bool, seed: int) -> dict:
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in RESULT_OPTIONS}
    made = provenance(model, [text for p in pairs for text in (p.harmful, p.benign)], chat=chat)
    return {"model": str(model.info.get("spec") or model.info.get("name") or model.config._name_or_path),
            "pairs": [[p.harmful, p.benign] for p in pairs], "chat": chat, "seed": seed,
            "bos": model.bos, "options": options,
            **{k: made[k] for k in PROVENANCE if k in made}}


# rows' provenance beyond model, pairs, chat and --bos (`interp.engine.provenance`); a run
# saved before these were recorded counts as made with this call's values
PROVENANCE = ("model_sha256", "model_dtype", "chat_template_sha256", "token_ids_sha256")


_SCREEN = ("layers", "top_k")
_INTERCHANGE = ("layers", "top_k", "method", "verify", "verify_random", "ig_steps", "permutations", "bootstrap",
                "align", "generation_config")
# the options each stored record was computed with (prerequisites' options included)
STEP_OPTIONS = {
    "baseline": ("probe_layer", "generation_config"), "screen": _SCREEN, "ablate": (*_SCREEN, "probe_layer"),
    "interchange": _INTERCHANGE, "knockout": (*_INTERCHANGE, "amplifiers", "null_heads"),
    "modulate": ("probe_layer", "alpha_max", "alpha_step", "modulate_n", "gen_tokens", "classifier"),
    "collapse": (*_INTERCHANGE, "cipher_n"), "rescue": (*_INTERCHANGE, "cipher_n", "gen_tokens", "classifier"),
    "contrast": (*_SCREEN, "probe_layer", "cipher_n"),
}


def _resume(out, fingerprint: dict) -> RoutingResult | None:
    """The run stored in `out` when it can be extended with these settings: the same model,
    pairs, chat and seed, and the same options for every step it holds (options of steps it
    does not hold yet may change). Raises ValueError naming what differs otherwise."""
    if out is None or not Path(out).is_dir():
        return None
    try:
        old = RoutingResult.load(out)
    except RunLoadError:
        return None
    names = {"model": "the model", "pairs": "the pairs", "chat": "--chat", "seed": "--seed", "bos": "--bos"}
    recorded = {**{k: fingerprint.get(k) for k in PROVENANCE}, "bos": "default",  # runs made before
                **old.fingerprint}  # the fingerprint held --bos used the default
    changed = [k for k in fingerprint if k != "options" and recorded.get(k) != fingerprint[k]]
    if "pairs" in changed and "token_ids_sha256" in changed:  # other pairs: other token ids, said once
        changed.remove("token_ids_sha256")
    differs = [names[k] if k in ("model", "pairs") else f"{names.get(k, k)} {_shown(recorded.get(k))} (this call: "
               f"{_shown(fingerprint[k])})" for k in changed]
    # an option a run's fingerprint lacks was added (or, like --classifier, first fingerprinted) after
    # the run was made: its steps were computed as with the option's default
    options = {**{f.name: field_default(f) for f in dataclasses.fields(RoutingConfig)},
               **old.fingerprint.get("options", {})}
    used = {o for step, opts in STEP_OPTIONS.items() if old.has(step) for o in opts}
    differs += [f"--{k.replace('_', '-')} {_shown(options.get(k))} (this call: {_shown(v)})"
                for k, v in fingerprint["options"].items() if k in used and options.get(k) != v]
    if not differs:
        old.fingerprint = fingerprint  # steps added from now on use these options
        return old
    raise ValueError(f"{out} holds a routing run made with other settings for the steps it has done: "
                     f"{', '.join(differs)}; rerun with those settings to add steps to it, or pass a new --out")


def _shown(value) -> str:
    """An option's value as it is typed on the command line (None: left at its default)."""
    if value is None:
        return "unset"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def run_routing(model, pairs: Sequence[Pair], config: RoutingConfig, *, chat: bool = True, out=None, seed: int = 0,
                batch_size: int | str = "auto", progress: bool = False) -> RoutingResult:
    """Run the selected steps on `pairs` (the first `config.n`); save to `out` after each step.

    Raises ValueError (before any forward pass) for bad options, too few pairs or fewer than
    `config.n`, a model without a chat template when `chat`, layers out of range, or an `out`
    that holds a routing run made with other settings."""
    config.validate()
    pairs = list(pairs)
    if config.n > len(pairs):
        raise ValueError(f"n={config.n} is more than the {len(pairs)} pairs given; pass n={len(pairs)} or fewer")
    pairs = pairs[: config.n]
    config.check_model(model, len(pairs), chat)
    fingerprint = _fingerprint(model, pairs, config, chat, seed)
    result = _resume(out, fingerprint)
    if result is None:
        result = RoutingResult(pairs=[dataclasses.asdict(p) for p in pairs], chat=chat, fingerprint=fingerprint,
                               n_layers=model.n_layers, n_heads=model.n_heads,
                               meta=RunMeta(model=dict(model.info), config=dataclasses.asdict(config), seed=seed))
    result.meta.config = dataclasses.asdict(config)
    size = batch_size if isinstance(batch_size, int) else GENERATION_BATCH  # chunks of generation and NLL passes
    ctx = _Context(model, pairs, config, chat, seed, batch_size, size, progress, out)
    todo = [(name, fn) for name, fn in [("baseline", ctx.baseline)] + [(s, getattr(ctx, s)) for s in config.ordered_steps()]
            if not all(result.has(r) for r in _RECORDS.get(name, (name,)))]
    if out is not None and todo:
        result.save(out, overwrite=True)  # this call's options and steps first: `--resume` after an interruption continues it
    for i, (name, fn) in enumerate(todo, 1):
        _say(progress, f"routing step {i}/{len(todo)}: {name}")
        with result.meta.timed(name):
            for record_name, record in fn(result).items():
                result.put(record_name, record)
        if out is not None:
            result.save(out, overwrite=True)
        _say(progress, f"routing step {i}/{len(todo)}: {name} done in {result.meta.timings[name]:.0f} s"
                       + (f", saved to {out}" if out is not None else ""))
    return result


def _say(progress: bool, line: str) -> None:
    """One line on stderr between the steps' own progress bars (`progress` only)."""
    if progress:
        print(line, file=sys.stderr, flush=True)


_RECORDS = {"cipher": ("collapse", "rescue", "contrast")}


@dataclasses.dataclass
class _Context:
    model: object
    pairs: list
    config: RoutingConfig
    chat: bool
    seed: int
    batch_size: int | str
    size: int
    progress: bool
    out: object

    @property
    def harmful(self):
        return [p.harmful for p in self.pairs]

    @property
    def benign(self):
        return [p.benign for p in self.pairs]

    def baseline(self, result):
        from .baseline import compute_baseline

        return {"baseline": compute_baseline(self.model, self.harmful, self.benign, self.config.probe(self.model),
                                             chat=self.chat, batch_size=self.size, progress=self.progress,
                                             generation_config=self.config.generation_config)}

    def screen(self, result):
        from .dla_screen import dla_screen

        base = result.step("baseline")
        return {"screen": dla_screen(self.model, self.harmful, self.benign, base.benign_first,
                                     band=self.config.band(self.model.n_layers), top_k=self.config.top_k,
                                     chat=self.chat, batch_size=self.batch_size, progress=self.progress)}

    def ablate(self, result):
        from .ablation import ablate_heads

        base = result.step("baseline")
        return {"ablate": ablate_heads(self.model, self.harmful, self.benign, base.continuations, base.probe,
                                       result.step("screen").candidates, chat=self.chat, batch_size=self.size,
                                       progress=self.progress)}

    def _checkpoint(self, tag: str):
        if self.out is None:
            return None
        out = Path(self.out)
        return out.parent / f".{out.name}.{tag}-checkpoint"

    def interchange(self, result):
        from .interchange import interchange, screen_config

        base = result.step("baseline")
        cfg = screen_config(self.config, seed=self.seed, batch_size=self.batch_size)
        return {"interchange": interchange(self.model, self.harmful, self.benign, base.continuations, cfg,
                                           chat=self.chat, progress=self.progress,
                                           checkpoint_dir=self._checkpoint("screen"))}

    def knockout(self, result):
        from .knockout import knockout_cascade

        base = result.step("baseline")
        return {"knockout": knockout_cascade(self.model, self.harmful, self.benign, base.benign_first,
                                             result.step("screen").delta, result.gate, k=self.config.amplifiers,
                                             null_heads=self.config.null_heads, seed=self.seed, chat=self.chat,
                                             batch_size=self.batch_size, progress=self.progress)}

    def modulate(self, result):
        from .modulation import dose_response

        base = result.step("baseline")
        return {"modulate": dose_response(self.model, self.harmful, self.benign, base.probe, base.probe_layer,
                                          self.config.alphas(), n_sweep=self.config.modulate_n, chat=self.chat,
                                          max_new_tokens=self.config.gen_tokens, batch_size=self.size,
                                          mode=self.config.classifier, progress=self.progress)}

    def cipher(self, result):
        from .baseline import greedy_continuations
        from .collapse import cipher_collapse
        from .contrast import cipher_contrast
        from .interchange import interchange, screen_config
        from .rescue import rescue

        pairs = self.pairs[: self.config.cipher_n]
        plain, benign = [p.harmful for p in pairs], [p.benign for p in pairs]
        c_harm, c_ben = [cipher_prompt(t) for t in plain], [cipher_prompt(t) for t in benign]
        gate = result.gate
        heads = [gate] + [h for h in result.step("screen").candidates if h != gate]
        conts, _ = greedy_continuations(self.model, c_ben, chat=self.chat, batch_size=self.size,
                                        generation_config=self.config.generation_config)
        cfg = screen_config(self.config, heads=heads, method="exact", seed=self.seed, batch_size=self.batch_size)
        cipher_screen = interchange(self.model, c_harm, c_ben, conts, cfg, chat=self.chat, progress=self.progress,
                                    checkpoint_dir=self._checkpoint("cipher"))
        # heads the plain screen only estimated (AtP): their plain necessity, exact, on the cipher's pairs
        missing = [h for h in heads if h not in result.step("interchange").exact_heads()]
        extra = None
        if missing:
            plain_conts = result.step("baseline").continuations[: len(pairs)]
            extra = interchange(self.model, plain, benign, plain_conts,
                                screen_config(self.config, heads=missing, method="exact", seed=self.seed,
                                              batch_size=self.batch_size),
                                chat=self.chat, progress=self.progress, checkpoint_dir=self._checkpoint("plain-extra"))
        return {"collapse": cipher_collapse(result.step("interchange"), cipher_screen, gate, extra=extra),
                "rescue": rescue(self.model, plain, c_harm, gate, chat=self.chat,
                                 max_new_tokens=self.config.gen_tokens, batch_size=self.size,
                                 mode=self.config.classifier),
                "contrast": cipher_contrast(self.model, plain, c_harm, benign, result.step("baseline").probe,
                                            chat=self.chat, batch_size=self.batch_size)}
