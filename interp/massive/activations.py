"""Massive activations: a few residual entries thousands of times larger than the median.

Method: Sun et al., "Massive Activations in Large Language Models"
(COLM 2024).
- Per decoder layer output h_l (`blocks.{l}.hook_resid_post`) over all real tokens of all
  prompts: the top-k |activation| with (prompt, token position, token string, dimension),
  the median |activation|, the ratio max / median, and the Sun et al. criterion per entry,
  `|a| > abs_threshold and |a| / median_l >= ratio_threshold` (defaults 100 and 1000, both
  configurable: small models may never pass the absolute one; the ratio is the fair
  comparison). A layer is massive when one entry passes.
- Origin (`interp.massive.origin`): at the massive entries of the first massive layer, the
  maxima of every layer's attention output and MLP output, and the first sublayer whose
  output (aligned with the sign of the massive value) reaches `origin_fraction` of it;
  for an MLP also its top neurons (activation * W_out[dim, neuron]).
- Intervention (`--intervene`): on the decoder output of the first massive layer, the
  massive dimensions at the massive tokens set to zero vs to their mean over the prompts
  (the reference corpus), and the perplexity of a text set before and after.

Deliberate differences (all listed, with the options that reproduce the authors' code, in
docs/fidelity/massive.md): the top entries, maximum and median are pooled over every real
entry of all prompts (`max_abs`, `median_abs`); the authors' figure averages each
sequence's own top-3 and median over sequences, which is reported next to ours
(`seq_top`, `seq_median`; `interp.massive.per_sequence`, `--seq-top`); prompts are cut to
`tokens` tokens; in a new text (perplexity) the massive tokens are found again with the
same criterion, using the reference corpus' median.
Memory: the decoder outputs of all prompts are held on the CPU in float32
(N * tokens * d_model * L * 4 bytes; 16 x 64 tokens of a 24-layer d=896 model: 88 MB).

    result = massive_activations(model, intervene=True)
    result.summary()["first_massive_layer"], result.summary()["ppl"]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..runs.config import option
from .criterion import passing
from .origin import find_origin, intervention_ppl, massive_groups
from .per_sequence import per_sequence_stats
from ..runs.results import Result, RunMeta
from ..engine.tokens import first_tokens
from ..sinks.measure import default_prompts


@dataclass
class MassiveConfig:
    top_k: int = option(5, "largest |activations| listed per layer")
    seq_top: int = option(3, "the paper's per-sequence statistic: each prompt's N largest |h| and its median |h| per "
                             "layer, averaged over prompts (the authors' figure uses 3)")
    abs_threshold: float = option(100.0, "Sun et al. criterion: |a| must exceed this (set 0 to use the ratio alone)")
    ratio_threshold: float = option(1000.0, "Sun et al. criterion: |a| / median |h_layer| must reach this")
    tokens: int = option(64, "every prompt is cut to its first N real tokens (BOS included)")
    origin_fraction: float = option(0.5, "a sublayer writes the massive value when its output reaches this fraction of it")
    top_neurons: int = option(5, "neurons listed for an MLP origin")
    intervene: bool = option(False, "zero vs mean-set the massive activations; perplexity before and after")
    ppl_file: str | None = option(None, "text file for --intervene (default: the shipped interp/data/ppl_sample.txt)")
    ppl_tokens: int = option(256, "perplexity texts are cut to this many tokens")

    def validate(self) -> None:
        for name in ("top_k", "seq_top", "tokens", "top_neurons", "ppl_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.abs_threshold < 0 or self.ratio_threshold < 0:
            raise ValueError("--abs-threshold and --ratio-threshold must be >= 0")
        if not 0.0 < self.origin_fraction <= 1.0:
            raise ValueError(f"--origin-fraction must be in (0, 1], got {self.origin_fraction}")
        if self.ppl_file is not None and not self.intervene:
            raise ValueError("--ppl-file is only used with --intervene; add --intervene or drop --ppl-file")


@dataclass
class MassiveResult(Result):
    """Per-layer statistics ([L] tensors), the top entries, the origin and the ablation."""

    analysis: ClassVar[str] = "massive"
    main_table = "layers"  # result.table(): one row per layer
    prompts: list[str]
    n_layers: int
    d_model: int
    abs_threshold: float
    ratio_threshold: float
    bos_policy: str
    bos_added: bool
    max_abs: torch.Tensor  # [L]
    median_abs: torch.Tensor  # [L]
    ratio: torch.Tensor  # [L]
    top: pd.DataFrame  # layer, rank, prompt, position, token, dim, value
    layer_dims: list  # per layer: [[dim, n entries passing], ...]
    layer_tokens: list  # per layer: [{token, position, count}, ...]
    first_massive_layer: int | None
    massive_dims: list[int]  # every dim that is massive in some layer, in order of first appearance
    groups: list  # per layer where dims first appear: {first_layer, dims, dim_means, massive_value, n_entries}
    origin_table: pd.DataFrame | None  # per group and layer, at the group's entries: attn/mlp maxima, writes
    origin: list | None  # per group: {first_layer, dims, layer, sublayer, write, share, top_neurons, ...}
    ppl: dict | None
    notes: list[str]
    # the paper's per-sequence statistic (None in runs saved before it existed)
    seq_top: torch.Tensor | None = None  # [L, seq_top] float64: mean over prompts of each one's largest |h|
    seq_median: torch.Tensor | None = None  # [L] float64: mean over prompts of each prompt's median |h|

    def is_massive(self) -> list[bool]:
        return [bool(dims) for dims in self.layer_dims]

    def layers(self) -> list[dict]:
        """One entry per layer: {layer, max_abs, median_abs, ratio, seq_top, seq_median, dims, tokens,
        is_massive, top}."""
        out = []
        for l in range(self.n_layers):
            top = self.top[self.top["layer"] == l]
            out.append({
                "layer": l, "max_abs": float(self.max_abs[l]), "median_abs": float(self.median_abs[l]),
                "ratio": float(self.ratio[l]),
                **({} if self.seq_top is None else {"seq_top": [float(v) for v in self.seq_top[l]],
                                                    "seq_median": float(self.seq_median[l])}),
                "dims": [d for d, _ in self.layer_dims[l]][:10],
                "tokens": self.layer_tokens[l][:10], "is_massive": bool(self.layer_dims[l]),
                "top": [{"prompt": int(r.prompt), "position": int(r.position), "token": r.token, "dim": int(r.dim),
                         "value": float(r.value)} for r in top.itertuples()],
            })
        return out

    def summary(self) -> dict:
        best = int(self.ratio.argmax())
        out = {
            "criterion": f"|a| > {self.abs_threshold} and |a| / median >= {self.ratio_threshold}",
            "first_massive_layer": self.first_massive_layer, "massive_dims": self.massive_dims,
            "groups": self.groups, "max_ratio": float(self.ratio[best]), "max_ratio_layer": best,
            "bos_policy": self.bos_policy, "bos_added": self.bos_added, "n_prompts": len(self.prompts),
            "statistics": "pooled: max_abs, median_abs and top over every token of every prompt; per sequence "
                          "(the paper's figure): seq_top and seq_median, each prompt's own values averaged",
            "origin": self.origin, "layers": self.layers(),
        }
        if self.ppl is not None:
            out["ppl"] = self.ppl
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def figures(self) -> dict:
        from .figures import massive_figures

        return massive_figures(self)


def capture_decoder_outputs(model, batch, batch_size: int, progress: bool, edits=()) -> list[torch.Tensor]:
    """Each row's decoder outputs at its real tokens: a list of [L, n, d_model] float32 CPU tensors."""
    sites = [f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)]
    rows: list[torch.Tensor] = []
    chunks = [list(range(s, min(s + batch_size, len(batch.texts)))) for s in range(0, len(batch.texts), batch_size)]
    for chunk in tqdm(chunks, desc="massive: capture", disable=not progress, leave=False):
        _, cache = model.run_with_cache(batch.select(chunk), sites=sites, edits=edits, logits=None,
                                        batch_size=len(chunk), to_cpu=True, dtype=torch.float32)
        for i in range(len(chunk)):
            n = int(cache.attention_mask[i].sum())
            rows.append(torch.stack([cache[s][i, -n:] for s in sites]))
    return rows


