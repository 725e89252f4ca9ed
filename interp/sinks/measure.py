"""Attention sinks: which heads dump attention on the first token, and what that token carries.

Method: Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks"
(arXiv 2309.17453); Sun et al. 2024, "Massive Activations in Large Language Models"
(arXiv 2402.17762).
- Sink importance and sink rate (Gu et al., "When Attention Sink Emerges in Language
  Models", ICLR 2025): `alpha[l,h,k] = mean over queries t >= k of A[l,h,t,k]`;
  `Sink_k^eps` = % of (layer, head) with alpha > eps (defaults eps = 0.3, T = 64 tokens), on
  natural text and on random-token inputs.
- First-token attention share per head and layer (Xiao et al., StreamingLLM, ICLR 2024):
  mean over queries and last-query variants.
- Value-state drain (Guo et al., "Active-Dormant Attention Heads", 2024): `||v_j W_O^h||`
  of the sink token vs the mean over the other tokens. Residual-state peak: `||resid_j||`
  per layer (decoder layer outputs), token 0 vs the rest.
- Secondary sinks: tokens beyond the first with alpha > eps, with the cosine similarity of
  their residual to the first token's residual per layer.

Conventions (deliberate, stated because papers differ):
- Positions are 0-based over real tokens: the paper's `k = 1` (first token) is position 0.
  Pads are excluded from every statistic (each row is cut to its real tokens).
- Each prompt is cut to its first `tokens` (T) real tokens, BOS included when the BOS
  policy adds one; `bos_added` and the policy are recorded in the result. Keep T near the
  paper's 64: under uniform causal attention alpha_0 = H_n / n (harmonic number), 0.074 at
  n = 64 but 0.34 at n = 8, above eps without any sink. Shorter prompts are noted.
- `sink_rate` is computed per sequence and averaged over sequences; `sink_rate_of_mean`
  thresholds alpha averaged over sequences (both are in the summary).
- The first-token share's mean leaves out query 0, which can only attend to itself.
- Secondary sinks are searched only among keys with at least `secondary_min_queries`
  queries at or after them (late keys' alpha is mostly their own self-attention).
- Patterns need eager attention: a model loaded with sdpa raises `PatternUnavailableError`.

    result = sinks(model)                          # shipped natural-text prompts
    result.sink_rate(), result.first_token_share_by_layer()

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/sinks.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..arch.spec import o_proj_weight
from ..runs.config import option
from ..engine.model import TokenBatch
from ..engine.tokens import first_tokens, pad_rows
from ..runs.results import Result, RunMeta
from .result import SinkResultMixin
from .stats import (
    cosine_to_first,
    first_token_share,
    real_pattern,
    secondary_sinks,
    sink_importance,
    sink_vs_rest,
    value_out_norms,
)

SINK_TEXT = "sinks_text.txt"


def default_prompts() -> list[str]:
    """The shipped natural-text prompts (interp/data/sinks_text.txt, prose written for steerlens)."""
    from ..runs.prompts import read_prompts

    with resources.as_file(resources.files("interp") / "data" / SINK_TEXT) as path:
        return read_prompts(path)


@dataclass
class SinkConfig:
    eps: float = option(0.3, "sink threshold on the importance alpha (Gu et al.'s epsilon)")
    tokens: int = option(64, "T: every prompt is cut to its first T real tokens (BOS included)")
    random_tokens: bool = option(True, "also measure on sequences of uniformly random tokens")
    n_random: int = option(0, "number of random-token sequences (0 = as many as prompts)")
    secondary_min_queries: int = option(8, "secondary sinks: only keys with at least this many queries at or after them")

    def validate(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"--eps must be in [0, 1), got {self.eps}")
        if self.tokens < 2:
            raise ValueError(f"--tokens must be at least 2, got {self.tokens}")
        if self.n_random < 0:
            raise ValueError(f"--n-random must be >= 0, got {self.n_random}")
        if self.secondary_min_queries < 1:
            raise ValueError(f"--secondary-min-queries must be >= 1, got {self.secondary_min_queries}")


@dataclass
class SinkResult(SinkResultMixin, Result):
    """Per-sequence sink statistics. Tensors in `natural` / `random` (N sequences, L, H, T):

    alpha [N, L, H, T] (NaN beyond a sequence's length), share_mean / share_last [N, L, H],
    drain_sink / drain_rest [N, L, H] (absent when the model exposes no value states),
    resid_norm [N, L, T], lengths [N].
    """

    analysis: ClassVar[str] = "sinks"
    eps: float
    tokens: int
    bos_policy: str
    bos_added: bool
    chat: bool
    prompts: list[str]
    n_layers: int
    n_heads: int
    natural: dict[str, torch.Tensor]
    random: dict[str, torch.Tensor] | None
    secondary: pd.DataFrame
    notes: list[str]

    def figures(self) -> dict:
        from .figures import sink_figures

        return sink_figures(self)


def random_token_batch(model, n_rows: int, n_tokens: int, seed: int = 0) -> TokenBatch:
    """`n_rows` sequences of `n_tokens` uniformly random non-special tokens, with the model's
    BOS in front (counted in `n_tokens`) when its BOS policy adds one to text."""
    tok = model.tokenizer
    special = set(getattr(tok, "all_special_ids", []) or [])
    pool = torch.tensor([i for i in range(min(len(tok), model.d_vocab)) if i not in special])
    probe = model.tokenize(["a"])
    bos = tok.bos_token_id if probe.bos_added else None
    gen = torch.Generator().manual_seed(seed)
    body = n_tokens - (bos is not None)
    rows = []
    for _ in range(n_rows):
        ids = pool[torch.randint(len(pool), (body,), generator=gen)]
        rows.append(torch.cat([torch.tensor([bos]), ids]) if bos is not None else ids)
    return pad_rows(rows, [f"<random {i}>" for i in range(n_rows)], bos is not None, pad_id=tok.pad_token_id or 0)


def measure_sinks(model, batch: TokenBatch, config: SinkConfig, *, batch_size: int | None = None,
                  progress: bool = False, label: str = "natural", edits=()) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Per-sequence sink statistics of a batch, and its secondary-sink rows."""
    n_layers, n_heads = model.n_layers, model.n_heads
    with_values = "blocks.0.attn.hook_v" in model.sites(0)
    sites = [f"blocks.{l}.attn.hook_pattern" for l in range(n_layers)]
    sites += [f"blocks.{l}.hook_resid_post" for l in range(n_layers)]
    if with_values:
        sites += [f"blocks.{l}.attn.hook_v" for l in range(n_layers)]
        w_o = [o_proj_weight(model.spec, model.hf, l).detach() for l in range(n_layers)]
    n_rows, width = batch.input_ids.shape
    nan = float("nan")
    out = {
        "alpha": torch.full((n_rows, n_layers, n_heads, width), nan),
        "share_mean": torch.zeros(n_rows, n_layers, n_heads),
        "share_last": torch.zeros(n_rows, n_layers, n_heads),
        "resid_norm": torch.full((n_rows, n_layers, width), nan),
        "lengths": torch.tensor(batch.lengths),
    }
    if with_values:
        out["drain_sink"] = torch.zeros(n_rows, n_layers, n_heads)
        out["drain_rest"] = torch.zeros(n_rows, n_layers, n_heads)
    secondary_rows: list[dict] = []
    size = batch_size if isinstance(batch_size, int) else 8
    chunks = [list(range(s, min(s + size, n_rows))) for s in range(0, n_rows, size)]
    for chunk in tqdm(chunks, desc=f"sinks ({label})", disable=not progress, leave=False):
        sub = batch.select(chunk)
        _, cache = model.run_with_cache(sub, sites=sites, edits=edits, logits=None, batch_size=len(chunk))
        for i, row in enumerate(chunk):
            n = int(cache.attention_mask[i].sum())
            mask = cache.attention_mask[i]
            alpha = torch.stack([sink_importance(real_pattern(cache[f"blocks.{l}.attn.hook_pattern"][i], mask))
                                 for l in range(n_layers)])  # [L, H, n]
            out["alpha"][row, :, :, :n] = alpha.cpu()
            for l in range(n_layers):
                mean, last = first_token_share(real_pattern(cache[f"blocks.{l}.attn.hook_pattern"][i], mask))
                out["share_mean"][row, l], out["share_last"][row, l] = mean.cpu(), last.cpu()
                if with_values:
                    norms = value_out_norms(cache[f"blocks.{l}.attn.hook_v"][i, -n:], w_o[l], n_heads)  # [n, H]
                    sink, rest = sink_vs_rest(norms)
                    out["drain_sink"][row, l], out["drain_rest"][row, l] = sink.cpu(), rest.cpu()
            resid = torch.stack([cache[f"blocks.{l}.hook_resid_post"][i, -n:] for l in range(n_layers)])  # [L, n, d]
            out["resid_norm"][row, :, :n] = resid.float().norm(dim=-1).cpu()
            ids = sub.input_ids[i, -n:].tolist()
            for position, above, top in secondary_sinks(alpha, config.eps, config.secondary_min_queries):
                cos = cosine_to_first(resid, position).tolist()
                secondary_rows.append({"input": label, "prompt": row, "position": position,
                                       "token": model.tokenizer.decode([ids[position]]),
                                       "n_heads_above_eps": above, "max_alpha": top,
                                       **{f"cos_L{l}": c for l, c in enumerate(cos)}})
    return out, secondary_rows


def run_sinks(model, prompts: list[str], config: SinkConfig, *, chat: bool = False, batch_size=None,
              progress: bool = False, seed: int = 0, edits=()) -> SinkResult:
    """Sink statistics of `prompts` (cut to `config.tokens`) and of random-token sequences,
    optionally under `edits` (e.g. `interp.sinks.attention_edits.zerotuning(...)`)."""
    config.validate()
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    meta = RunMeta(model=dict(model.info), config=dataclasses.asdict(config), seed=seed)
    natural_batch = first_tokens(model.tokenize(prompts, chat=chat), config.tokens,
                                 model.tokenizer.pad_token_id or 0)
    notes = []
    short = sum(n < config.tokens for n in natural_batch.lengths)
    if short:
        notes.append(f"{short} of {len(prompts)} prompts have fewer than T = {config.tokens} tokens")
    if "blocks.0.attn.hook_v" not in model.sites(0):
        notes.append("value states are not exposed for this family: no value-drain statistics")
    with meta.timed("natural"):
        natural, rows = measure_sinks(model, natural_batch, config, batch_size=batch_size, progress=progress,
                                      edits=edits)
    random = None
    if config.random_tokens:
        n_random = config.n_random or len(prompts)
        random_batch = random_token_batch(model, n_random, config.tokens, seed=seed)
        with meta.timed("random"):
            random, random_rows = measure_sinks(model, random_batch, config, batch_size=batch_size,
                                                progress=progress, label="random", edits=edits)
        rows += random_rows
    columns = ["input", "prompt", "position", "token", "n_heads_above_eps", "max_alpha"]
    columns += [f"cos_L{l}" for l in range(model.n_layers)]
    return SinkResult(eps=config.eps, tokens=config.tokens, bos_policy=model.bos, bos_added=natural_batch.bos_added,
                      chat=chat, prompts=prompts, n_layers=model.n_layers, n_heads=model.n_heads,
                      natural=natural, random=random, secondary=pd.DataFrame(rows, columns=columns),
                      notes=notes, meta=meta)


def sinks(model, prompts: list[str] | None = None, *, chat: bool = False, batch_size=None, edits=(),
          **config) -> SinkResult:
    """Notebook entry point: `sinks(model, eps=0.3, tokens=64)` (default: the shipped prompts)."""
    return run_sinks(model, default_prompts() if prompts is None else prompts, SinkConfig(**config),
                     chat=chat, batch_size=batch_size, edits=edits)
