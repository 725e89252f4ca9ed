"""`screen_heads`: the interchange screen of every head, fast and exact (issue 14).

arXiv 2604.04385, step 3, with AtP (Kramár et al. 2024) as the fast estimate.
Per pair i, necessity(h) =
NLL(harm_i) - NLL(harm_i | z_h <- z_h(benign_i)) and sufficiency(h) =
NLL(benign_i | z_h <- z_h(harm_i)) - NLL(benign_i), NLL = mean nats per token of the pair's
fixed continuation after the prompt, the patch covering the prompt positions under
`config.align`. Methods:

- "exact": every head by batched exact interchange (`batched.py`);
- "atp": every head by attribution patching only (`atp.py`); no p-values;
- "ig": every head by integrated gradients (`ig.py`, `ig_steps` points per path); no p-values;
- "atp+exact" (default) and "ig+exact": the estimate for every head, then the `verify` heads
  with the largest max(|necessity|, |sufficiency|) estimate, every head whose two estimates
  differ 10x or more in magnitude (a saturated unit hides one of them from a gradient; the
  larger must reach 1% of the baseline gap), and `verify_random` others drawn at random
  (seeded) are measured exactly. p-values and the bootstrap use the exact per-pair scores
  only; the Spearman correlation of the estimate and exact necessity over the exactly
  measured heads, how many of the exact top-k the estimate's top-k missed, and whether the
  exact gate was outside the estimate's top `verify` (`HeadScreen.fast_rank_warning`) say how
  far the estimate can be trusted.

Each head's p is a sign-flip permutation p over pairs; `p_family` is its Westfall-Young
family-wise p over all exactly measured heads, from the same sign flips (`stats.py`).

Work runs in chunks of pairs with a tqdm bar; with `checkpoint_dir` every finished chunk is
saved and a rerun resumes from them (`checkpoint.py`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ...engine.batching import resolve_batch_size
from ...engine.provenance import provenance
from ...runs.results import RunMeta
from .atp import atp_scores
from .batched import exact_scores
from .checkpoint import Checkpoint, fingerprint
from .config import FAST, ScreenConfig
from .ig import ig_scores
from .pairs import check_continuations, tokenize_pairs
from .result import HeadScreen
from .stats import bootstrap_topk_jaccard, sign_flip_pvalues, spearman, top_k
from .verify import verification_rows

ScoreFn = Callable[[list[int]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def screen_heads(model, harmful: Sequence[str], benign: Sequence[str], continuations: Sequence[Sequence[int]],
                 config: ScreenConfig | None = None, *, chat: bool = True, progress: bool = True,
                 checkpoint_dir: str | Path | None = None) -> HeadScreen:
    """Screen heads for interchange necessity and sufficiency over n matched pairs.

    harmful[i] / benign[i]: raw user texts of pair i (tokenised by `model.tokenize(..., chat=chat)`);
    continuations[i]: 1..5 non-special token ids scored after both prompts of pair i.
    Returns a `HeadScreen` ([H, n] per-pair scores in nats, p-values, AtP estimates).
    Raises ValueError before any forward pass for mismatched or too few pairs, bad
    continuations, layers or heads out of range, --verify above the head count, or
    chat=True on a model without a chat template.
    """
    config = config or ScreenConfig()
    start = time.perf_counter()
    timings: dict[str, float] = {}
    harmful, benign, continuations = list(harmful), list(benign), [list(c) for c in continuations]
    if not len(harmful) == len(benign) == len(continuations):
        raise ValueError(f"got {len(harmful)} harmful prompts, {len(benign)} benign prompts and "
                         f"{len(continuations)} continuations; pass one of each per pair")
    heads = config.check_model(model, len(harmful))
    check_continuations(model, continuations)
    if chat and not getattr(model.tokenizer, "chat_template", None):
        raise ValueError("this model's tokenizer has no chat template; run with chat=False (CLI --no-chat) "
                         "to score the raw prompts")
    tokens = tokenize_pairs(model, harmful, benign, continuations, chat)
    n = tokens.n
    size = _batch_size(config.batch_size, model)
    store = Checkpoint(checkpoint_dir)
    base_key = [provenance(model, chat=chat), config.align,  # model, sha, dtype, BOS policy, chat template
                [torch.cat([a, b]) .tolist() for a, b in tokens.prompts], [c.tolist() for c in tokens.continuations]]
    timings["tokenize"] = time.perf_counter() - start

    atp_nec = atp_suf = None
    nll = None
    fast = FAST.get(config.method)
    if fast is not None:
        t = time.perf_counter()
        chunks = pair_chunks(n, 2, size)  # two rows (prompts) per pair
        if fast == "ig":
            key = fingerprint(base_key, chunks, heads, "ig", config.ig_steps)
            label, compute = f"IG screen ({config.ig_steps} steps)", lambda pairs: ig_scores(
                model, tokens, pairs, heads, config.align, size, config.ig_steps)
        else:
            key = fingerprint(base_key, chunks, heads, "atp")
            label, compute = "AtP screen", lambda pairs: atp_scores(model, tokens, pairs, heads, config.align, size)
        atp_nec, atp_suf, nll = _staged(store, fast, key, chunks, n, len(heads), progress, label, compute)
        timings[fast] = time.perf_counter() - t

    exact_rows, fast_top = _exact_rows(config, heads, atp_nec, atp_suf, nll)
    nec = torch.full((len(heads), n), float("nan"), dtype=torch.float64)
    suf = nec.clone()
    if exact_rows:
        t = time.perf_counter()
        chosen = [heads[r] for r in exact_rows]
        sparsest = min(sum(1 for l, _ in chosen if l == layer) for layer, _ in chosen)
        chunks = pair_chunks(n, sparsest, size)  # every layer's batches hold >= `size` rows
        key = fingerprint(base_key, chunks, chosen, "exact")
        e_nec, e_suf, nll = _staged(store, "exact", key, chunks, n, len(chosen), progress, "exact interchange",
                                    lambda pairs: exact_scores(model, tokens, pairs, chosen, config.align, size))
        nec[exact_rows], suf[exact_rows] = e_nec, e_suf
        timings["exact"] = time.perf_counter() - t

    t = time.perf_counter()
    result = _assemble(config, heads, nec, suf, atp_nec, atp_suf, nll, exact_rows, fast_top)
    timings["stats"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    result.timings = timings
    result.meta = RunMeta(model=dict(model.info), config=dataclasses.asdict(config), seed=config.seed,
                          timings=dict(timings))
    return result


MAX_CHUNK = 32  # pairs per checkpointed chunk: an interruption loses at most this many pairs' work


def pair_chunks(n: int, rows_per_pair: int, size: int) -> list[list[int]]:
    """Pairs 0..n-1 in chunks (the unit of checkpointing) just large enough that a batch of
    `size` rows fills up: with `rows_per_pair` rows of a pass per pair (2 prompts for AtP; the
    patched heads of the sparsest layer for the exact screen, whose rows are grouped by layer),
    ceil(size / rows_per_pair) pairs, at most MAX_CHUNK. Small chunks of scattered heads
    would run batches of one or two rows."""
    per_chunk = min(MAX_CHUNK, max(1, -(-size // max(1, rows_per_pair))))
    return [list(range(s, min(n, s + per_chunk))) for s in range(0, n, per_chunk)]


CPU_ROWS = 64  # exact rows of Qwen2.5-0.5B, 2 threads: 80 wall ms per row at 14 rows a batch, 73 at 32, 70 at 64


def _batch_size(batch_size, model) -> int:
    """'auto' on CPU: CPU_ROWS rows per pass (wider matmuls use the cores better); else the
    engine's rule (start large on accelerators, halve on out-of-memory)."""
    if batch_size == "auto" and model.device.type == "cpu":
        return CPU_ROWS
    return resolve_batch_size(batch_size, model.device)


