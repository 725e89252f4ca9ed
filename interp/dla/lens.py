"""Logit lens: the next-token distribution each layer's residual stream would give.

Method: the logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens").
For every layer's residual (the embeddings, then each decoder layer's output) the final
norm is recomputed on that partial residual (its own divisor, not the final one) and the
unembedding is applied, with the family's final-logit soft-cap where it has one, so the
last layer's lens is exactly the model's own output (`final_layer_check`). The norm and
unembedding modules of the loaded model are called as functions; no hooks are involved.

    result = logit_lens(model, ["The capital of France is"], target=" Paris")
    result.summary()["layers"]; result.figures()["lens_heatmap"].show()

Fidelity to the authors' code (every difference, the options that reproduce the paper):
docs/fidelity/lens.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import plotly.graph_objects as go
import torch

from ..arch.spec import get_module
from ..runs.config import option
from .directions import resolve_tokens
from ..runs.results import Result, RunMeta

LOGIT_BUDGET = 2**26  # float32 logits held at once ([rows, layers, vocab]), about 256 MB


@dataclass
class LensConfig:
    target: str | None = option(None, "token whose rank and probability to track per layer (must be one token)")
    target_id: int | None = option(None, "token id to track instead of --target")
    positions: str = option("all", "'all' (every token of each prompt) or 'last'", choices=("all", "last"))
    top_k: int = option(5, "tokens listed per layer")

    def validate(self) -> None:
        if self.target is not None and self.target_id is not None:
            raise ValueError("pass either --target or --target-id, not both")
        if self.positions not in ("all", "last"):
            raise ValueError(f"--positions must be all or last, not {self.positions!r} (e.g. --positions last)")
        if self.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {self.top_k}")

    def target_token(self, model) -> int | None:
        if self.target is not None:
            return resolve_tokens(model, self.target, "target")[0]
        if self.target_id is not None:
            return resolve_tokens(model, int(self.target_id), "target")[0]
        return None


@dataclass
class LensResult(Result):
    """One row per (prompt, position); tensors are [R rows, L + 1 layers, ...]."""

    analysis: ClassVar[str] = "lens"
    main_table = "layer_report"  # result.table(): one row per layer
    prompts: list[str]
    layer_labels: list[str]  # "embed", "L0", ..., "L{L-1}"
    row_prompt: list[int]
    row_position: list[int]  # real token position within its prompt
    row_token: list[str]  # the input token at that position
    top_ids: torch.Tensor  # [R, L + 1, k]
    top_probs: torch.Tensor  # [R, L + 1, k]
    top_tokens: list  # [R][L + 1][k] token texts
    target_id: int | None
    target: str | None
    target_rank: torch.Tensor | None  # [R, L + 1], 0 = most likely
    target_prob: torch.Tensor | None  # [R, L + 1]
    final_layer_check: float  # max |log p| difference between the last layer's lens and the model
    softcap: float | None

    def last_rows(self) -> list[int]:
        """Index of each prompt's last-position row."""
        last: dict[int, int] = {}
        for i, prompt in enumerate(self.row_prompt):
            last[prompt] = i
        return [last[p] for p in sorted(last)]

    def layer_report(self, row: int | None = None) -> list[dict]:
        """Per layer: top-k tokens with probabilities (and the target's rank) at one row."""
        row = self.last_rows()[0] if row is None else row
        out = []
        for j, label in enumerate(self.layer_labels):
            entry = {"layer": label, "top": [{"token": t, "id": int(i), "prob": float(p)} for t, i, p in
                                             zip(self.top_tokens[row][j], self.top_ids[row, j], self.top_probs[row, j])]}
            if self.target_rank is not None:
                entry["target_rank"] = int(self.target_rank[row, j])
                entry["target_prob"] = float(self.target_prob[row, j])
            out.append(entry)
        return out

    def summary(self) -> dict:
        out = {"prompts": len(self.prompts), "rows": len(self.row_prompt), "final_layer_check": self.final_layer_check,
               "prompt": self.prompts[0], "layers": self.layer_report()}
        if self.target_id is not None:
            last = self.last_rows()
            ranks = self.target_rank[last]  # [prompts, L + 1]
            out["target"] = self.target
            out["target_id"] = self.target_id
            out["target_rank_by_layer"] = ranks[0].tolist()
            top1 = (ranks == 0).float().argmax(-1)
            out["first_top1_layer"] = [self.layer_labels[int(i)] if bool((r == 0).any()) else None
                                       for i, r in zip(top1, ranks)]
        if self.softcap:
            out["softcap"] = f"final logits soft-capped at {self.softcap} (applied in the lens too)"
        return out

    def figures(self) -> dict:
        figures = {"lens_heatmap": self._heatmap()}
        if self.target_rank is not None:
            figures["target_rank"] = self._target_rank()
        return figures

    def _heatmap(self) -> go.Figure:
        by_position = len(self.row_prompt) > len(self.prompts)  # positions="all": show the first prompt
        rows = [i for i, p in enumerate(self.row_prompt) if p == 0] if by_position else list(range(len(self.row_prompt)))
        columns = [f"{self.row_position[i]}: {self.row_token[i]!r}" if by_position
                   else f"prompt {self.row_prompt[i]}: {self.row_token[i]!r}" for i in rows]
        z = self.top_probs[rows, :, 0].T.tolist()  # [L + 1, columns]
        text = [[self.top_tokens[i][j][0] for i in rows] for j in range(len(self.layer_labels))]
        fig = go.Figure(go.Heatmap(z=z, x=columns, y=self.layer_labels, text=text, texttemplate="%{text}",
                                   colorscale="Blues", zmin=0.0, zmax=1.0, colorbar={"title": "top-1 prob"},
                                   hovertemplate="%{y} at %{x}: %{text} (%{z:.3f})<extra></extra>"))
        fig.update_layout(title="Logit lens: top next token per layer", xaxis_title="position (input token)",
                          yaxis_title="layer", yaxis={"autorange": "reversed"})
        return fig

    def _target_rank(self) -> go.Figure:
        fig = go.Figure()
        for row in self.last_rows():
            fig.add_trace(go.Scatter(x=self.layer_labels, y=(self.target_rank[row] + 1).tolist(), mode="lines+markers",
                                     name=f"prompt {self.row_prompt[row]}"))
        fig.update_layout(title=f"Logit lens: rank of {self.target!r} at the last token (1 = top)",
                          xaxis_title="layer", yaxis_title="rank", yaxis={"type": "log", "autorange": "reversed"})
        return fig


