"""What SAE features do to the logits: direct logit effect, per-prompt feature DLA, AtP.

- `residual_directions(model, attachment)`: each feature's decoder row as the residual
  direction it writes, [d_sae, d_model] (through W_O for an `attn.hook_z` SAE, W_down for
  `mlp.hook_post`; residual-width sites as they are).
- `logit_effect(model, attachment, feature)`: that direction through the final norm's
  weight (and centring for LayerNorm, divisor 1) and the unembedding: [vocab] logits per unit
  of activation, with top / bottom tokens. Neuronpedia's "top positive / negative logits".
- `feature_dla(model, prompts, attachment, direction)`: direct logit attribution of every
  feature on a logit (difference) at each prompt's last token, reusing `interp.dla`'s
  decomposition: the direction is pulled back through the final norm with the divisor of
  the same pass (`interp.dla.decompose.final_direction`), and through the post norm of a
  sandwich sublayer. Feature f scores acts_f * (W_dec[f] . d). With the error and b_dec
  terms, the features sum to the site's own DLA (the identity the tests check).
- `feature_atp(model, prompts, attachment, direction, corrupt=None)`: attribution patching
  over features (Syed et al. 2023, "Attribution Patching Outperforms Automated Circuit
  Discovery"; Marks et al. 2024 "Sparse Feature Circuits" section 2): one forward and one
  backward pass give d metric / d acts, and feature f scores grad_f . (acts'_f - acts_f)
  summed over positions, where acts' is 0 (zero ablation) or the corrupt prompts' activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..arch.spec import down_proj_weight, get_module, o_proj_weight, unembed_weight
from ..dla.decompose import F64, final_direction
from ..dla.directions import Direction
from ..engine.gradients import run_with_grads


def residual_directions(model, attachment) -> torch.Tensor:
    """[d_sae, d_model] float64: what one unit of each feature adds to the residual stream.
    Raises ValueError for an SAE whose output site is not linear in the residual."""
    site = model.site(attachment.out_site)
    w_dec = attachment.sae.W_dec.detach().to(F64)
    suffix = site.name.split(".", 2)[-1] if site.layer is not None else site.name
    if suffix in ("hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out") or site.name == "hook_embed":
        return w_dec.to(model.device)
    if suffix == "attn.hook_z" and not model.spec.ln1_post:
        return w_dec.to(model.device) @ o_proj_weight(model.spec, model.hf, site.layer).to(F64).T
    if suffix == "mlp.hook_post" and not model.spec.ln2_post:
        return w_dec.to(model.device) @ down_proj_weight(model.spec, model.hf, site.layer).to(F64).T
    raise ValueError(f"the SAE writes '{site.name}', which does not add linearly to the residual stream here; "
                     "use an SAE on resid, attn_out, mlp_out (or hook_z / mlp.hook_post without post-norms)")


@dataclass
class LogitEffect:
    """Logits per unit activation of one feature, and its extreme tokens."""

    feature: int
    logits: torch.Tensor  # [vocab] float64
    top: list  # [(token id, text, logit)] highest first
    bottom: list  # [(token id, text, logit)] lowest first


def logit_effect(model, attachment, feature: int, k: int = 10) -> LogitEffect:
    """Feature `feature`'s decoder row through the final norm weight and W_U (module docstring)."""
    d_sae = attachment.sae.cfg.d_sae
    if not 0 <= feature < d_sae:
        raise ValueError(f"feature {feature} out of range: the SAE has features 0..{d_sae - 1}")
    return logit_effects(model, attachment, [feature], k)[0]


def logit_effects(model, attachment, features, k: int = 10) -> list[LogitEffect]:
    rows = residual_directions(model, attachment)[list(features)]  # [n, d_model]
    norm = get_module(model.hf, model.spec.final_norm)
    weight = getattr(norm, "weight", None)
    w_eff = (weight.to(rows.device, F64) if weight is not None else torch.ones_like(rows[0])) + model.spec.norm_weight_offset
    if model.spec.norm_kind == "layer":
        rows = rows - rows.mean(-1, keepdim=True)
    logits = (rows * w_eff) @ unembed_weight(model.spec, model.hf).to(rows.device, F64).T  # [n, vocab]
    out = []
    for feature, row in zip(features, logits):
        order = torch.argsort(row, descending=True)
        out.append(LogitEffect(int(feature), row.cpu(), _tokens(model, row, order[:k]), _tokens(model, row, order.flip(0)[:k])))
    return out


def _tokens(model, row: torch.Tensor, ids: torch.Tensor) -> list:
    return [(int(i), model.tokenizer.decode([int(i)]), float(row[i])) for i in ids]