def _staged(store: Checkpoint, stage: str, key: str, chunks: list[list[int]], n: int, rows: int, progress: bool,
            label: str, compute: ScoreFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `compute` over chunks of pairs (or load finished chunks); stitch [rows, n] results."""
    first = torch.full((rows, n), float("nan"), dtype=torch.float64)
    second, nll = first.clone(), torch.full((n, 2), float("nan"), dtype=torch.float64)
    with tqdm(total=n, desc=label, unit="pair", disable=not progress) as bar:
        for index, pairs in enumerate(chunks):
            saved = store.load(stage, key, index)
            if saved is None:
                a, b, c = compute(pairs)
                saved = {"first": a, "second": b, "nll": c}
                store.save(stage, key, index, saved)
            first[:, pairs], second[:, pairs], nll[pairs] = saved["first"], saved["second"], saved["nll"]
            bar.update(len(pairs))
    return first, second, nll


def _exact_rows(config: ScreenConfig, heads, nec_est, suf_est, nll) -> tuple[list[int], list[int] | None]:
    """(rows measured exactly, the estimate's top `verify` rows or None) for the method."""
    if config.method == "exact":
        return list(range(len(heads))), None
    if not config.method.endswith("+exact"):
        return [], None
    gap = float((nll[:, 0] - nll[:, 1]).mean())
    return verification_rows(nec_est.mean(1), suf_est.mean(1), gap, config.verify, config.verify_random, config.seed)


def _assemble(config, heads, nec, suf, atp_nec, atp_suf, nll, exact_rows, fast_top) -> HeadScreen:
    n = nec.shape[1]
    exact = torch.zeros(len(heads), dtype=torch.bool)
    exact[exact_rows] = True
    delta = nll[:, 0] - nll[:, 1]
    mean = float(delta.mean())  # 0 only when every pair's two prompts score alike: % undefined (NaN), no crash
    scale = 100.0 / mean if mean else float("nan")
    p_nec = torch.full((len(heads),), float("nan"), dtype=torch.float64)
    p_suf, p_family = p_nec.clone(), p_nec.clone()
    rank = missed = jaccard = None
    if exact_rows:
        p_nec[exact_rows], p_family[exact_rows] = sign_flip_pvalues(nec[exact_rows], config.permutations, config.seed,
                                                                    family=True)
        p_suf[exact_rows] = sign_flip_pvalues(suf[exact_rows], config.permutations, config.seed + 1)
        k = min(config.top_k, len(exact_rows))
        jaccard = bootstrap_topk_jaccard(nec[exact_rows], k, config.bootstrap, config.seed) if n > 1 else None
        if atp_nec is not None:
            rank = spearman(atp_nec[exact_rows].mean(1), nec[exact_rows].mean(1))
            exact_top = {exact_rows[int(i)] for i in top_k(nec[exact_rows].mean(1), k)}
            atp_top = set(top_k(atp_nec.mean(1), k).tolist())
            missed = len(exact_top - atp_top)
    return HeadScreen(
        heads=list(heads), necessity=nec, sufficiency=suf, atp_necessity=atp_nec, atp_sufficiency=atp_suf,
        nll_harmful=nll[:, 0].clone(), nll_benign=nll[:, 1].clone(), baseline_delta=delta,
        necessity_pct=nec.mean(1) * scale, sufficiency_pct=suf.mean(1) * scale, p_necessity=p_nec,
        p_sufficiency=p_suf, exact=exact, method=config.method, align=config.align, rank_correlation=rank,
        missed_top_k=missed, topk_jaccard=jaccard, timings={}, top_k=config.top_k, p_family=p_family,
        fast_top=None if fast_top is None else [heads[r] for r in fast_top],
        ig_steps=config.ig_steps if FAST.get(config.method) == "ig" else None)
