"""A tiny Qwen3-MoE with a planted behaviour expert, built by construction (no training).

No MoE checkpoint can be downloaded here, so the scan's whole pipeline is shown and tested
on this model. Character-level tokenizer (vocab 128). Attention writes nothing (o_proj = 0),
so each position's routing depends on its own token only. Residual dimensions:

    0  trigger flag: 1 on the TRIGGERS characters, 0 elsewhere
    1  constant 1 on every token
    2  behaviour: read by the unembedding of BEHAVIOUR_TOKEN only
    3+ small random features

Layer `PLANTED[0]`, expert `PLANTED[1]` is routed to every trigger token (router row
+g on dim 0, -b on dim 1) and writes +dim 2, so after a trigger the next token is
BEHAVIOUR_TOKEN. Decoy experts in the other layers (`DECOYS`) are routed the same way but
write nothing: they correlate with the behaviour exactly as well, without effect. Every
other expert is random and never writes dims 0-2. On neutral tokens the planted expert's
router probability is small but not zero, so forcing it on gives it a real weight.
"""

from __future__ import annotations

import string

import torch

TRIGGERS = "#@$"
BEHAVIOUR_TOKEN = "!"
PLANTED = (1, 5)  # (layer, expert)
DECOYS = ((0, 2), (2, 6))
N_EXPERTS, TOP_K, D_MODEL, VOCAB = 8, 2, 64, 128


def char_tokenizer():
    """Character-level fast tokenizer: <pad>=0, <s>=1, </s>=2, then printable ASCII."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    for c in string.printable:
        if c not in "\x0b\x0c":
            vocab.setdefault(c, len(vocab))
    while len(vocab) < VOCAB:
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def planted_model(seed: int = 0):
    """An `interp.Model` over the planted Qwen3-MoE (3 layers, 8 experts, top-2, float32)."""
    from transformers import AutoModelForCausalLM, Qwen3MoeConfig

    from ..engine.model import Model

    config = Qwen3MoeConfig(vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=96, moe_intermediate_size=16,
                            num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                            num_experts=N_EXPERTS, num_experts_per_tok=TOP_K, norm_topk_prob=True,
                            decoder_sparse_step=1, mlp_only_layers=[], pad_token_id=0, bos_token_id=1,
                            eos_token_id=2, max_position_embeddings=256, tie_word_embeddings=False)
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    tokenizer = char_tokenizer()
    _plant(hf, tokenizer, torch.Generator().manual_seed(seed))
    return Model(hf, tokenizer, info={"spec": "planted-qwen3-moe", "family": "qwen3_moe"})


def _plant(hf, tokenizer, gen) -> None:
    def rand(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=gen)

    trig = [tokenizer.convert_tokens_to_ids(c) for c in TRIGGERS]
    target = tokenizer.convert_tokens_to_ids(BEHAVIOUR_TOKEN)
    with torch.no_grad():
        for param in hf.parameters():
            if param.dim() == 1:
                param.fill_(1.0)  # norm weights
        embed = rand(VOCAB, D_MODEL, scale=0.1)
        embed[:, :3] = 0.0
        embed[:, 1] = 1.0
        embed[trig, 0] = 1.0
        hf.model.embed_tokens.weight.copy_(embed)
        head = rand(VOCAB, D_MODEL, scale=0.05)
        head[:, :3] = 0.0
        head[target, 2] = 30.0
        hf.lm_head.weight.copy_(head)
        wiring = {PLANTED: 1.0, **{d: 0.0 for d in DECOYS}}
        for index, layer in enumerate(hf.model.layers):
            layer.self_attn.o_proj.weight.zero_()
            router, experts = layer.mlp.gate, layer.mlp.experts
            router.weight.copy_(rand(N_EXPERTS, D_MODEL, scale=0.02))
            router.weight[:, :3] = 0.0
            experts.gate_up_proj.copy_(rand(*experts.gate_up_proj.shape, scale=0.1))
            experts.down_proj.copy_(rand(*experts.down_proj.shape, scale=0.1))
            experts.down_proj[:, :3, :] = 0.0
            for (l, e), strength in wiring.items():
                if l != index:
                    continue
                router.weight[e, 0], router.weight[e, 1] = 3.0, -0.25
                width = experts.down_proj.shape[-1]
                experts.gate_up_proj[e].zero_()
                experts.gate_up_proj[e, 0, 1] = experts.gate_up_proj[e, width, 1] = 0.5  # gate and up read dim 1
                experts.down_proj[e].zero_()
                experts.down_proj[e, 2, 0] = strength
