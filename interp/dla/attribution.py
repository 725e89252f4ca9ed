"""Direct logit attribution (DLA): which heads, MLPs and neurons write a logit (difference).

Method: direct logit attribution, as in TransformerLens' `ActivationCache.decompose_resid /
stack_head_results / apply_ln_to_stack / logit_attrs` (Elhage et al. 2021, "A Mathematical
Framework for Transformer Circuits"). The final residual at each chosen position is split
into embeddings, every head's `W_O^h z_h`, each layer's attention output bias, every MLP
output (and on request every MLP neuron); the final norm is linearised with the divisor
cached from the same forward pass. The attributions plus the bias terms sum exactly to the
model's logit (difference): `sum_check` in the summary is the largest deviation.

Differences from TransformerLens: the final norm's weight (`1 + w` for Gemma) is applied
to the direction instead of being folded into W_U, so no weight processing is needed; norm
biases and the unembedding bias are reported as a separate `bias` term; sandwich norms
(Gemma 2/3, OLMo-2) are linearised too (see `interp.dla.decompose`); soft-capped logits
(Gemma 2) are attributed before the cap.

    result = dla(model, ["The capital of France is"], target=" Paris", contrast=" London")
    result.top_components(10); result.figures()["head_heatmap"].show()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import torch

from ..runs.config import option
from .directions import Direction, token_direction
from .decompose import decompose
from ..runs.results import Result, RunMeta


@dataclass
class DLAConfig:
    target: str | None = option(None, "target token text; must be exactly one token (e.g. ' Paris')")
    target_id: list[int] | None = option(None, "target token id(s) instead of --target; several ids = their mean")
    contrast: str | None = option(None, "contrast token text: attribute logit(target) - logit(contrast)")
    contrast_id: list[int] | None = option(None, "contrast token id(s) instead of --contrast; several = their mean")
    positions: str = option("last", "'last' or comma-separated token positions, negative from the end "
                                    "(write --positions=-1,-2 so the minus sign is not read as an option)")
    neurons: bool = option(False, "also attribute every MLP neuron (dense MLPs only)")
    heads: list[str] | None = option(None, "heads to add to the per-prompt table, as LAYER.HEAD (e.g. 3.1,5.0)")
    top_k: int = option(20, "how many components the summary lists")

    def validate(self) -> None:
        """Checks that need no model (run before loading one)."""
        self.check_options()
        if self.target is None and not self.target_id:
            raise ValueError("no target: pass --target TEXT (one token) or --target-id ID")
        if self.target is not None and self.target_id:
            raise ValueError("pass either --target or --target-id, not both")
        if self.contrast is not None and self.contrast_id:
            raise ValueError("pass either --contrast or --contrast-id, not both")

    def check_options(self) -> None:
        """Everything but the target (callers may pass their own direction)."""
        if self.top_k < 1:
            raise ValueError(f"--top-k must be at least 1, got {self.top_k}")
        self.position_list()
        self.head_list()

    def position_list(self) -> str | list[int]:
        if isinstance(self.positions, (list, tuple)):
            return [int(p) for p in self.positions]
        if self.positions == "last":
            return "last"
        try:
            return [int(p) for p in str(self.positions).split(",")]
        except ValueError:
            raise ValueError(f"--positions must be 'last' or comma-separated ints, not {self.positions!r} (e.g. -1,-2)") from None

    def head_list(self) -> list[tuple[int, int]]:
        out = []
        for text in self.heads or []:
            parts = str(text).split(".")
            if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
                raise ValueError(f"--heads entry {text!r} is not LAYER.HEAD (e.g. 3.1)")
            out.append((int(parts[0]), int(parts[1])))
        return out

    def check_model(self, model) -> None:
        """Checks that need the model's shape (run after loading, before any forward pass)."""
        for layer, head in self.head_list():
            if not 0 <= layer < model.n_layers:
                raise ValueError(f"head {layer}.{head}: layer {layer} out of range, model has layers 0..{model.n_layers - 1}")
            if not 0 <= head < model.n_heads:
                raise ValueError(f"head {layer}.{head}: head {head} out of range, model has heads 0..{model.n_heads - 1}")

    def direction(self, model) -> Direction:
        target = self.target if self.target is not None else self.target_id
        contrast = self.contrast if self.contrast is not None else (self.contrast_id or None)
        return token_direction(model, target, contrast)


