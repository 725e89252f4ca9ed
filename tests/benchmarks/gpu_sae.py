"""gpu_check's sae_features part: SAE feature capture through the engine's SAE sites.

One standard SAE with random weights (d_sae = 16 x d_model; `--tiny`: 4 x) is attached
with the error term on at the middle `hook_resid_post` of the Qwen2.5-0.5B shape, and
`S.hook_sae_acts_post` is captured at batch 8 and 32 (`--tiny`: 2 and 4), timed against a
plain forward and against capturing the bare site without the SAE, from the same run.
Exactness, checked in the same pass:
- the captured features equal `sae.encode` of the captured site (max abs difference);
- the last-position logits with the SAE attached (capture only) equal those without it
  (the engine's contract: bit-equal, so max abs should be 0).

The SAE sites run on sae-lens' own hook points (`interp.engine.sae_sites`), so the part
needs sae-lens. A GPU machine without it (sae-lens pulls datasets, pyarrow and wandb, more
than the 64 MiB the checkout may carry) reports the part as skipped and says why.
"""

from __future__ import annotations

import importlib.util

import torch
from gpu_parts import Context, build, diff, prompts, timed


def sae_features(ctx: Context, out: dict) -> None:
    """Capture of one SAE's feature activations vs a plain forward and vs the bare site."""
    if importlib.util.find_spec("sae_lens") is None:
        out.update(status="skipped", measured=False,
                   reason="sae-lens is not installed here; the SAE sites run on its hook points")
        return
    from sae_fixtures import random_sae

    model = build(ctx, "qwen2.5-0.5b", torch.bfloat16 if ctx.cuda else torch.float32)
    site = f"blocks.{model.n_layers // 2}.hook_resid_post"
    width = (4 if ctx.tiny else 16) * model.d_model
    sae = random_sae(model.d_model, site, d_sae=width).to(ctx.device, model.dtype)
    repeats = 1 if ctx.tiny else 3
    length = 32 if ctx.tiny else 128
    out.update(site=site, d_sae=width, dtype=str(model.dtype).replace("torch.", ""), measured=True)
    for size in (2, 4) if ctx.tiny else (8, 32):
        out[f"batch_{size}"] = _capture_at(ctx, model, sae, site, size, length, repeats)


def _capture_at(ctx: Context, model, sae, site: str, size: int, length: int, repeats: int) -> dict:
    """One batch size: plain forward, bare site, SAE features (attached for this call only)."""
    name = f"{site}.hook_sae_acts_post"
    texts = prompts(size, length, seed=10 + size, spread=0.0)
    n_tokens = int(model.tokenize(texts).attention_mask.sum())
    (plain_logits, _), plain_s = timed(ctx, lambda: model.run_with_cache(texts, [], batch_size=size), repeats)
    (_, bare), bare_s = timed(ctx, lambda: model.run_with_cache(texts, [site], logits=None, batch_size=size), repeats)
    with model.attach_sae(sae):
        (logits, cache), sae_s = timed(ctx, lambda: model.run_with_cache(texts, [name], batch_size=size), repeats)
    with torch.inference_mode():
        encoded = sae.encode(bare[site].to(ctx.device))
    return {
        "tokens": n_tokens, "plain_tokens_per_s": n_tokens / plain_s, "sae_tokens_per_s": n_tokens / sae_s,
        "sae_capture_vs_plain": sae_s / plain_s, "bare_site_vs_plain": bare_s / plain_s,
        "features_vs_encode": diff(cache[name], encoded), "logits_with_vs_without_sae": diff(logits, plain_logits),
    }
