"""The reference interchange: one forward pass per (head, pair, direction), batch size 1.

One forward pass per patch, as the authors' code runs it (gregfrank/how-alignment-routes,
src/routing_head_ablation.py), though with our alignments: only align="paper" patches the
positions their code patches (docs/fidelity/routing.md). Written with the engine's own
`Patch` edit on `blocks.{l}.attn.hook_z` (heads=[h]); it shares no alignment code with the batched screen
(`Patch` maps donor positions itself), so the tests and `tests/benchmarks/bench_interchange.py`
use it to check the batched screen. Donor `z` is cached once per prompt; even so a full
screen costs 2 * n * L * H forwards of the whole model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...engine.edits import Patch
from .metric import continuation_nll
from .pairs import BENIGN, HARM, PairTokens


@torch.inference_mode()
def donor_cache(model, tokens: PairTokens, pair: int, member: int, layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """{layer: z [1, L_prompt + K, H, d]} of one clean pass over a prompt and its continuation."""
    batch, _ = tokens.batch([(pair, member)])
    sites = [f"blocks.{layer}.attn.hook_z" for layer in layers]
    _, cache = model.run_with_cache(batch, sites, logits=None)
    return {layer: cache[site] for layer, site in zip(layers, sites)}


@torch.inference_mode()
def naive_patched_nll(model, tokens: PairTokens, pair: int, base: int, layer: int, heads: Sequence[int],
                      align: str, donor: dict[int, torch.Tensor] | None = None) -> float:
    """NLL of pair `pair`'s member `base` with `heads` of `layer` patched from the other member.

    `donor` is the other member's `donor_cache` (computed here when not given). With
    align="left" only the donor's prompt tokens are offered (base positions past the donor
    prompt stay unpatched); with "right" the shared continuation makes the engine's
    last-token alignment line up the two prompts' last tokens. Only base prompt positions
    after the pair's shared prefix are edited, and with "right" the donor's shared prefix is
    marked absent (`donor_mask`), so no base position reaches into it. With "paper" the
    donor's prompt tokens are offered from the start over the base's prompt and continuation
    (positions up to the shorter of base prompt + continuation and donor prompt).
    """
    other = HARM if base == BENIGN else BENIGN
    site = f"blocks.{layer}.attn.hook_z"
    donor_z = (donor or donor_cache(model, tokens, pair, other, [layer]))[layer]
    shared = tokens.shared_prefix(pair)
    if align in ("left", "paper"):
        donor_z = donor_z[:, : tokens.prompt_len(pair, other)]
    donor_mask = torch.ones(donor_z.shape[:2], dtype=torch.bool)
    if align == "right":
        donor_mask[0, :shared] = False
    base_batch, cont = tokens.batch([(pair, base)])
    where = torch.zeros_like(base_batch.attention_mask, dtype=torch.bool)
    end = tokens.prompt_len(pair, base) + (int(cont.sum()) if align == "paper" else 0)
    where[0, shared: end] = True
    edit = Patch(site, positions=where, heads=list(heads), donor=donor_z, donor_mask=donor_mask,
                 align="left" if align == "paper" else align)
    logits = model.forward(base_batch, edits=[edit])
    return float(continuation_nll(logits, base_batch.input_ids, cont)[0])


@torch.inference_mode()
def naive_clean_nll(model, tokens: PairTokens, pair: int, member: int) -> float:
    batch, cont = tokens.batch([(pair, member)])
    return float(continuation_nll(model.forward(batch), batch.input_ids, cont)[0])


def naive_screen(model, tokens: PairTokens, heads: Sequence[tuple[int, int]], align: str,
                 progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(necessity [H, n], sufficiency [H, n]) in nats, one forward per patch."""
    from tqdm.auto import tqdm

    n = tokens.n
    layers = sorted({layer for layer, _ in heads})
    nec = torch.zeros(len(heads), n, dtype=torch.float64)
    suf = torch.zeros(len(heads), n, dtype=torch.float64)
    for i in tqdm(range(n), desc="naive interchange", disable=not progress, leave=False):
        harm, benign = naive_clean_nll(model, tokens, i, HARM), naive_clean_nll(model, tokens, i, BENIGN)
        from_benign, from_harm = (donor_cache(model, tokens, i, m, layers) for m in (BENIGN, HARM))
        for row, (layer, head) in enumerate(heads):
            nec[row, i] = harm - naive_patched_nll(model, tokens, i, HARM, layer, [head], align, from_benign)
            suf[row, i] = naive_patched_nll(model, tokens, i, BENIGN, layer, [head], align, from_harm) - benign
    return nec, suf
