"""Standard SAE diagnostics (SAELens / SAEBench conventions) on step activations.

- FVU, fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2.
- L0: mean number of non-zero latents per step; dead latents: never non-zero on any step
  of the data set (the window is the whole collected set), in percent.
- Decoder geometry: the maximum cosine between two distinct decoder columns, and the mean
  over columns of each one's nearest-neighbour cosine (duplicates show as values near 1).
- CE loss recovered: next-token cross-entropy of the model over the responses with the
  SAE's reconstruction spliced in at the layer (through an engine edit at the step-end
  tokens, the SAE's domain), against the clean pass and against zero-ablating the same
  positions: (CE_zero - CE_sae) / (CE_zero - CE_clean); 1 = as good as clean.
- `health_warning`: one line when the SAE is dense (L0 above 20% of the dictionary: close
  to an identity map, its latents mean no behaviour) or mostly dead (over half the
  latents never fire).
"""

from __future__ import annotations

import torch

from interp.engine.edits import Fn, Zero
from interp.engine.tokens import pad_rows


@torch.no_grad()
def encode(sae, acts: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Latent activations [n, d_sae] of `acts` [n, d_in]."""
    return torch.cat([sae.encode(acts[i:i + chunk].to(sae.W_dec.dtype)) for i in range(0, len(acts), chunk)])


@torch.no_grad()
def reconstruction_stats(sae, acts: torch.Tensor) -> dict:
    """{fvu, l0, dead_pct, max_decoder_cos, mean_max_decoder_cos} of `sae` on `acts` [n, d_in]."""
    latents = encode(sae, acts)
    recon = torch.cat([sae.decode(latents[i:i + 4096]) for i in range(0, len(latents), 4096)])
    fvu = float((recon - acts).pow(2).sum() / (acts - acts.mean(0)).pow(2).sum().clamp_min(1e-12))
    fired = (latents > 0)
    dec = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = dec @ dec.T
    cos.fill_diagonal_(-1.0)
    nearest = cos.max(1).values
    return {"fvu": fvu, "l0": float(fired.float().sum(1).mean()), "dead_pct": 100.0 * float((~fired.any(0)).float().mean()),
            "max_decoder_cos": float(nearest.max()), "mean_max_decoder_cos": float(nearest.mean()),
            "n_steps": int(len(acts)), "d_sae": int(latents.shape[1])}


DENSE_L0_FRACTION = 0.2  # L0 above this share of the dictionary: a dense SAE
DEAD_FRACTION = 0.5  # more than this share of latents never firing: a mostly dead SAE


def health_warning(stats: dict, layer: int | str) -> str | None:
    """One line when `stats` (`reconstruction_stats`) show a dense or mostly dead SAE, else None."""
    problems = []
    if stats["l0"] > DENSE_L0_FRACTION * stats["d_sae"]:
        problems.append(f"dense (L0 {stats['l0']:.0f} of {stats['d_sae']} latents, "
                        f"{100 * stats['l0'] / stats['d_sae']:.0f}% > {100 * DENSE_L0_FRACTION:.0f}%)")
    if stats["dead_pct"] > 100 * DEAD_FRACTION:
        problems.append(f"mostly dead ({stats['dead_pct']:.0f}% of latents never fire, > {100 * DEAD_FRACTION:.0f}%)")
    if not problems:
        return None
    fix = ("train sparser (--architecture topk with a smaller --k, or a larger --l1-coefficient)"
           if stats["l0"] > DENSE_L0_FRACTION * stats["d_sae"]
           else "collect more steps (--n), train longer or use a smaller --d-sae")
    return f"layer {layer} SAE is {' and '.join(problems)}; {fix} (see docs/rise.md)"


@torch.no_grad()
def ce_recovered(model, sae, site: str, encoded: list[tuple[list[int], list[int]]], prompt_tokens: list[int],
                 batch_size: int = 2, max_tokens: int = 1024) -> dict:
    """{ce_clean, ce_sae, ce_zero, ce_recovered} over response tokens (nats per token).

    `encoded` holds (token ids, step-end token indices) per trace, `prompt_tokens` the
    number of prompt tokens of each (loss counts tokens after the prompt)."""
    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    count = 0
    dtype = sae.W_dec.dtype
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        ids = [torch.tensor(e[0][:max_tokens]) for e in chunk]
        batch = pad_rows(ids, [""] * len(ids), False, model.tokenizer.pad_token_id)
        width = batch.input_ids.shape[1]
        mask = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
        target = torch.zeros(len(ids), width - 1, dtype=torch.bool)  # over predictions: q predicts q + 1
        for b, (row, (_, ends)) in enumerate(zip(ids, chunk)):
            pad = width - len(row)
            for pos in ends:
                if pos < len(row):
                    mask[b, pad + pos] = True
            target[b, pad + max(prompt_tokens[start + b], 1) - 1:] = True  # predictions of response tokens
        splice = Fn(site, positions=mask, fn=lambda x, hook: sae(x.to(dtype)).to(x.dtype))
        for name, edits in (("clean", []), ("sae", [splice]), ("zero", [Zero(site, positions=mask)])):
            logits = model.forward(batch, edits=edits).float()
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), batch.input_ids[:, 1:].to(logits.device),
                                                    reduction="none")
            totals[name] += float(nll[target.to(nll.device)].sum())
        count += int(target.sum())
    ce = {k: v / max(count, 1) for k, v in totals.items()}
    gap = ce["zero"] - ce["clean"]
    return {"ce_clean": ce["clean"], "ce_sae": ce["sae"], "ce_zero": ce["zero"],
            "ce_recovered": (ce["zero"] - ce["sae"]) / gap if abs(gap) > 1e-12 else float("nan"), "ce_tokens": count}
