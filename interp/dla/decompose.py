"""The arithmetic of direct logit attribution: residual decomposition and norm linearisation.

Method: direct logit attribution (the decomposition TransformerLens does with
`decompose_resid / stack_head_results / apply_ln_to_stack / logit_attrs`). The final
residual at a position is

    resid_final = embed (+ pos_embed) + sum_l (attn_out_l + mlp_out_l)
    attn_out_l  = sum_h W_O^h z_h + b_O                     (plain pre-norm families)

and with every norm's divisor `s` frozen at the value cached from the same forward pass a
norm is affine, `norm(x) = C(x) * w_eff / s + b` (`C` centres for LayerNorm and is the
identity for RMSNorm, `w_eff = w`, or `1 + w` for Gemma). Attribution to a direction `d`
therefore pulls `d` back through the norm once, `d_in = C(w_eff * d) / s` (centring is
self-adjoint), and scores each component by `c . d_in`; the norm bias gives a bias term
`b . d`. Sums of these are exact, not approximate: only the interpretation holds `s` fixed.

Deliberate extension for sandwich-norm families (Gemma 2/3, OLMo-2), where each sublayer's
output is normalised before it enters the residual (`attn_out = ln1_post(o_proj(z))`): the
residual contribution of the whole sublayer is captured directly (`hook_attn_out`,
`hook_mlp_out`), and its pieces (heads, the o_proj bias, MLP neurons) are attributed by
pulling the direction back once more through that post norm with its own cached divisor.
Soft-capped logits (Gemma 2) are not linear: everything here attributes the pre-cap value.

All arithmetic runs in float64 (on CPU when the model is on MPS, which has no float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..arch.spec import down_proj_bias, down_proj_weight, get_module, o_proj_bias, o_proj_weight
from .directions import Direction

F64 = torch.float64


def compute_device(model) -> torch.device:
    device = model.device
    return torch.device("cpu") if device.type == "mps" else device


def _norm_path(model, norm: str, layer: int | None) -> str:
    spec = model.spec
    if norm == "ln_final":
        return spec.final_norm
    return f"{spec.layers}.{layer}.{getattr(spec, norm)}"


def pull_back(model, d: torch.Tensor, norm: str, scale: torch.Tensor, layer: int | None = None):
    """Pull direction `d` [..., d_model] back through a norm with frozen divisor `scale` [..., 1].

    Returns (d_in [..., d_model], bias_value [...]) with norm(x) . d == x . d_in + bias_value.
    `norm` is "ln_final", "ln1_post" or "ln2_post".
    """
    module = get_module(model.hf, _norm_path(model, norm, layer))
    weight = getattr(module, "weight", None)
    w_eff = (weight.to(d.device, F64) if weight is not None else torch.ones(d.shape[-1], dtype=F64, device=d.device))
    w_eff = w_eff + model.spec.norm_weight_offset
    d_in = d * w_eff
    if model.spec.norm_kind == "layer":
        d_in = d_in - d_in.mean(-1, keepdim=True)
    d_in = d_in / scale.to(d.device, F64)
    bias = getattr(module, "bias", None)
    bias_value = (d * bias.to(d.device, F64)).sum(-1) if bias is not None else d.new_zeros(d.shape[:-1])
    return d_in, bias_value


def _at(cache, name: str, device) -> torch.Tensor:
    """A captured site as float64 [b, n, ...] (adds the position axis of a 'last' capture)."""
    x = cache[name].to(device, F64)
    return x.unsqueeze(1) if cache.positions == "last" else x


def head_sites(model) -> list[str]:
    """What per-head DLA needs: every layer's z, the final norm divisor, post-attn norm divisors."""
    sites = [f"blocks.{l}.attn.hook_z" for l in range(model.n_layers)] + ["ln_final.hook_scale"]
    if model.spec.ln1_post:
        sites += [f"blocks.{l}.ln1_post.hook_scale" for l in range(model.n_layers)]
    return sites


def final_direction(model, cache, direction: Direction) -> tuple[torch.Tensor, torch.Tensor]:
    """(d_final [b, n, d_model], bias term [b, n]): the direction as seen by the final residual."""
    device = compute_device(model)
    scale = _at(cache, "ln_final.hook_scale", device)  # [b, n, 1]
    vector, bias = direction.per_prompt(scale.shape[0])
    d = vector.to(device, F64)[:, None, :].expand(-1, scale.shape[1], -1)  # [b, n, d_model]
    d_final, norm_bias = pull_back(model, d, "ln_final", scale)
    return d_final, norm_bias + bias.to(device, F64)[:, None]


