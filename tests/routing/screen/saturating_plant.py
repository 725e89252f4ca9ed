"""A planted gate whose effect saturates (issue 38): AtP sees almost nothing, the exact patch a lot.

`saturating_model()` is a 2-layer tiny Llama (4 heads, tanh MLP with biases) with hand-set
weights on top of small noise:

- the token 'X' (the "harmful" feature) has a large embedding coordinate 0;
- the gate, head 0.1, reads coordinate 0 through its value and writes residual coordinate 1;
- layer 0's MLP has one planted unit, tanh(GAIN * coordinate 1) (its up projection is the
  constant 1 from its bias), written to coordinate 2, which lowers the logits of the
  continuation 'ok' and raises 'R'. Harmful prompts drive the unit into saturation
  (tanh ~ 1, gradient ~ 0); on benign ones coordinate 1 is ~0, the unit's linear range;
- a decoy, head 1.2, reads coordinate 0 and writes a small push on coordinate 2 directly:
  a linear, modest effect that a first-order estimate measures correctly.

So the exact screen names the gate, first by far; AtP's necessity estimate of the gate is
~0 (the saturated unit's gradient) and its top head is the decoy; integrated gradients walk
the path through the unit's linear range and rank the gate first again.
"""

from __future__ import annotations

import torch

from interp.engine.model import Model
from routing_plant import GATE, continuation_readout, noisy_gate_weights  # noqa: F401  (GATE: the same head)
from tiny import tiny_hf, tiny_tokenizer

DECOY = (1, 2)
GAIN = 1.5
UNIT = 0  # the planted MLP unit of layer 0


def saturating_model(seed: int = 0) -> Model:
    hf = tiny_hf("llama", seed=seed, num_hidden_layers=2, num_key_value_heads=4, hidden_act="tanh", mlp_bias=True)
    tok = tiny_tokenizer()
    gen = torch.Generator().manual_seed(seed)
    d = 16  # head_dim
    with torch.no_grad():
        layers = noisy_gate_weights(hf, tok, gen)
        mlp = layers[0].mlp
        mlp.gate_proj.weight[UNIT] = 0.0
        mlp.gate_proj.weight[UNIT, 1] = GAIN
        mlp.up_proj.weight[UNIT] = 0.0
        mlp.up_proj.bias[UNIT] = 1.0
        mlp.down_proj.weight[:, UNIT] = 0.0
        mlp.down_proj.weight[2, UNIT] = 6.0
        for l in range(2):  # nothing else writes the coordinates the plant uses
            layers[l].mlp.down_proj.weight[:3, 1:] = 0.0
        layers[1].self_attn.v_proj.weight[DECOY[1] * d, 0] = 1.0
        layers[1].self_attn.o_proj.weight[2, DECOY[1] * d] = 10.0
        continuation_readout(hf, tok, gen)
    return Model(hf, tok, info={"spec": "planted-saturating-gate", "family": "llama"})
