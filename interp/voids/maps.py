"""LAC void detection ("Void in Language Models", arXiv 2505.14467): which decoder layers
are inactive for each token, in prompt processing and in response generation.

    result = run_voids(model, ["What is 2+2?"], VoidConfig(alpha=0.8, max_new_tokens=32), chat=True)
    result.summary()["layers_used_pct"]      # {"prompt": 41.2, "response": 35.0}
    result.figures()["map_prompt"].show()

The rule and the paper-mode skip live in `interp.voids.rule` (edge cases for layers 0 and 1
are explained there). Phases: the prompt phase is the prefill pass (every prompt token);
the response phase is every later decode step with the KV cache on (one token each).

Differences from the authors' code (manishemirani/void_in_language_models, lac.py; every
one, with the option that reproduces it, in docs/fidelity/voids.md):
- norms, deltas and thresholds in float32 (`norm_dtype="float32"`); the paper's are in
  the model's dtype, bf16 (`norm_dtype="model"`);
- maps of the plain model (`skip="none"`); the paper's published maps come from the
  skipping model (its skip flag is always on): `skip="paper"` generates with paper-mode
  skipping and the maps are those of that run;
- the chat template only with `chat=True` (`template="chat-flag"`); the paper always
  applies it (`template="paper"`: whenever the tokenizer has one);
- `max_new_tokens = N` gives N - 1 response rows (the first new token comes from the
  prefill); the paper's `max_seq_length = N` runs N decode steps, so N rows: pass
  `max_new_tokens = N + 1` for the paper's count;
- greedy decoding (the paper samples at temperature 0.6, top-p 0.9), so runs repeat;
- padding positions of a batch are excluded from every statistic;
- a response-phase column is the token the decode step *processed* (the previous output);
  the token it produced is kept alongside (`response_next`); the paper labels a step by the
  token it produced. The first generated token comes from the prefill's last position;
- layer 0 is always active unless `layer0="sign"` (see `interp.voids.rule`);
- steps after a row produced EOS are dropped (the batch keeps running for other rows).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..runs.config import option
from ..runs.results import Result, RunMeta
from .rule import LAYER0_RULES, NORM_DTYPES, VoidTracker
from .tables import fewest_active, layer_table, phase_comparison, token_table, used_pct


TEMPLATES = ("chat-flag", "paper")


@dataclass
class VoidConfig:
    alpha: float = option(0.8, "LAC threshold: layer l is void for a token if its norm delta is below alpha times "
                               "the range of the token's earlier deltas")
    max_new_tokens: int = option(32, "tokens generated per prompt (greedy); the response phase has one row per "
                                     "decode step, max_new_tokens - 1 rows (the paper's max_seq_length N gives N "
                                     "rows: pass N + 1)")
    skip: str = option("none", "'paper': generate with paper-mode skipping (the final norm reads the last active "
                               "layer's state; changes the text, saves no compute) and map that run, as the "
                               "paper's published maps; 'none': map the plain model", choices=("none", "paper"))
    layer0: str = option("active", "layer 0 rule: 'active' (no earlier deltas, never void) or 'sign' (void iff its "
                                   "norm decreases, the paper code at batch size 1)", choices=LAYER0_RULES)
    norm_dtype: str = option("float32", "precision of norms, deltas and thresholds: float32, or model (the "
                                        "model's dtype, as the paper's code: bf16 there)", choices=NORM_DTYPES)
    template: str = option("chat-flag", "chat template: chat-flag (only with --chat) or paper (whenever the "
                                        "tokenizer has one, as the paper's code always applies it)",
                           choices=TEMPLATES)
    phase_majority: float = option(0.5, "a layer counts as used in a phase when active for at least this fraction "
                                         "of the phase's tokens (phase comparison)")
    fewest: int = option(10, "tokens listed with the fewest active layers")

    def validate(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"--alpha must be a positive number, got {self.alpha} (the paper uses 0.8)")
        if self.max_new_tokens < 1:
            raise ValueError(f"--max-new-tokens must be at least 1, got {self.max_new_tokens}")
        if self.skip not in ("none", "paper"):
            raise ValueError(f"--skip must be none or paper, got {self.skip!r} (real skipping: steerlens voids eval)")
        if self.layer0 not in LAYER0_RULES:
            raise ValueError(f"--layer0 must be one of {LAYER0_RULES}, got {self.layer0!r}")
        if self.norm_dtype not in NORM_DTYPES:
            raise ValueError(f"--norm-dtype must be one of {NORM_DTYPES}, got {self.norm_dtype!r}")
        if self.template not in TEMPLATES:
            raise ValueError(f"--template must be one of {TEMPLATES}, got {self.template!r}")
        if not 0 < self.phase_majority <= 1:
            raise ValueError(f"--phase-majority must be in (0, 1], got {self.phase_majority}")
        if self.fewest < 1:
            raise ValueError(f"--fewest must be at least 1, got {self.fewest}")


def check_hookable(model) -> None:
    """ValueError unless `model` is an engine Model whose decoder layers can be hooked."""
    from ..engine.model import Model

    if not isinstance(model, Model):
        raise ValueError(f"void detection needs an interp.Model (interp.load(...)), got {type(model).__name__}; "
                         "a raw Hugging Face model has no engine sites")
    if model.n_layers < 1:
        raise ValueError("the model has no decoder layers to analyse")
    needed = ["blocks.0.hook_resid_pre"] + [f"blocks.{layer}.hook_resid_post" for layer in range(model.n_layers)]
    missing = [name for name in needed if name not in model.sites()]
    if missing:
        raise ValueError(f"cannot hook the decoder layers of this {model.spec.family} model: no site "
                         f"{missing[0]} (void detection reads every layer's input and output)")


@dataclass
class VoidResult(Result):
    """Activation maps per prompt: [N prompts, tokens, L layers], tokens from index 0 (right padded)."""

    analysis: ClassVar[str] = "voids"
    prompts: list[str]
    generated: list[str]
    n_layers: int
    alpha: float
    prompt_tokens: list  # [N][P_i] token texts
    response_tokens: list  # [N][T_i] token each decode step processed
    response_next: list  # [N][T_i] token each decode step produced
    prompt_active: torch.Tensor  # [N, P, L] bool
    prompt_mask: torch.Tensor  # [N, P] bool, real tokens
    prompt_norms: torch.Tensor  # [N, P, L + 1] float32: n_{-1}, n_0, ..., n_{L-1}
    response_active: torch.Tensor  # [N, T, L] bool
    response_mask: torch.Tensor  # [N, T] bool
    response_norms: torch.Tensor  # [N, T, L + 1]
    per_layer: pd.DataFrame
    per_token: pd.DataFrame
    phase_majority: float = 0.5
    fewest: int = 10

    def layers_used_pct(self) -> dict:
        return {"prompt": used_pct(self.prompt_active, self.prompt_mask),
                "response": used_pct(self.response_active, self.response_mask)}

    def summary(self) -> dict:
        prompt_freq = self.per_layer["prompt_active"].tolist()
        response_freq = self.per_layer["response_active"].tolist()
        return {
            "alpha": self.alpha,
            "n_layers": self.n_layers,
            # which precision, template and model the maps come from (docs/fidelity/voids.md)
            "norm_dtype": self.meta.config.get("norm_dtype", "float32"),
            "chat_template": self.meta.config.get("chat"),
            "skip": self.meta.config.get("skip", "none"),
            "prompts": len(self.prompts),
            "prompt_tokens": int(self.prompt_mask.sum()),
            "response_tokens": int(self.response_mask.sum()),
            "layers_used_pct": self.layers_used_pct(),
            "per_layer_active": {"prompt": [_num(v) for v in prompt_freq], "response": [_num(v) for v in response_freq]},
            "phase_comparison": phase_comparison(prompt_freq, response_freq, self.phase_majority),
            "fewest_active_tokens": fewest_active(self.per_token, self.fewest),
            "generated": self.generated,
        }

    def figures(self) -> dict:
        from .figures import void_figures

        return void_figures(self)


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def run_voids(model, prompts: list[str], config: VoidConfig | None = None, *, chat: bool = False,
              batch_size: int | str | None = None, progress: bool = False, seed: int | None = None) -> VoidResult:
    """Generate greedily from every prompt while applying the LAC rule in each pass."""
    config = config or VoidConfig()
    config.validate()
    check_hookable(model)
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts given; pass at least one prompt")
    if any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise ValueError("empty prompt in input; every prompt needs some text")
    size = 8 if batch_size in (None, "auto") else int(batch_size)
    chat = uses_template(model, chat, config.template)
    meta = RunMeta(model=model.info, config={**dataclasses.asdict(config), "chat": chat}, seed=seed)
    tracker = VoidTracker(model.n_layers, config.alpha, config.layer0, paper_skip=config.skip == "paper",
                          norm_dtype=config.norm_dtype)
    rows: list[dict] = []
    chunks = [prompts[i : i + size] for i in range(0, len(prompts), size)]
    for chunk in tqdm(chunks, desc="voids", disable=not progress, leave=False):
        batch = model.tokenize(chunk, chat=chat)
        tracker.reset()
        with meta.timed("generate"):
            gen = model.generate(batch, hooks=tracker.hooks(), max_new_tokens=config.max_new_tokens)
        rows += _split_rows(model, batch, gen, tracker.passes)
    return _assemble(model, prompts, rows, config, meta)


def uses_template(model, chat: bool, template: str = "chat-flag") -> bool:
    """Whether prompts go through the chat template: `chat`, or under `template="paper"`
    whenever the tokenizer has one (the paper's code always applies it)."""
    has_template = bool(getattr(model.tokenizer, "chat_template", None))
    return bool(chat) or (template == "paper" and has_template)


def _eos_ids(model) -> set[int]:
    eos = getattr(model.hf.generation_config, "eos_token_id", None) or model.tokenizer.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


def _split_rows(model, batch, gen, passes) -> list[dict]:
    """Per prompt: prompt-phase and response-phase maps from the passes of one generate call."""
    new = gen.new_tokens  # [b, T]
    if len(passes) != new.shape[1]:
        raise RuntimeError(f"expected 1 prefill + {new.shape[1] - 1} decode passes, saw {len(passes)}")
    prefill, steps = passes[0], passes[1:]
    eos = _eos_ids(model)
    decode = model.tokenizer.decode
    rows = []
    for i in range(new.shape[0]):
        real = batch.attention_mask[i].bool()  # [P]
        ids = batch.input_ids[i][real].tolist()
        out_ids = new[i].tolist()
        ended = next((k for k, t in enumerate(out_ids) if t in eos), len(out_ids))
        n_steps = min(len(steps), ended)  # step k processes out_ids[k] (k < ended) and produces out_ids[k + 1]
        rows.append({
            "prompt_tokens": [decode([t]) for t in ids],
            "prompt_active": prefill.active[i][real],  # [P_i, L]
            "prompt_norms": prefill.norms[i][real],  # [P_i, L + 1]
            "response_tokens": [decode([t]) for t in out_ids[:n_steps]],
            "response_next": [decode([t]) for t in out_ids[1 : n_steps + 1]],
            "response_active": _stack([s.active[i, -1] for s in steps[:n_steps]], model.n_layers, torch.bool),
            "response_norms": _stack([s.norms[i, -1] for s in steps[:n_steps]], model.n_layers + 1, torch.float32),
            "generated": gen.texts[i],
        })
    return rows


def _stack(vectors: list[torch.Tensor], width: int, dtype) -> torch.Tensor:
    return torch.stack(vectors) if vectors else torch.zeros(0, width, dtype=dtype)


def _pad(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad [n_i, ...] tensors to [N, max n, ...]; mask [N, max n]."""
    width = max([t.shape[0] for t in tensors] + [0])
    out = torch.zeros(len(tensors), width, *tensors[0].shape[1:], dtype=tensors[0].dtype)
    mask = torch.zeros(len(tensors), width, dtype=torch.bool)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return out, mask


def _assemble(model, prompts, rows, config: VoidConfig, meta: RunMeta) -> VoidResult:
    prompt_active, prompt_mask = _pad([r["prompt_active"] for r in rows])
    prompt_norms, _ = _pad([r["prompt_norms"] for r in rows])
    response_active, response_mask = _pad([r["response_active"] for r in rows])
    response_norms, _ = _pad([r["response_norms"] for r in rows])
    fields = {key: [r[key] for r in rows] for key in ("prompt_tokens", "response_tokens", "response_next", "generated")}
    return VoidResult(
        prompts=prompts, n_layers=model.n_layers, alpha=float(config.alpha),
        prompt_active=prompt_active, prompt_mask=prompt_mask, prompt_norms=prompt_norms,
        response_active=response_active, response_mask=response_mask, response_norms=response_norms,
        per_layer=layer_table(prompt_active, prompt_mask, response_active, response_mask),
        per_token=token_table(fields["prompt_tokens"], fields["response_tokens"], fields["response_next"],
                              prompt_active, prompt_mask, response_active, response_mask),
        phase_majority=config.phase_majority, fewest=config.fewest, meta=meta, **fields)
