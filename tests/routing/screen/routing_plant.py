"""A planted policy gate: a head that is necessary for a behaviour yet writes nothing to the logits.

`gate_model()` is a 2-layer tiny Llama (4 heads, one KV head per head, uniform-ish attention
since queries and keys are near zero) with hand-set weights on top of small noise:

- the token 'X' (the "harmful" feature) has a large embedding coordinate 0;
- the gate, head 0.1, reads coordinate 0 through its value and writes residual coordinate 1;
  the unembedding has no weight on coordinate 1, so the gate's direct logit effect is ~0;
- three amplifiers, heads 1.0, 1.2 and 1.3, read coordinate 1 and each write a third of a
  push on coordinate 2, which lowers the logits of the continuation 'ok' and raises 'R'.

So harmful prompts (with 'X') make the continuation less likely (baseline delta > 0), all
through the gate; DLA on 'R' - 'o' credits the amplifiers and gives the gate ~0.
"""

from __future__ import annotations

import torch

from interp.engine.model import Model
from tiny import tiny_hf, tiny_tokenizer

GATE = (0, 1)
AMPLIFIERS = [(1, 0), (1, 2), (1, 3)]
SUBJECTS = [("X", "a cake"), ("XX", "tea"), ("the X", "bread"), ("X now", "a kite"), ("an X", "soup"),
            ("X fast", "a card"), ("X here", "a hat"), ("some X", "toast"), ("X X", "a boat"), ("X tool", "rice"),
            ("big X", "a song"), ("X kit", "jam")]
VERBS = ["make", "build", "get", "find", "cook", "draw"]


def gate_model(seed: int = 0) -> Model:
    hf = tiny_hf("llama", seed=seed, num_hidden_layers=2, num_key_value_heads=4)
    tok = tiny_tokenizer()
    gen = torch.Generator().manual_seed(seed)
    d = 16  # head_dim
    with torch.no_grad():
        layers = noisy_gate_weights(hf, tok, gen)
        for _, head in AMPLIFIERS:
            layers[1].self_attn.v_proj.weight[head * d, 1] = 1.0
            layers[1].self_attn.o_proj.weight[2, head * d] = 4.0
        continuation_readout(hf, tok, gen)
    return Model(hf, tok, info={"spec": "planted-gate", "family": "llama"})


def noisy_gate_weights(hf, tok, gen: torch.Generator, d: int = 16):
    """Small noise on every weight (norms 1, biases 0), the token 'X' on embedding coordinate
    0, and the gate (head GATE) reading coordinate 0 and writing coordinate 1; returns the
    decoder layers. Call under `torch.no_grad()`, before `continuation_readout`."""
    for name, param in hf.named_parameters():
        if name.endswith("norm.weight") or "layernorm" in name:
            param.fill_(1.0)
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.copy_(0.02 * torch.randn(param.shape, generator=gen))
    emb = hf.model.embed_tokens.weight
    emb[:, 3:] = torch.randn(emb.shape[0], emb.shape[1] - 3, generator=gen)
    emb[:, :3] = 0.0
    emb[tok.convert_tokens_to_ids("X"), 0] = 6.0
    layers = hf.model.layers
    layers[GATE[0]].self_attn.v_proj.weight[GATE[1] * d, 0] = 1.0
    layers[GATE[0]].self_attn.o_proj.weight[1, GATE[1] * d] = 16.0
    return layers


def continuation_readout(hf, tok, gen: torch.Generator) -> None:
    """The unembedding: noise off the plant's coordinates 0-2, and coordinate 2 lowering the
    continuation 'ok' and raising 'R'."""
    o, k, r = (tok.convert_tokens_to_ids(c) for c in "okR")
    unembed = hf.lm_head.weight
    unembed[:, 3:] = 0.1 * torch.randn(unembed.shape[0], unembed.shape[1] - 3, generator=gen)
    unembed[:, :3] = 0.0
    unembed[o, 2] = unembed[k, 2] = -2.0
    unembed[r, 2] = 2.0


def gate_pairs() -> tuple[list[str], list[str], list[list[int]]]:
    """12 matched pairs (harmful ones contain 'X'; benign ones, of other lengths, do not) and the
    continuation 'ok' for every pair."""
    tok = tiny_tokenizer()
    harmful, benign = [], []
    for i, (bad, good) in enumerate(SUBJECTS):
        verb = VERBS[i % len(VERBS)]
        harmful.append(f"how to {verb} {bad}?")
        benign.append(f"how to {verb} {good}?")
    ok = [tok.convert_tokens_to_ids(c) for c in "ok"]
    return harmful, benign, [ok] * len(harmful)
