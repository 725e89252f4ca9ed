"""Steering with SAE features: edits on an attached SAE's activations, and a feature's decoder
row as a steerlens steering vector (and so as a llama.cpp control vector).

Feature specs (`steerlens generate --sae FOLDER --feature SPEC`, repeatable):

    1234:+8     add 8 x the feature's decoder row (activation + 8; "1234:8" and "1234:-3" too)
    1234=5      clamp: the feature's activation is set to 5 wherever the edit acts
    1234*2      scale the feature's activation by 2

and `--ablate-feature 1234,77` sets activations to zero. Every edit acts on
`<site>.hook_sae_acts_post`, so with sae-lens' linear decoders adding A to feature f adds
A * W_dec[f] to what the model reads at the site (`interp.engine.sae_sites`); clamping and
scaling act on the activation the SAE computed at each position (0 where it does not fire).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from ..engine.edits import Add, Edit, Scale, Set, Zero

_SPEC = re.compile(r"^(\d+)(?::([+-]?[0-9.eE+-]+)|=([+-]?[0-9.eE+-]+)|\*([+-]?[0-9.eE+-]+))$")
VECTOR_SITES = {"hook_resid_post": "layer", "hook_mlp_out": "ffn", "attn.hook_z": "attention"}


@dataclass(frozen=True)
class FeatureEdit:
    """One feature edit: `how` is "add", "clamp", "scale" or "ablate"."""

    feature: int
    how: str
    value: float = 0.0


def parse_feature_spec(spec: str) -> FeatureEdit:
    """'F:+A' / 'F:A' (add), 'F=V' (clamp), 'F*K' (scale) -> FeatureEdit; ValueError otherwise."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise ValueError(f"feature spec '{spec}' not understood: use F:+A (add A x decoder row), F=V (clamp the "
                         "activation to V) or F*K (scale it), e.g. 1234:+8")
    feature, add, clamp, scale = match.groups()
    how, text = ("add", add) if add is not None else ("clamp", clamp) if clamp is not None else ("scale", scale)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"feature spec '{spec}': '{text}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"feature spec '{spec}': the value must be finite")
    return FeatureEdit(int(feature), how, value)


def parse_ablations(specs: list[str]) -> list[FeatureEdit]:
    """'12,40' (repeatable) -> ablate edits; ValueError for anything but feature indices."""
    out = []
    for spec in specs:
        for part in spec.split(","):
            if not part.strip().isdigit():
                raise ValueError(f"--ablate-feature takes feature indices like 12,40; got '{part}'")
            out.append(FeatureEdit(int(part), "ablate"))
    return out


def feature_edits(site: str, d_sae: int, edits: list[FeatureEdit], positions="all") -> list[Edit]:
    """Engine edits on `<site>.hook_sae_acts_post` of an attached SAE with `d_sae` features.
    Raises ValueError for a feature index out of range."""
    acts = f"{site}.hook_sae_acts_post"
    out: list[Edit] = []
    for edit in edits:
        if not 0 <= edit.feature < d_sae:
            raise ValueError(f"feature {edit.feature} out of range: the SAE has features 0..{d_sae - 1}")
        if edit.how == "add":
            one_hot = torch.zeros(d_sae)
            one_hot[edit.feature] = 1.0
            out.append(Add(acts, positions=positions, vector=one_hot, alpha=edit.value))
        elif edit.how == "clamp":
            out.append(Set(acts, positions=positions, dims=[edit.feature], value=edit.value))
        elif edit.how == "scale":
            out.append(Scale(acts, positions=positions, dims=[edit.feature], factor=edit.value))
        else:
            out.append(Zero(acts, positions=positions, dims=[edit.feature]))
    return out


def decoder_vector(model, attachment, feature: int, normalize: bool = False):
    """Feature `feature`'s decoder row as a `steering.vectors.SteeringVector` at the site the
    SAE writes: resid_post -> "layer", resid_pre of layer l -> "layer" at l - 1, mlp_out ->
    "ffn", attn.hook_z -> "attention". Adding it with alpha A equals `--feature F:+A` with the
    error term on (sae-lens' decoders are linear; normalisation-free SAEs). Raises ValueError
    for other sites, out-of-range features or SAEs that rescale activations at run time."""
    from steering.vectors import SteeringVector

    sae = attachment.sae
    if not 0 <= feature < sae.cfg.d_sae:
        raise ValueError(f"feature {feature} out of range: the SAE has features 0..{sae.cfg.d_sae - 1}")
    if getattr(sae.cfg, "normalize_activations", "none") not in ("none", "expected_average_only_in"):
        raise ValueError(f"the SAE rescales activations at run time ({sae.cfg.normalize_activations}); its decoder "
                         "row is not a fixed residual direction")
    site = attachment.out_site
    layer = model.site(site).layer
    suffix = site.split(".", 2)[-1] if layer is not None else site
    if suffix == "hook_resid_pre" and layer and layer > 0:
        kind, layer = "layer", layer - 1
    elif suffix in VECTOR_SITES:
        kind = VECTOR_SITES[suffix]
    else:
        raise ValueError(f"a steering vector acts at resid_post, mlp_out or attn.hook_z; this SAE writes '{site}'")
    row = sae.W_dec[feature].detach().float().cpu().reshape(-1)
    return SteeringVector.from_tensor(row, [layer], model=model, site=kind, normalize=normalize, method="sae_feature",
                                      config={"sae_site": attachment.site, "feature": feature,
                                              "sae": str(getattr(sae.cfg.metadata, "sae_lens_version", "") or "")})