@dataclass
class FeatureDLA:
    """Per-prompt feature DLA at the last token (float64, CPU)."""

    features: torch.Tensor  # [N, d_sae] acts_f * (W_dec[f] . d)
    b_dec: torch.Tensor  # [N] the decoder bias's share
    error: torch.Tensor  # [N] the SAE error's share
    site_total: torch.Tensor  # [N] the whole site's DLA: x . d (features + b_dec + error)
    bias: torch.Tensor  # [N] final-norm and unembedding biases' share (site_total + bias = the logit
    #                     value when the SAE sits on the last layer's resid_post)
    acts: torch.Tensor  # [N, d_sae] activations at the last token


@torch.inference_mode()
def feature_dla(model, prompts, attachment, direction: Direction, *, chat: bool = False) -> FeatureDLA:
    """Feature DLA on `direction` (an `interp.dla.directions.Direction`, e.g. `token_direction(
    model, " Paris", " London")`) at each prompt's last token."""
    rows = residual_directions(model, attachment)  # [d_sae, d_model]
    base = attachment.site
    names = ["ln_final.hook_scale", f"{base}.hook_sae_acts_post", f"{base}.hook_sae_error", f"{base}.hook_sae_output"]
    _, cache = model.run_with_cache(prompts, names, positions="last", chat=chat, logits=None)
    d_final, bias = final_direction(model, cache, direction)  # [b, 1, d_model], [b, 1]
    d = d_final[:, 0]  # [b, d_model]
    acts = cache[f"{base}.hook_sae_acts_post"].to(d.device, F64)  # [b, d_sae]
    per_unit = d @ rows.T  # [b, d_sae]
    features = acts * per_unit
    sae = attachment.sae
    to_resid = _to_residual(model, attachment)
    b_dec = d @ to_resid(sae.b_dec.detach().to(d.device, F64))  # [b]
    error = (to_resid(cache[f"{base}.hook_sae_error"].to(d.device, F64).flatten(1)) * d).sum(-1)
    total = (to_resid(cache[f"{base}.hook_sae_output"].to(d.device, F64).flatten(1)) * d).sum(-1)
    return FeatureDLA(features.cpu(), b_dec.cpu(), error.cpu(), total.cpu(), bias[:, 0].cpu(), acts.cpu())


def _to_residual(model, attachment):
    site = model.site(attachment.out_site)
    suffix = site.name.split(".", 2)[-1] if site.layer is not None else site.name
    if suffix == "attn.hook_z":
        w = o_proj_weight(model.spec, model.hf, site.layer).to(F64)
        return lambda x: x.to(w.device) @ w.T
    if suffix == "mlp.hook_post":
        w = down_proj_weight(model.spec, model.hf, site.layer).to(F64)
        return lambda x: x.to(w.device) @ w.T
    return lambda x: x


def logit_difference_metric(direction: Direction):
    """metric(logits [b, k, V]) -> [b]: the direction's value at the last column (token directions)."""
    def metric(logits):
        ids = torch.tensor([t for t, _ in direction.tokens], device=logits.device)
        weights = torch.tensor([w for _, w in direction.tokens], dtype=logits.dtype, device=logits.device)
        return logits[:, -1][:, ids] @ weights
    return metric


def feature_atp(model, prompts, attachment, direction: Direction, corrupt=None, *, chat: bool = False) -> torch.Tensor:
    """AtP scores [N, d_sae] (float64, CPU) of every feature on the direction's logit value.
    `corrupt`: prompts of the same token lengths as `prompts` (their activations are the patch
    source); None: zero ablation. Raises ValueError for a free-vector direction."""
    if not direction.tokens:
        raise ValueError("feature AtP needs a token direction (a logit or logit difference)")
    acts_name = f"{attachment.site}.hook_sae_acts_post"
    batch = model.tokenize(prompts, chat=chat)
    _, acts, grads = run_with_grads(model, batch, [acts_name], logit_difference_metric(direction), logits_to_keep=1)
    clean = acts[acts_name]
    real = batch.attention_mask.to(clean.device).bool()[..., None]
    if corrupt is None:
        patched = torch.zeros_like(clean)
    else:
        other = model.tokenize(corrupt, chat=chat)
        if other.attention_mask.shape != batch.attention_mask.shape or not torch.equal(other.attention_mask,
                                                                                        batch.attention_mask):
            raise ValueError("corrupt prompts must have the same token lengths as the clean prompts, row by row")
        _, cache = model.run_with_cache(corrupt, [acts_name], chat=chat, logits=None)
        patched = cache[acts_name].to(clean.device)
    scores = (grads[acts_name].double() * (patched.double() - clean.double()) * real).sum(1)
    return scores.cpu()


__all__ = ["FeatureDLA", "LogitEffect", "feature_atp", "feature_dla", "logit_effect", "logit_effects",
           "logit_difference_metric", "residual_directions"]
