"""The supported model families, one declarative `ArchSpec` each (transformers 5 layouts).

Layouts were read from the installed transformers 5 sources. In transformers 5 mixture-of-
experts blocks hold fused expert weights (`experts.gate_up_proj` as one 3-D parameter) and a
`*TopKRouter` module that returns `(router_logits, top_k_weights, top_k_indices)` over
flattened tokens; the engine reads routing from that output.
"""

from __future__ import annotations

from .spec import ArchSpec

_GEMMA_NORMS = dict(
    ln1="input_layernorm",
    ln1_post="post_attention_layernorm",
    ln2="pre_feedforward_layernorm",
    ln2_post="post_feedforward_layernorm",
    norm_weight_offset=1.0,
)

FAMILIES: tuple[ArchSpec, ...] = (
    ArchSpec("llama", ("llama",), notes="covers SmolLM2"),
    ArchSpec("qwen2", ("qwen2",)),
    ArchSpec("qwen3", ("qwen3",), notes="q_norm/k_norm per head after q/k projections"),
    ArchSpec("mistral", ("mistral",)),
    ArchSpec("gemma2", ("gemma2",), **_GEMMA_NORMS, notes="sandwich norms, attention and final soft-capping"),
    ArchSpec("gemma3", ("gemma3_text",), **_GEMMA_NORMS, notes="sandwich norms, q_norm/k_norm"),
    ArchSpec(
        "gpt2",
        ("gpt2",),
        base="transformer",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
        layers="transformer.h",
        final_norm="transformer.ln_f",
        attn="attn",
        q_proj=None,
        k_proj=None,
        v_proj=None,
        qkv_proj="c_attn",
        o_proj="c_proj",
        down_proj="c_proj",
        ln1="ln_1",
        ln2="ln_2",
        norm_kind="layer",
        conv1d=True,
        # HF's GPT2Attention splits c_attn into n_head heads of n_embd / n_head for q, k and v
        ignores=("num_key_value_heads", "head_dim", "v_head_dim", "rms_norm_eps", "final_logit_softcapping"),
    ),
    ArchSpec("phi3", ("phi3",), q_proj=None, k_proj=None, v_proj=None, qkv_proj="qkv_proj"),
    ArchSpec(
        "olmo2",
        ("olmo2",),
        ln1=None,
        ln2=None,
        ln1_post="post_attention_layernorm",
        ln2_post="post_feedforward_layernorm",
        notes="norm after each sublayer, no input norms",
    ),
    ArchSpec("mixtral", ("mixtral",), moe=True, router="gate", experts="experts"),
    ArchSpec(
        "qwen2_moe", ("qwen2_moe",), moe=True, router="gate", experts="experts",
        notes="shared expert with its own sigmoid gate",
    ),
    ArchSpec("qwen3_moe", ("qwen3_moe",), moe=True, router="gate", experts="experts"),
    ArchSpec("olmoe", ("olmoe",), moe=True, router="gate", experts="experts"),
    ArchSpec(
        "deepseek_v3",
        ("deepseek_v3",),
        q_proj=None,
        k_proj=None,
        v_proj=None,
        moe=True,
        router="gate",
        experts="experts",
        notes="multi-head latent attention (no hook_q/k/v); first_k_dense_replace layers are dense; "
        "selection uses sigmoid scores plus e_score_correction_bias",
    ),
    ArchSpec(
        "gpt_oss", ("gpt_oss",), moe=True, router="router", experts="experts",
        notes="attention sinks; alternating sliding-window layers",
    ),
)

BY_MODEL_TYPE: dict[str, ArchSpec] = {t: spec for spec in FAMILIES for t in spec.model_types}


class UnsupportedArchitectureError(ValueError):
    """The model's `config.model_type` has no adapter."""


def supported_families() -> list[str]:
    return [spec.family for spec in FAMILIES]


def spec_for_config(config) -> ArchSpec:
    """The adapter for an HF config, or a one-line error listing what is supported."""
    return spec_for_model_type(getattr(config, "model_type", None))


def spec_for_model_type(model_type: str | None) -> ArchSpec:
    spec = BY_MODEL_TYPE.get(model_type)
    if spec is None:
        raise UnsupportedArchitectureError(
            f"unsupported architecture '{model_type}': steerlens supports "
            f"{', '.join(sorted(BY_MODEL_TYPE))}"
        )
    return spec
