"""Declarative architecture adapters: where each part of a decoder lives in an HF model.

An `ArchSpec` names module paths only; it holds no tensors and no code that runs the
model. The tracing engine (`interp.engine.sites`, `interp.engine.hooks`) turns these names into hooks,
and analyses read weights through the small accessors at the bottom of this file
(`o_proj_weight`, `down_proj_weight`, `unembed_weight`), which put every family's weights
into one orientation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

NormKind = Literal["rms", "layer"]


@dataclass(frozen=True)
class ArchSpec:
    """Where things live in one model family (paths relative to the HF CausalLM module).

    Norm names are relative to a decoder layer. Following TransformerLens:
    `ln1` = norm before attention, `ln2` = norm before the MLP, `ln1_post` / `ln2_post` =
    norms applied to a sublayer's output before it is added to the residual (Gemma 2/3
    "sandwich" norms, OLMo-2's norm-after layers). `None` means the family has no such norm.
    """

    family: str
    model_types: tuple[str, ...]
    base: str = "model"  # the decoder stack (LlamaModel, GPT2Model, ...)
    embed: str = "model.embed_tokens"
    pos_embed: str | None = None  # learned absolute positions (GPT-2)
    layers: str = "model.layers"
    final_norm: str = "model.norm"
    unembed: str = "lm_head"
    attn: str = "self_attn"
    q_proj: str | None = "q_proj"
    k_proj: str | None = "k_proj"
    v_proj: str | None = "v_proj"
    qkv_proj: str | None = None  # fused q|k|v projection (GPT-2 c_attn, Phi-3 qkv_proj)
    o_proj: str = "o_proj"
    mlp: str = "mlp"
    down_proj: str | None = "down_proj"  # relative to mlp; dense layers only
    ln1: str | None = "input_layernorm"
    ln2: str | None = "post_attention_layernorm"
    ln1_post: str | None = None
    ln2_post: str | None = None
    norm_kind: NormKind = "rms"
    norm_weight_offset: float = 0.0  # Gemma multiplies by (1 + w)
    conv1d: bool = False  # GPT-2 stores weights as [in, out]
    # Mixture of experts (relative to mlp); None for dense families.
    router: str | None = None
    experts: str | None = None
    moe: bool = False
    # config attributes this family's HF code never reads: a stray one in a config (a GPT-2
    # config carrying num_key_value_heads) must not change the shapes the engine reports
    ignores: tuple[str, ...] = ()
    notes: str = ""

    # ---- configuration readers -------------------------------------------------------
    def _get(self, config, name: str):
        """`config.name`, or None when absent or when this family's HF code ignores it."""
        return None if name in self.ignores else getattr(config, name, None)

    def _first(self, config, *names: str):
        for name in names:
            value = self._get(config, name)
            if value is not None:
                return value
        raise AttributeError(f"config {type(config).__name__} has none of {names}")

    def n_layers(self, config) -> int:
        return int(self._first(config, "num_hidden_layers", "n_layer"))

    def n_heads(self, config) -> int:
        return int(self._first(config, "num_attention_heads", "n_head"))

    def n_kv_heads(self, config) -> int:
        kv = self._get(config, "num_key_value_heads")
        return int(kv) if kv else self.n_heads(config)

    def d_model(self, config) -> int:
        return int(self._first(config, "hidden_size", "n_embd"))

    def d_head(self, config) -> int:
        """Width of one head's slice of the o_proj input (DeepSeek MLA: v_head_dim)."""
        for name in ("v_head_dim", "head_dim"):
            value = self._get(config, name)
            if value:
                return int(value)
        return self.d_model(config) // self.n_heads(config)

    def d_head_qk(self, config) -> int:
        value = self._get(config, "head_dim")
        return int(value) if value else self.d_model(config) // self.n_heads(config)

    def norm_eps(self, config) -> float:
        return float(self._first(config, "rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps"))

    def final_logit_softcap(self, config) -> float | None:
        value = self._get(config, "final_logit_softcapping")
        return float(value) if value else None


def get_module(root: nn.Module, path: str) -> nn.Module:
    """`root.get_submodule(path)` with the path named in the error."""
    try:
        return root.get_submodule(path)
    except AttributeError as err:
        raise AttributeError(f"module path '{path}' not found in {type(root).__name__}") from err


def has_module(root: nn.Module, path: str) -> bool:
    try:
        root.get_submodule(path)
        return True
    except AttributeError:
        return False


def _as_out_in(module: nn.Module, conv1d: bool) -> torch.Tensor:
    """Weight as [out, in] whatever the storage convention."""
    return module.weight.T if conv1d else module.weight


def o_proj_weight(spec: ArchSpec, model: nn.Module, layer: int) -> torch.Tensor:
    """W_O of one layer as [d_model, n_heads * d_head]; head h owns columns h*d_head:(h+1)*d_head."""
    return _as_out_in(get_module(model, f"{spec.layers}.{layer}.{spec.attn}.{spec.o_proj}"), spec.conv1d)


def o_proj_bias(spec: ArchSpec, model: nn.Module, layer: int) -> torch.Tensor | None:
    return get_module(model, f"{spec.layers}.{layer}.{spec.attn}.{spec.o_proj}").bias


def down_proj_weight(spec: ArchSpec, model: nn.Module, layer: int) -> torch.Tensor:
    """W_out of a dense MLP as [d_model, d_mlp]; column n is neuron n's write direction."""
    return _as_out_in(get_module(model, f"{spec.layers}.{layer}.{spec.mlp}.{spec.down_proj}"), spec.conv1d)


def down_proj_bias(spec: ArchSpec, model: nn.Module, layer: int) -> torch.Tensor | None:
    return get_module(model, f"{spec.layers}.{layer}.{spec.mlp}.{spec.down_proj}").bias


def unembed_weight(spec: ArchSpec, model: nn.Module) -> torch.Tensor:
    """W_U as [vocab, d_model] (the lm_head weight; tied or not)."""
    return get_module(model, spec.unembed).weight


def unembed_bias(spec: ArchSpec, model: nn.Module) -> torch.Tensor | None:
    return getattr(get_module(model, spec.unembed), "bias", None)
