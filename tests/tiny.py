"""Tiny randomly initialised models of every supported family, built offline in seconds.

`tiny_model(family)` returns an `interp.Model` over a 2-4 layer HF model with a
character-level tokenizer (vocab 128: <pad>=0, <s>=1, </s>=2, then printable ASCII).
Weights are random but seeded, so every test sees the same model.
"""

from __future__ import annotations

import string
from functools import lru_cache

import torch
import transformers as T
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

VOCAB = 128
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)

_COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, pad_token_id=0,
               bos_token_id=1, eos_token_id=2, max_position_embeddings=256, tie_word_embeddings=False)
_MOE = dict(moe_intermediate_size=32, num_experts=4, num_local_experts=4, n_routed_experts=4,
            num_experts_per_tok=2, decoder_sparse_step=1, mlp_only_layers=[], shared_expert_intermediate_size=48)

CONFIGS: dict[str, tuple[type, dict]] = {
    "llama": (T.LlamaConfig, {}),
    "qwen2": (T.Qwen2Config, {}),
    "qwen3": (T.Qwen3Config, {}),
    "mistral": (T.MistralConfig, {}),
    "gemma2": (T.Gemma2Config, dict(final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                                    query_pre_attn_scalar=16, sliding_window=8)),
    "gemma3": (T.Gemma3TextConfig, dict(query_pre_attn_scalar=16, sliding_window=8,
                                        layer_types=["sliding_attention", "full_attention", "sliding_attention"])),
    "gpt2": (T.GPT2Config, dict(n_layer=3, n_embd=64, n_head=4, n_positions=256, n_inner=96,
                                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)),
    "phi3": (T.Phi3Config, {}),
    "olmo2": (T.Olmo2Config, {}),
    "mixtral": (T.MixtralConfig, _MOE),
    "qwen2_moe": (T.Qwen2MoeConfig, _MOE),
    "qwen3_moe": (T.Qwen3MoeConfig, _MOE),
    "olmoe": (T.OlmoeConfig, _MOE),
    "deepseek_v3": (T.DeepseekV3Config, dict(_MOE, first_k_dense_replace=1, n_group=1, topk_group=1,
                                             kv_lora_rank=16, q_lora_rank=16, qk_rope_head_dim=8,
                                             qk_nope_head_dim=8, v_head_dim=16, head_dim=8,
                                             num_key_value_heads=4)),
    "gpt_oss": (T.GptOssConfig, dict(_MOE, sliding_window=8, layer_types=["sliding_attention", "full_attention", "sliding_attention"])),
}
FAMILIES = tuple(CONFIGS)
DENSE = ("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "gpt2", "phi3", "olmo2")
MOE = tuple(f for f in FAMILIES if f not in DENSE)


@lru_cache(maxsize=1)
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    chars = [c for c in string.printable if c not in "\x0b\x0c"]
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    while len(vocab) < VOCAB:
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def tiny_config(family: str, **overrides):
    cls, extra = CONFIGS[family]
    kwargs = {**_COMMON, **extra, **overrides}
    return cls(**kwargs)


def tiny_hf(family: str, seed: int = 0, attn: str = "eager", dtype=torch.float32, **overrides):
    torch.manual_seed(seed)
    config = tiny_config(family, **overrides)
    config._attn_implementation = attn
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn).to(dtype).eval()
    _randomise_zero_inits(model)
    return model


def _randomise_zero_inits(model: torch.nn.Module) -> None:
    """Some families initialise routers, biases or norms to exactly zero or one; give them
    random values so tests exercise every path (a zero router selects arbitrarily)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() <= 1 or "router" in name or name.endswith("gate.weight") or "sinks" in name:
                param.add_(0.1 * torch.randn(param.shape, generator=gen).to(param.dtype))
            if param.dim() == 3:  # fused expert weights may be uninitialised
                param.copy_(0.05 * torch.randn(param.shape, generator=gen).to(param.dtype))
        for name, buf in model.named_buffers():
            if "correction_bias" in name:
                buf.add_(0.01 * torch.randn(buf.shape, generator=gen))


def tiny_model(family: str = "llama", seed: int = 0, attn: str = "eager", bos: str = "default", **overrides):
    from interp.engine.model import Model

    return Model(tiny_hf(family, seed, attn, **overrides), tiny_tokenizer(), bos=bos,
                 info={"spec": f"tiny-{family}", "family": family})


def save_tiny(model, folder):
    """Save a tiny `Model` (weights and tokenizer) as a folder `interp.load` and the CLI read."""
    model.hf.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    return folder


def transformer_lens_gpt2(model, cls=None):
    """A TransformerLens model with the weights of the tiny GPT-2 `model` (no weight processing,
    eval mode): `cls` is HookedTransformer by default, or e.g. sae-lens' HookedSAETransformer."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

    hf_cfg = model.hf.config
    cfg = HookedTransformerConfig(
        n_layers=hf_cfg.n_layer, d_model=hf_cfg.n_embd, n_heads=hf_cfg.n_head, d_head=hf_cfg.n_embd // hf_cfg.n_head,
        d_mlp=hf_cfg.n_inner, d_vocab=hf_cfg.vocab_size, n_ctx=hf_cfg.n_positions, act_fn="gelu_new",
        normalization_type="LN", eps=hf_cfg.layer_norm_epsilon, positional_embedding_type="standard",
        default_prepend_bos=False, device="cpu",
    )
    tl = (cls or HookedTransformer)(cfg)
    tl.load_state_dict(convert_gpt2_weights(model.hf, cfg), strict=False)
    return tl.eval()