def lens_sites(model) -> list[str]:
    return ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(model.n_layers)]


@torch.inference_mode()
def lens_logits(model, resid: torch.Tensor) -> torch.Tensor:
    """Final norm recomputed on `resid` [..., d_model], unembedding, soft-cap: float32 logits [..., V]."""
    norm = get_module(model.hf, model.spec.final_norm)
    unembed = get_module(model.hf, model.spec.unembed)
    logits = unembed(norm(resid.to(model.device, model.dtype))).float()
    cap = model.spec.final_logit_softcap(model.config)
    return torch.tanh(logits / cap) * cap if cap else logits


def run_lens(model, prompts: list[str], config: LensConfig, *, chat: bool = False, edits=(), batch_size=None,
             progress: bool = False, seed: int | None = None) -> LensResult:
    """Logit lens over `prompts` at every position ("all") or the last one."""
    config.validate()
    target = config.target_token(model)
    meta = RunMeta(model=dict(model.info), config=dataclasses.asdict(config), seed=seed)
    with meta.timed("forward"):
        logits, cache = model.run_with_cache(prompts, lens_sites(model), positions=config.positions, edits=edits,
                                             chat=chat, logits="last", batch_size=batch_size, progress=progress)
    resid = torch.stack([cache[name] for name in lens_sites(model)], -2)  # [b, (P,) L + 1, d_model]
    if config.positions == "all":
        mask = cache.attention_mask.bool()  # [b, P]
        resid = resid[mask.to(resid.device)]  # [R, L + 1, d_model]
        row_prompt = mask.nonzero()[:, 0].tolist()
        row_position = (mask.long().cumsum(-1) - 1)[mask].tolist()
        row_ids = cache.input_ids[mask].tolist()
    else:
        row_prompt = list(range(len(prompts)))
        row_position = [n - 1 for n in cache.attention_mask.sum(-1).tolist()]
        row_ids = cache.input_ids[:, -1].tolist()
    k = min(config.top_k, model.d_vocab)
    top_ids, top_probs, ranks, probs, final_logp = [], [], [], [], []
    chunk = max(1, LOGIT_BUDGET // (resid.shape[1] * model.d_vocab))
    with meta.timed("unembed"):
        for start in range(0, resid.shape[0], chunk):
            logp = torch.log_softmax(lens_logits(model, resid[start:start + chunk]), -1)  # [r, L + 1, V]
            values, ids = logp.topk(k, -1)
            top_ids.append(ids.cpu())
            top_probs.append(values.exp().cpu())
            final_logp.append(logp[:, -1].cpu())
            if target is not None:
                target_logp = logp[..., target]  # [r, L + 1]
                ranks.append((logp > target_logp[..., None]).sum(-1).cpu())
                probs.append(target_logp.exp().cpu())
    top_ids_t = torch.cat(top_ids)
    last_rows = [max(i for i, p in enumerate(row_prompt) if p == q) for q in range(len(prompts))]
    model_logp = torch.log_softmax(logits.float().cpu(), -1)  # [b, V]
    final_check = (torch.cat(final_logp)[last_rows] - model_logp).abs().max().item()
    decode = model.tokenizer.decode
    return LensResult(
        prompts=list(prompts), layer_labels=["embed"] + [f"L{l}" for l in range(model.n_layers)],
        row_prompt=row_prompt, row_position=row_position, row_token=[decode([t]) for t in row_ids],
        top_ids=top_ids_t, top_probs=torch.cat(top_probs),
        top_tokens=[[[decode([int(t)]) for t in layer] for layer in row] for row in top_ids_t.tolist()],
        target_id=target, target=None if target is None else decode([target]),
        target_rank=torch.cat(ranks) if ranks else None, target_prob=torch.cat(probs) if probs else None,
        final_layer_check=final_check, softcap=model.spec.final_logit_softcap(model.config), meta=meta,
    )


def logit_lens(model, prompts, target=None, *, chat: bool = False, edits=(), batch_size=None, **config) -> LensResult:
    """Notebook entry point: `logit_lens(model, "The capital of France is", " Paris")`."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    cfg = LensConfig(target=target if isinstance(target, str) else None,
                     target_id=target if isinstance(target, int) else None, **config)
    return run_lens(model, prompts, cfg, chat=chat, edits=edits, batch_size=batch_size)
