"""RISE confidence vectors: a latent-space offset that makes the model sure of its answers
(RISE, arXiv 2512.23988, section 5: "control response confidence by identifying
confidence-related vectors in the SAE decoder space").

The search. An offset delta [d_sae] is added to the SAE's latents at every step-end token of
the optimisation traces. The SAE's error term is kept, and the decoder is linear, so the
residual after the SAE's layer changes by exactly delta @ W_dec at those tokens (the same edit
as adding delta at `blocks.L.hook_resid_post.hook_sae_acts_post` of an attached SAE).
Adam minimises the mean entropy, in nats, of
the model's next-token distribution at the answer tokens: the positions that predict each
token of a trace's last step, the step that states the answer. Only delta is trained; the
model's weights and the SAE stay frozen. delta starts at zero, so the search is deterministic.

Defaults. The paper runs Adam at lr 0.01 for 1000 iterations (`--iterations 1000 --lr 0.01`).
On CPU that is hours for a 135M model, so the defaults take 100 steps at lr 0.1 (Adam moves
each coordinate by about lr per step, so the largest reachable offset, steps x lr, is the
paper's) over 4 traces cut to their last 96 tokens, and stop early at `tol`. docs/rise.md
gives the measured cost.

Cost. Each iteration runs the layers from the SAE's layer on (the residual entering it is
cached once), unembeds only the trailing answer positions and back-propagates to delta.
`tol` stops early when the entropy improved by less than `tol` nats over the last `patience`
iterations; where it stopped is recorded (`stopped_at`).

The directions. The `top_k` largest positive entries of delta are the confidence latents;
their unit decoder rows' mean, normalised, is the confidence vector. The `top_k` most
negative entries give the opposite direction. Both are saved as steerlens steering vectors
under `<run>/vectors/` (`confidence_layer<L>`, `low_confidence_layer<L>`), so `rise steer
--behaviour confidence` and `steerlens generate --vector` use them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from interp.engine.edits import Add
from interp.engine.partial import forward_from_layer
from interp.engine.tokens import pad_rows
from interp.runs.config import option

from .collect import resid_site
from .traces import Trace, step_end_tokens, token_at_char

VECTOR_NAMES = ("confidence", "low_confidence")


@dataclass
class ConfidenceConfig:
    layer: int = option(-1, "layer of the SAE whose latents are offset (-1: the first trained layer)")
    iterations: int = option(100, "Adam steps of the offset search (paper: 1000; scaled so that the "
                                  "default CPU run on a 135M model stays under 15 minutes)")
    lr: float = option(0.1, "Adam learning rate of the offset search (paper: 0.01 over 1000 steps)")
    tol: float = option(1e-4, "stop when the entropy fell by less than this many nats over the last "
                              "--patience steps (0: run every iteration)")
    patience: int = option(50, "window of steps for --tol")
    n_opt: int = option(4, "traces of the run the offset is optimised on (the first with two or more steps)")
    max_tokens: int = option(96, "optimisation traces are cut to their last this many tokens (the answer "
                                  "and the steps before it)")
    top_k: int = option(8, "confidence latents: the largest (and, for the opposite vector, most negative) "
                           "entries of the offset")
    alphas: list[float] = option(default_factory=lambda: [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3],
                                 help="steering strengths of the dose-response, as a fraction of the "
                                      "residual norm at each step-end token (h + alpha |h| v)")
    n_eval: int = option(8, "held-out generated problems the dose-response steers on (0: no dose-response)")
    max_new_tokens: int = option(128, "tokens generated per held-out trace")
    gen_batch: int = option(8, "traces generated per batch")

    def validate(self) -> None:
        if self.iterations < 1 or self.patience < 1 or self.n_opt < 1 or self.top_k < 1:
            raise ValueError("--iterations, --patience, --n-opt and --top-k must be >= 1")
        if self.lr <= 0 or self.tol < 0:
            raise ValueError(f"--lr must be > 0 and --tol >= 0, got {self.lr} and {self.tol}")
        if self.n_eval < 0 or self.max_new_tokens < 1 or self.gen_batch < 1 or self.max_tokens < 8:
            raise ValueError("--n-eval must be >= 0, --max-new-tokens and --gen-batch >= 1, --max-tokens >= 8")
        if self.n_eval and not self.alphas:
            raise ValueError("--alphas needs at least one value")


@dataclass
class AnswerBatch:
    """Optimisation traces as one left-padded batch and where the search acts and reads."""

    batch: object  # interp TokenBatch [b, P]
    step_mask: torch.Tensor  # [b, P] bool: step-end tokens (where delta is added)
    answer_mask: torch.Tensor  # [b, K] bool over the last K positions: positions predicting answer tokens
    keep: int  # K


@dataclass
class OffsetSearch:
    """The found offset and how the search went."""

    delta: torch.Tensor  # [d_sae] float32
    curve: list[float] = field(default_factory=list)  # mean answer entropy (nats) before each step
    entropy_before: float = 0.0  # no offset
    entropy_after: float = 0.0  # the returned offset
    stopped_at: int | None = None  # iteration where --tol stopped the search, None: ran them all


def answer_batch(model, traces: list[Trace], chat: bool, max_tokens: int) -> AnswerBatch:
    """Tokenise traces (as `rise collect` did) and mark step ends and answer positions.

    Raises ValueError when no trace has two steps (nothing before the answer to steer)."""
    rows, ends, starts = [], [], []
    for t in traces:
        if len(t.steps) < 2:
            continue
        ids, step_ends = step_end_tokens(model.tokenizer, t.text, t.steps, add_special_tokens=not chat)
        answer_start = token_at_char(model.tokenizer, t.text, t.steps[-1].start, add_special_tokens=not chat)
        cut = max(0, len(ids) - max_tokens)  # keep the tail: the answer and the steps before it
        rows.append(torch.tensor(ids[cut:]))
        ends.append([e - cut for e in step_ends[:-1] if e - cut >= 0])  # the last step's end affects nothing
        starts.append(max(answer_start - cut, 1))
    if not rows:
        raise ValueError("no trace has two or more steps: the offset acts at step ends before the answer")
    batch = pad_rows(rows, [""] * len(rows), False, model.tokenizer.pad_token_id)
    width = batch.input_ids.shape[1]
    step_mask = torch.zeros(len(rows), width, dtype=torch.bool)
    # position t predicts token t + 1: the answer tokens start..n-1 are predicted at start-1..n-2
    predicted = [len(r) - s for r, s in zip(rows, starts)]
    keep = max(predicted) + 1
    answer_mask = torch.zeros(len(rows), keep, dtype=torch.bool)
    for b, (r, e, n_answer) in enumerate(zip(rows, ends, predicted)):
        pad = width - len(r)
        step_mask[b, [pad + i for i in e]] = True
        answer_mask[b, keep - 1 - n_answer:keep - 1] = True  # the last position predicts past the trace
    return AnswerBatch(batch, step_mask, answer_mask, keep)


def mean_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of softmax(logits) [b, K, V] over the positions where mask [b, K]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)  # [b, K]
    return entropy[mask].mean()


def search_offset(model, data: AnswerBatch, w_dec: torch.Tensor, layer: int, config: ConfidenceConfig,
                  progress=None) -> OffsetSearch:
    """Adam over delta [d_sae] minimising the mean answer entropy (see module doc).

    `w_dec` [d_sae, d_model] is the SAE's decoder; the model's weights are never updated."""
    site = f"blocks.{layer}.hook_resid_pre"
    _, cache = model.run_with_cache(data.batch, [site], "all", logits=None, dtype=torch.float32,
                                    batch_size=data.batch.input_ids.shape[0])
    resid = cache[site].to(model.device).clone()  # [b, P, d_model] entering the layer; clone: not an inference tensor
    w_dec = w_dec.detach().to(model.device, torch.float32)
    delta = torch.zeros(w_dec.shape[0], device=model.device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=config.lr)
    mask = data.answer_mask.to(model.device)

    def entropy(offset: torch.Tensor) -> torch.Tensor:
        edit = Add(resid_site(layer), vector=offset @ w_dec, positions=data.step_mask)
        logits = forward_from_layer(model, data.batch, layer, resid, edits=[edit], logits_to_keep=data.keep)
        return mean_entropy(logits, mask)

    curve, stopped = [], None
    with torch.inference_mode(False), torch.enable_grad():
        for step in range(config.iterations):
            opt.zero_grad(set_to_none=True)
            value = entropy(delta)
            curve.append(float(value.detach()))
            if (config.tol > 0 and step >= config.patience
                    and curve[step - config.patience] - curve[step] < config.tol):
                stopped = step
                break
            value.backward()
            opt.step()
            if progress is not None:
                progress(step, curve[-1])
        with torch.no_grad():
            after = float(entropy(delta))
    return OffsetSearch(delta.detach().cpu(), curve, curve[0], after, stopped)


def confidence_directions(delta: torch.Tensor, w_dec: torch.Tensor, top_k: int) -> dict[str, dict]:
    """{"confidence" | "low_confidence": {"latents": [...], "offsets": [...], "vector": [d_model]}}.

    The latents are the `top_k` largest positive (most negative) entries of delta; the
    vector is the normalised mean of their unit decoder rows. A side with no entry of its
    sign is left out."""
    w = w_dec.detach().float().cpu()
    unit = w / w.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = {}
    for name, sign in zip(VECTOR_NAMES, (1.0, -1.0)):
        order = torch.argsort(sign * delta, descending=True)[:top_k]
        chosen = [int(i) for i in order if sign * float(delta[i]) > 0]
        if not chosen:
            continue
        mean = unit[chosen].mean(0)
        out[name] = {"latents": chosen, "offsets": [float(delta[i]) for i in chosen],
                     "vector": mean / mean.norm().clamp_min(1e-12)}
    return out


def vector_path(run: Path, name: str, layer: int) -> Path:
    return Path(run) / "vectors" / f"{name}_layer{layer}.safetensors"
