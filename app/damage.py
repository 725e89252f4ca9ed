"""How much a steered generation departs from the model: the numbers the playground prints next
to every steered continuation, and the residual norm it prints next to alpha.

- `perplexity` of the *unsteered* model on a continuation: exp of the mean negative
  log-likelihood of its tokens, each given the prompt and the tokens before it. Text the model
  would itself write scores low (greedy: close to 1); steering that turns text into strings of
  digits scores hundreds or more.
- `mean_kl`: per generated token, KL(p_steered || p_unsteered) in nats between the steered
  model's next-token distribution (as it generated) and the unsteered model's on the same
  prefix, averaged over the continuation. 0 when nothing is steered.
- `residual_norm` / `site_norm`: the median L2 norm of the residual stream after a layer (or of
  the activation at the vector's own site: the MLP output for "ffn" vectors) over the prompts'
  tokens, the first token excluded (its attention-sink norm is often 10-100x the rest; Sun et
  al. 2024), so that alpha * ||v|| can be read in units of what the site carries.

A continuation is scored up to and including its first end-of-sequence token.
"""

from __future__ import annotations

import torch

from interp.engine.model import TokenBatch


def _continuation_mask(gen, eos) -> torch.Tensor:
    """[b, T] True for new tokens up to and including the first EOS of each row."""
    new = gen.new_tokens
    ids = eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
    is_eos = torch.zeros_like(new, dtype=torch.bool)
    for i in ids:
        is_eos |= new == i
    after = (is_eos.long().cumsum(-1) - is_eos.long()) > 0  # strictly after the first EOS
    return ~after


@torch.inference_mode()
def unsteered_logprobs(model, gen, chat_batch: TokenBatch) -> torch.Tensor:
    """log p_unsteered(. | prefix) at each generated position: [b, T, vocab] (float32, CPU).

    `chat_batch` is the prompt batch the generation started from (its attention mask)."""
    T = gen.new_tokens.shape[1]
    mask = torch.cat([chat_batch.attention_mask, torch.ones(gen.new_tokens.shape, dtype=torch.long)], 1)
    batch = TokenBatch(gen.sequences.cpu(), mask, chat_batch.texts)
    logits = model.forward(batch)  # [b, P + T, vocab]
    return torch.log_softmax(logits[:, gen.prompt_len - 1: gen.prompt_len - 1 + T].float().cpu(), -1)


def perplexity(logprobs: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """exp(mean NLL) per row of `tokens` [b, T] under `logprobs` [b, T, vocab], over `valid` [b, T]."""
    nll = -logprobs.gather(-1, tokens[..., None].long()).squeeze(-1)  # [b, T]
    counts = valid.sum(-1).clamp_min(1)
    return torch.exp((nll * valid).sum(-1) / counts).tolist()


def mean_kl(steered_logits: torch.Tensor, plain_logprobs: torch.Tensor, valid: torch.Tensor) -> list[float]:
    """Mean over `valid` positions of KL(softmax(steered_logits) || exp(plain_logprobs)), nats."""
    steered = torch.log_softmax(steered_logits.float().cpu(), -1)
    kl = (steered.exp() * (steered - plain_logprobs)).sum(-1)  # [b, T]
    return ((kl * valid).sum(-1) / valid.sum(-1).clamp_min(1)).tolist()


def damage(model, prompts: list[str], chat: bool, plain, steered) -> list[dict]:
    """Per prompt: perplexity of the unsteered model on the steered and on the unsteered
    continuation, and the mean per-token KL of the steered generation (needs ``steered.logits``:
    generate with ``return_logits=True``)."""
    batch = model.tokenize(prompts, chat=chat)
    eos = model.tokenizer.eos_token_id
    rows = []
    scores = {}
    for name, gen in (("plain", plain), ("steered", steered)):
        valid = _continuation_mask(gen, eos).float()
        logprobs = unsteered_logprobs(model, gen, batch)
        scores[name] = (perplexity(logprobs, gen.new_tokens.cpu(), valid), logprobs, valid)
    ppl_plain, ppl_steered = scores["plain"][0], scores["steered"][0]
    kls = (mean_kl(torch.stack(list(steered.logits), 1) if isinstance(steered.logits, (list, tuple))
                   else steered.logits, scores["steered"][1], scores["steered"][2])
           if steered.logits is not None else [float("nan")] * len(prompts))
    for i in range(len(prompts)):
        rows.append({"ppl_steered": ppl_steered[i], "ppl_plain": ppl_plain[i], "kl": kls[i]})
    return rows


@torch.inference_mode()
def site_norm(model, prompts: list[str], site: str, chat: bool = False) -> float:
    """Median L2 norm of the activation at `site` (e.g. ``blocks.3.hook_mlp_out``; trailing head
    axes flattened) over the prompts' tokens after the first (see module doc)."""
    batch = model.tokenize(prompts, chat=chat)
    _, cache = model.run_with_cache(batch, [site], logits=None, to_cpu=True)
    x = cache[site].float()
    x = x.flatten(2) if x.ndim > 3 else x  # [b, P, d]
    mask = batch.attention_mask.bool().clone()
    first = mask.long().argmax(-1)  # each row's first real token (left padding)
    mask[torch.arange(mask.shape[0]), first] = False
    norms = x.norm(dim=-1)[mask]
    return float(norms.median()) if norms.numel() else float(x.norm(dim=-1).median())


def residual_norm(model, prompts: list[str], layer: int, chat: bool = False) -> float:
    """Median ||resid_post|| of `layer` over the prompts' tokens after the first (see module doc)."""
    return site_norm(model, prompts, f"blocks.{layer}.hook_resid_post", chat)
