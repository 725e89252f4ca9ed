"""Small random sae-lens SAEs for the SAE-site tests (seeded, non-degenerate weights)."""

from __future__ import annotations

import torch


def random_sae(d_in: int, hook_name: str | None, d_sae: int = 96, kind: str = "standard", seed: int = 0, **cfg):
    """A sae-lens inference SAE of architecture `kind` with random weights where most
    features fire on some token (biases drawn around zero, thresholds small)."""
    from sae_lens import saes

    classes = {"standard": (saes.StandardSAE, saes.StandardSAEConfig),
               "topk": (saes.TopKSAE, saes.TopKSAEConfig),
               "jumprelu": (saes.JumpReLUSAE, saes.JumpReLUSAEConfig),
               "gated": (saes.GatedSAE, saes.GatedSAEConfig),
               "transcoder": (saes.Transcoder, saes.TranscoderConfig)}
    sae_class, cfg_class = classes[kind]
    if kind == "topk":
        cfg.setdefault("k", 8)
    if kind == "transcoder":
        cfg.setdefault("apply_b_dec_to_input", False)
    config = cfg_class(d_in=d_in, d_sae=d_sae, **cfg)
    if hook_name is not None:
        config.metadata.hook_name = hook_name
    sae = sae_class(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sae.named_parameters():
            if name == "threshold":
                param.copy_(torch.rand(param.shape, generator=gen) * 0.05)
            elif name == "log_threshold":
                param.copy_(torch.log(torch.rand(param.shape, generator=gen) * 0.05 + 1e-3))
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * (0.2 if param.ndim > 1 else 0.05))
    return sae