@dataclass
class DLAResult(Result):
    """Attributions per prompt and position; tensors are float64 [N prompts, n positions, ...]."""

    analysis: ClassVar[str] = "dla"
    direction: str
    tokens: list  # [[token id, weight, text], ...]; empty for a free vector
    prompts: list[str]
    positions: list  # token positions ("last" is recorded as [-1])
    n_layers: int
    n_heads: int
    softcap: float | None
    embed_attr: torch.Tensor  # [N, n]
    pos_embed_attr: torch.Tensor | None  # [N, n]
    head_attr: torch.Tensor  # [N, n, L, H]
    attn_bias_attr: torch.Tensor  # [N, n, L]
    mlp_attr: torch.Tensor  # [N, n, L]
    neuron_attr: torch.Tensor | None  # [N, n, L, d_mlp] neurons + mlp_bias_attr = mlp_attr (a split of it)
    mlp_bias_attr: torch.Tensor | None  # [N, n, L] down_proj bias (and post-norm bias)
    bias_attr: torch.Tensor  # [N, n] final-norm bias and unembedding bias
    attributed: torch.Tensor  # [N, n] embed + pos_embed + heads + attn bias + MLPs + bias
    model_value: torch.Tensor  # [N, n] pre-cap logit (difference) from the model's final normed state
    hf_value: torch.Tensor | None  # [N] the value in HF's returned logits (post-cap if capped)
    sum_check: float  # max |attributed - HF's logit (difference)|; pre-cap value where soft-capped
    head_sum_check: float  # max |heads + attn bias - whole attention output| over layers
    per_prompt: pd.DataFrame
    top_k: int = 20

    # ---- aggregates (mean over prompts and positions) --------------------------------
    def head_means(self) -> torch.Tensor:  # [L, H]
        return self.head_attr.mean((0, 1))

    def layer_table(self) -> pd.DataFrame:
        """Per layer: sum over heads, attention bias, MLP (means over prompts and positions)."""
        return pd.DataFrame({
            "layer": range(self.n_layers),
            "heads": self.head_attr.sum(-1).mean((0, 1)).tolist(),
            "attn_bias": self.attn_bias_attr.mean((0, 1)).tolist(),
            "mlp": self.mlp_attr.mean((0, 1)).tolist(),
        })

    def components(self) -> list[dict]:
        """Every component (a partition of the residual) with its mean attribution."""
        rows = [{"component": "embed", "layer": None, "head": None, "value": self.embed_attr.mean().item()}]
        if self.pos_embed_attr is not None:
            rows.append({"component": "pos_embed", "layer": None, "head": None, "value": self.pos_embed_attr.mean().item()})
        heads, bias, mlp = self.head_means(), self.attn_bias_attr.mean((0, 1)), self.mlp_attr.mean((0, 1))
        for layer in range(self.n_layers):
            rows += [{"component": f"L{layer}H{h}", "layer": layer, "head": h, "value": heads[layer, h].item()}
                     for h in range(self.n_heads)]
            if bias[layer] != 0:
                rows.append({"component": f"L{layer} attn bias", "layer": layer, "head": None, "value": bias[layer].item()})
            rows.append({"component": f"L{layer} MLP", "layer": layer, "head": None, "value": mlp[layer].item()})
        return rows

    def top_components(self, k: int | None = None) -> list[dict]:
        """The k components with the largest |mean attribution|: {component, layer, head, value}."""
        return sorted(self.components(), key=lambda r: -abs(r["value"]))[: k or self.top_k]

    def top_neurons(self, k: int | None = None) -> list[dict]:
        """The k MLP neurons with the largest |mean attribution| (needs neurons=True)."""
        if self.neuron_attr is None:
            raise ValueError("no neuron attributions: run with neurons=True (--neurons)")
        means = self.neuron_attr.mean((0, 1))  # [L, d_mlp]
        flat = torch.nan_to_num(means, nan=0.0).flatten()
        order = flat.abs().argsort(descending=True)[: k or self.top_k]
        width = means.shape[1]
        return [{"component": f"L{int(i) // width}N{int(i) % width}", "layer": int(i) // width,
                 "neuron": int(i) % width, "value": flat[i].item()} for i in order]

    def summary(self) -> dict:
        attn = (self.head_attr.sum((-1, -2)) + self.attn_bias_attr.sum(-1)).mean().item()
        mlp = self.mlp_attr.sum(-1).mean().item()
        out = {
            "direction": self.direction, "tokens": self.tokens, "prompts": len(self.prompts),
            "positions": self.positions, "model_value": self.model_value.mean().item(),
            "attributed": self.attributed.mean().item(), "sum_check": self.sum_check,
            "head_sum_check": self.head_sum_check, "attn_total": attn, "mlp_total": mlp,
            "embed_total": self.embed_attr.mean().item()
            + (0.0 if self.pos_embed_attr is None else self.pos_embed_attr.mean().item()),
            "bias_term": self.bias_attr.mean().item(),
            "attn_share": abs(attn) / max(abs(attn) + abs(mlp), 1e-30),
            "top": self.top_components(),
        }
        if self.softcap:
            out["softcap"] = (f"final logits are soft-capped at {self.softcap}; attributions sum to the pre-cap "
                              "value (model_value); hf_value is after the cap")
        if self.hf_value is not None:
            out["hf_value"] = self.hf_value.mean().item()
        if self.neuron_attr is not None:
            out["top_neurons"] = self.top_neurons()
        return out

    def figures(self) -> dict:
        from .figures import dla_figures

        return dla_figures(self)