def run_massive(model, prompts: list[str], config: MassiveConfig, *, chat: bool = False, batch_size=None,
                progress: bool = False, seed: int | None = None, ppl_texts: list[str] | None = None,
                edits=()) -> MassiveResult:
    config.validate()
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    meta = RunMeta(model=dict(model.info), config=dataclasses.asdict(config), seed=seed)
    batch = first_tokens(model.tokenize(prompts, chat=chat), config.tokens, model.tokenizer.pad_token_id or 0)
    size = batch_size if isinstance(batch_size, int) else 8
    with meta.timed("capture"):
        resid = capture_decoder_outputs(model, batch, size, progress, edits)  # N x [L, n, d]
    n_layers = model.n_layers
    flat = torch.cat([r.abs() for r in resid], dim=1)  # [L, sum n, d]
    max_abs = flat.amax((1, 2))
    median_abs = flat.flatten(1).median(dim=1).values
    ratio = max_abs / median_abs.clamp_min(1e-30)
    seq_top, seq_median = per_sequence_stats(resid, config.seq_top)
    ids = [batch.input_ids[i, -len(r[0]):].tolist() for i, r in enumerate(resid)]
    decode = model.tokenizer.decode
    top_rows, layer_dims, layer_tokens, masks = [], [], [], []
    for l in range(n_layers):
        found = [passing(r[l], median_abs[l], config) for r in resid]  # N x [n, d]
        masks.append(found)
        dims = torch.stack([f.sum(0) for f in found]).sum(0) if found else torch.zeros(model.d_model)  # [d]
        layer_dims.append([[int(d), int(dims[d])] for d in dims.argsort(descending=True) if dims[d] > 0])
        counts: dict[tuple[int, str], int] = {}
        for i, f in enumerate(found):
            for p in f.any(-1).nonzero().flatten().tolist():
                key = (p, decode([ids[i][p]]))
                counts[key] = counts.get(key, 0) + 1
        layer_tokens.append([{"position": p, "token": t, "count": c}
                             for (p, t), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0]))])
        _, index = flat[l].flatten().topk(min(config.top_k, flat[l].numel()))
        for rank, flat_index in enumerate(index.tolist()):
            row, position, dim = _locate(resid, flat_index, model.d_model)
            top_rows.append({"layer": l, "rank": rank, "prompt": row, "position": position,
                             "token": decode([ids[row][position]]), "dim": dim,
                             "value": float(resid[row][l, position, dim])})
    groups = massive_groups(resid, masks, layer_dims)
    first = groups[0].first_layer if groups else None
    notes, origin, origin_table, ppl = [], None, None, None
    if first is None:
        notes.append(f"no layer passes the criterion (largest ratio {float(ratio.max()):.1f} at layer "
                     f"{int(ratio.argmax())}, largest |a| {float(max_abs.max()):.1f}); lower --abs-threshold / "
                     "--ratio-threshold to study the largest entries")
        if config.intervene:
            notes.append("--intervene skipped: there are no massive activations to ablate")
    else:
        with meta.timed("origin"):
            origin_table, origin = find_origin(model, batch, resid, groups, config, size, progress)
        if config.intervene:
            with meta.timed("perplexity"):
                ppl = intervention_ppl(model, ppl_texts, groups, median_abs, config, progress)
    return MassiveResult(
        prompts=prompts, n_layers=n_layers, d_model=model.d_model, abs_threshold=config.abs_threshold,
        ratio_threshold=config.ratio_threshold, bos_policy=model.bos, bos_added=batch.bos_added,
        max_abs=max_abs, median_abs=median_abs, ratio=ratio, seq_top=seq_top, seq_median=seq_median, top=pd.DataFrame(top_rows), layer_dims=layer_dims,
        layer_tokens=layer_tokens, first_massive_layer=first, massive_dims=[d for g in groups for d in g.dims],
        groups=[g.to_dict() for g in groups], origin_table=origin_table, origin=origin, ppl=ppl, notes=notes,
        meta=meta)


def _locate(resid: list[torch.Tensor], flat_index: int, d_model: int) -> tuple[int, int, int]:
    """(prompt, position, dim) of an index into the [sum n, d] concatenation of the rows."""
    token, dim = divmod(flat_index, d_model)
    for row, r in enumerate(resid):
        if token < r.shape[1]:
            return row, token, dim
        token -= r.shape[1]
    raise IndexError(flat_index)


def massive_activations(model, prompts: list[str] | None = None, *, chat: bool = False, batch_size=None,
                        ppl_texts: list[str] | None = None, **config) -> MassiveResult:
    """Notebook entry point: `massive_activations(model, ratio_threshold=100, intervene=True)`."""
    return run_massive(model, default_prompts() if prompts is None else prompts, MassiveConfig(**config),
                       chat=chat, batch_size=batch_size, ppl_texts=ppl_texts)