def sublayer_direction(model, cache, d_final: torch.Tensor, post_norm: str, layer: int):
    """The direction a sublayer's raw output is read along, through its post norm if any."""
    if not getattr(model.spec, post_norm):
        return d_final, torch.zeros(d_final.shape[:-1], dtype=F64, device=d_final.device)
    scale = _at(cache, f"blocks.{layer}.{post_norm}.hook_scale", d_final.device)
    return pull_back(model, d_final, post_norm, scale, layer)


def head_attributions(model, cache, d_final: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head DLA (z_h . W_O^h^T d_attn) and the rest of each attention output (its bias).

    Returns (heads [b, n, L, H], attn_bias [b, n, L]).
    """
    device = d_final.device
    heads, biases = [], []
    for layer in range(model.n_layers):
        d_attn, post_bias = sublayer_direction(model, cache, d_final, "ln1_post", layer)  # [b, n, d_model]
        w_o = o_proj_weight(model.spec, model.hf, layer).to(device, F64)  # [d_model, H * d_head]
        read = (d_attn @ w_o).view(*d_attn.shape[:2], model.n_heads, model.d_head)  # [b, n, H, d_head]
        z = _at(cache, f"blocks.{layer}.attn.hook_z", device)  # [b, n, H, d_head]
        heads.append((z * read).sum(-1))  # [b, n, H]
        b_o = o_proj_bias(model.spec, model.hf, layer)
        bias = d_attn @ b_o.to(device, F64) if b_o is not None else torch.zeros_like(post_bias)
        biases.append(bias + post_bias)
    return torch.stack(heads, 2), torch.stack(biases, 2)


@torch.inference_mode()
def head_dla(model, prompts, direction: Direction, *, chat: bool = False, edits=(), batch_size=None,
             progress: bool | str = False, start=None, shared_prefix: bool = False) -> torch.Tensor:
    """Per-head DLA at the last prompt token, batched: float64 [b, n_layers, n_heads] on CPU.

    One forward pass per batch capturing only z and norm divisors at the last position;
    `edits` (e.g. a head knockout) are applied during that pass. `direction` may hold one
    row per prompt (see `interp.dla.directions.stack_directions`). `start`
    (`interp.engine.resume.StartAt`) runs only the layers from its layer on, the lower heads'
    captures coming from its clean cache (every edit must sit at or above that layer).
    `shared_prefix=True` runs the prompts' common first tokens (a chat header) once
    (`interp.engine.shared_prefix`; edits must act alike on every row and position).
    """
    _, cache = model.run_with_cache(prompts, head_sites(model), positions="last", edits=edits, chat=chat,
                                    logits=None, batch_size=batch_size, progress=progress, start=start,
                                    shared_prefix=shared_prefix)
    return head_dla_from_cache(model, cache, direction)


def head_dla_from_cache(model, cache, direction: Direction) -> torch.Tensor:
    """Per-head DLA from a cache holding `head_sites(model)` at positions="last": [b, L, H]."""
    if cache.positions != "last":
        raise ValueError("head_dla_from_cache needs a cache captured with positions='last'")
    d_final, _ = final_direction(model, cache, direction)
    heads, _ = head_attributions(model, cache, d_final)
    return heads[:, 0].cpu()


@dataclass
class Decomposition:
    """Every component's attribution, float64 on CPU, [b, n] per prompt and position."""

    embed: torch.Tensor  # [b, n]
    pos_embed: torch.Tensor | None  # [b, n] (learned absolute positions only)
    heads: torch.Tensor  # [b, n, L, H]
    attn_bias: torch.Tensor  # [b, n, L] o_proj bias (and post-norm bias) per layer
    attn_out: torch.Tensor  # [b, n, L] whole attention output (a check on heads + attn_bias)
    mlp: torch.Tensor  # [b, n, L]
    neurons: torch.Tensor | None  # [b, n, L, d_mlp], NaN for layers without a dense MLP
    mlp_bias: torch.Tensor | None  # [b, n, L] down_proj bias (and post-norm bias)
    bias: torch.Tensor  # [b, n] final-norm bias . d + unembedding bias . w
    model_value: torch.Tensor  # [b, n] ln_final(resid) . d + bias: the pre-cap logit (difference)
    hf_value: torch.Tensor | None  # [b] the direction's value in the logits HF returned at the last
    #                                prompt token (post-cap where the family soft-caps); token directions only

    @property
    def attributed(self) -> torch.Tensor:  # [b, n]
        total = self.embed + self.heads.sum((-1, -2)) + self.attn_bias.sum(-1) + self.mlp.sum(-1) + self.bias
        return total + self.pos_embed if self.pos_embed is not None else total


def decomposition_sites(model, neurons: bool) -> list[str]:
    sites = ["hook_embed"] + (["hook_pos_embed"] if model.spec.pos_embed else []) + head_sites(model)
    sites.append("ln_final.hook_normalized")
    for layer in range(model.n_layers):
        sites += [f"blocks.{layer}.hook_attn_out", f"blocks.{layer}.hook_mlp_out"]
        if neurons and f"blocks.{layer}.mlp.hook_post" in model.sites(layer):
            sites.append(f"blocks.{layer}.mlp.hook_post")
            if model.spec.ln2_post:
                sites.append(f"blocks.{layer}.ln2_post.hook_scale")
    return sites


def dense_mlp_layers(model) -> list[int]:
    return [l for l in range(model.n_layers) if f"blocks.{l}.mlp.hook_post" in model.sites(l)]


@torch.inference_mode()
def decompose(model, prompts, direction: Direction, *, positions="last", neurons: bool = False, chat: bool = False,
              edits=(), batch_size=None, progress: bool = False) -> Decomposition:
    """Attribute `direction` at `positions` ("last" or a list of ints) to every component."""
    if neurons and not dense_mlp_layers(model):
        raise ValueError(f"neuron attribution needs dense MLPs; {model.spec.family} has only mixture-of-experts "
                         "MLPs (per-layer MLP attribution is still reported)")
    logits, cache = model.run_with_cache(prompts, decomposition_sites(model, neurons), positions=positions,
                                         edits=edits, chat=chat, logits="last", batch_size=batch_size,
                                         progress=progress)
    device = compute_device(model)
    d_final, bias = final_direction(model, cache, direction)  # [b, n, d_model], [b, n]

    def read(name: str) -> torch.Tensor:  # a residual-stream write scored along d_final: [b, n]
        return (_at(cache, name, device) * d_final).sum(-1)

    heads, attn_bias = head_attributions(model, cache, d_final)
    layers = range(model.n_layers)
    attn_out = torch.stack([read(f"blocks.{l}.hook_attn_out") for l in layers], -1)
    mlp = torch.stack([read(f"blocks.{l}.hook_mlp_out") for l in layers], -1)
    normalized = _at(cache, "ln_final.hook_normalized", device)  # [b, n, d_model]
    vector, dir_bias = direction.per_prompt(normalized.shape[0])
    model_value = (normalized * vector.to(device, F64)[:, None]).sum(-1) + dir_bias.to(device, F64)[:, None]
    neuron_attr = mlp_bias = None
    if neurons:
        neuron_attr, mlp_bias = _neuron_attributions(model, cache, d_final)
    pos_embed = read("hook_pos_embed") if model.spec.pos_embed else None
    return Decomposition(
        embed=read("hook_embed").cpu(), pos_embed=None if pos_embed is None else pos_embed.cpu(),
        heads=heads.cpu(), attn_bias=attn_bias.cpu(), attn_out=attn_out.cpu(), mlp=mlp.cpu(),
        neurons=None if neuron_attr is None else neuron_attr.cpu(),
        mlp_bias=None if mlp_bias is None else mlp_bias.cpu(), bias=bias.cpu(), model_value=model_value.cpu(),
        hf_value=direction.value_from_logits(logits).cpu() if direction.tokens else None,
    )


def _neuron_attributions(model, cache, d_final: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Neuron n of layer l: post_n * (W_down[:, n] . d_mlp). Returns ([b, n, L, d_mlp], [b, n, L])."""
    device = d_final.device
    dense = dense_mlp_layers(model)
    width = max(down_proj_weight(model.spec, model.hf, l).shape[1] for l in dense)
    nan = torch.full((*d_final.shape[:2], width), float("nan"), dtype=F64, device=device)
    neurons, biases = [], []
    for layer in range(model.n_layers):
        if layer not in dense:
            neurons.append(nan)
            biases.append(nan[..., 0])
            continue
        d_mlp, post_bias = sublayer_direction(model, cache, d_final, "ln2_post", layer)  # [b, n, d_model]
        w_down = down_proj_weight(model.spec, model.hf, layer).to(device, F64)  # [d_model, d_mlp]
        post = _at(cache, f"blocks.{layer}.mlp.hook_post", device)  # [b, n, d_mlp]
        values = post * (d_mlp @ w_down)  # [b, n, d_mlp]
        neurons.append(torch.nn.functional.pad(values, (0, width - values.shape[-1]), value=float("nan")))
        b_down = down_proj_bias(model.spec, model.hf, layer)
        biases.append((d_mlp @ b_down.to(device, F64) if b_down is not None else 0.0) + post_bias)
    return torch.stack(neurons, 2), torch.stack(biases, 2)