def run_dla(model, prompts: list[str], config: DLAConfig, *, direction: Direction | None = None, chat: bool = False,
            edits=(), batch_size=None, progress: bool = False, seed: int | None = None) -> DLAResult:
    """DLA of `config`'s target (or of `direction`, if given) over `prompts`."""
    if direction is None:
        config.validate()
    else:
        config.check_options()
    config.check_model(model)
    meta = RunMeta(model=dict(model.info), config=dataclasses.asdict(config), seed=seed)
    direction = direction or config.direction(model)
    positions = config.position_list()
    with meta.timed("forward_and_attribution"):
        dec = decompose(model, prompts, direction, positions=positions, neurons=config.neurons, chat=chat,
                        edits=edits, batch_size=batch_size, progress=progress)
    softcap = model.spec.final_logit_softcap(model.config)
    attributed = dec.attributed
    hf_value = dec.hf_value if positions == "last" else None  # HF's logits exist at the last token only
    reference = dec.model_value
    if hf_value is not None and softcap is None:
        reference = hf_value[:, None]  # the logits HF itself returned
    tokens = [[t, w, model.tokenizer.decode([t])] for t, w in direction.tokens]
    return DLAResult(
        direction=direction.label, tokens=tokens, prompts=list(prompts),
        positions=[-1] if positions == "last" else list(positions), n_layers=model.n_layers, n_heads=model.n_heads,
        softcap=softcap, embed_attr=dec.embed, pos_embed_attr=dec.pos_embed, head_attr=dec.heads,
        attn_bias_attr=dec.attn_bias, mlp_attr=dec.mlp, neuron_attr=dec.neurons, mlp_bias_attr=dec.mlp_bias,
        bias_attr=dec.bias, attributed=attributed, model_value=dec.model_value, hf_value=hf_value,
        sum_check=(attributed - reference).abs().max().item(),
        head_sum_check=(dec.heads.sum(-1) + dec.attn_bias - dec.attn_out).abs().max().item(),
        per_prompt=_per_prompt_table(model, prompts, positions, dec, attributed, config.head_list()),
        top_k=config.top_k, meta=meta,
    )


def dla(model, prompts, target=None, contrast=None, *, direction: Direction | None = None, chat: bool = False,
        edits=(), batch_size=None, **config) -> DLAResult:
    """Notebook entry point: `dla(model, prompts, " Paris", " London", neurons=True)`.

    `target` / `contrast`: token text (one token), an id, or a list of them (their mean);
    or pass any `Direction` (e.g. `interp.dla.directions.refusal_direction`).
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    if direction is None:
        if target is None:
            raise ValueError("pass a target token (or a direction=)")
        direction = token_direction(model, target, contrast)
    cfg = DLAConfig(target=target if isinstance(target, str) else None,
                    target_id=None if isinstance(target, str) or target is None else _ids(target),
                    contrast=contrast if isinstance(contrast, str) else None,
                    contrast_id=None if isinstance(contrast, str) or contrast is None else _ids(contrast), **config)
    return run_dla(model, prompts, cfg, direction=direction, chat=chat, edits=edits, batch_size=batch_size)


def _ids(spec) -> list:
    return [spec] if isinstance(spec, int) else list(spec)


def _per_prompt_table(model, prompts, positions, dec, attributed, focus_heads) -> pd.DataFrame:
    rows = []
    n_pos = dec.embed.shape[1]
    labels = ["last"] if positions == "last" else [str(p) for p in positions]
    for i, text in enumerate(prompts):
        for j in range(n_pos):
            heads = dec.heads[i, j]  # [L, H]
            best = int(heads.abs().argmax())
            row = {"prompt": i, "text": text, "position": labels[j], "model_value": dec.model_value[i, j].item(),
                   "attributed": attributed[i, j].item(), "embed": dec.embed[i, j].item(),
                   "attn": (heads.sum() + dec.attn_bias[i, j].sum()).item(), "mlp": dec.mlp[i, j].sum().item(),
                   "bias": dec.bias[i, j].item(),
                   "top_head": f"L{best // model.n_heads}H{best % model.n_heads}", "top_head_value": heads.flatten()[best].item()}
            if dec.pos_embed is not None:
                row["pos_embed"] = dec.pos_embed[i, j].item()
            if dec.hf_value is not None and positions == "last":  # HF's own logits exist there only
                row["hf_value"] = dec.hf_value[i].item()
            for layer, head in focus_heads:
                row[f"L{layer}H{head}"] = dec.heads[i, j, layer, head].item()
            rows.append(row)
    return pd.DataFrame(rows)
