"""Generation with edits and hooks active at every decode step (KV cache on by default).

The engine counts the positions itself (`interp.engine.hooks.GenerationPlan`: the padded prompt
length, the left pads of each row, the tokens fed so far), so position specs such as
"prompt", "generated" and "last" mean the same thing in prefill and in each later step,
with or without the KV cache, for one prompt, equal lengths or a padded batch. Note that
"generated" leaves the first new token unsteered (it is predicted at the last prompt
position); "last+generated" steers from the first new token on.

Decoding settings come only from the arguments here, not from whatever a checkpoint ships
nor from transformers' defaults (`interp.engine.sampling`: top-k, min-p, typical-p,
penalties and token bans are set off explicitly), so runs are reproducible: greedy unless
`temperature > 0`, then plain sampling from softmax(logits / temperature) (cut by `top_p`
when given), and `seed` fixes it (`torch.manual_seed`, the global generator transformers
samples from). `sampling="model"` opts into the checkpoint's `generation_config.json`
for every knob not given here. With
`stop_at_eos=False` the EOS token is masked so exactly `max_new_tokens` come out (the
returned logits are the raw ones, before that mask).

`capture=[site, ...]` records each site's value at every prompt's last token during the
prefill (what `Model.run_with_cache(..., positions="last")` returns for the same prompts),
so a run that generates need not run the prompts a second time to read them. The capture
callbacks stay installed for the decode steps (they return at once there), so a site whose
value the engine derives (`ln*.hook_scale`, `moe.hook_router_logits`) is derived each step.

`shared_prefix=True` runs the tokens every prompt begins with (a chat header) once, into
the KV cache, and prefills each row only after them (`interp.engine.shared_prefix`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .edits import Edit
from .hooks import GenerationPlan, HookFn, pad_left_of
from .prefix import cache_kwarg, prefix_kv
from .row_values import check_row_values
from .sampling import check_sampling, decoding_config, neutral_model_config
from .shared_prefix import after_shared, check_generation_prefix, common_prefix_length, first_tokens, fits_window
from .sites import ExpertSelection
from .transfer import to_host, wait_for_copies


@dataclass
class Generation:
    prompts: list[str]
    texts: list[str]  # the continuations only
    sequences: torch.Tensor  # [b, P + T] left-padded prompt + new tokens
    prompt_len: int  # padded prompt width P
    logits: torch.Tensor | None  # [b, T, vocab] per-step logits (return_logits=True)
    seconds: float
    cache: dict = field(default_factory=dict)  # capture=: site -> [b, ...] at the last prompt token, on the CPU

    @property
    def new_tokens(self) -> torch.Tensor:  # [b, T]
        return self.sequences[:, self.prompt_len :]

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens.numel() / self.seconds if self.seconds > 0 else float("inf")


@torch.inference_mode()
def generate(
    model,
    prompts,
    edits: Sequence[Edit] = (),
    hooks: Sequence[tuple[str, HookFn]] = (),
    *,
    chat: bool = False,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_p: float | None = None,
    sampling: str = "neutral",
    seed: int | None = None,
    use_cache: bool = True,
    streamer=None,
    return_logits: bool = False,
    stop_at_eos: bool = True,
    rows: list[int] | None = None,
    width: int | None = None,
    capture: Sequence[str] = (),
    shared_prefix: bool = False,
) -> Generation:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    check_sampling(sampling, temperature, top_p)
    capture = [capture] if isinstance(capture, str) else list(capture)
    for name in capture:
        model.site(name)  # unknown sites fail here, before any work
    on_prefix = check_generation_prefix(edits, capture, use_cache, hooks) if shared_prefix else []
    batch = model._as_batch(prompts, chat)
    if rows is None:  # a chunk's rows were checked against the whole batch (generation_batched)
        check_row_values(edits, len(batch.texts), batch.input_ids.shape[1])
    tok = model.tokenizer
    eos = getattr(model.hf.generation_config, "eos_token_id", None) or tok.eos_token_id
    config = decoding_config(
        sampling, temperature, top_p,
        max_new_tokens=max_new_tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=eos,
        min_new_tokens=None if stop_at_eos else max_new_tokens,  # masks EOS: exactly max_new_tokens
        use_cache=use_cache,
        return_dict_in_generate=True,
        output_logits=return_logits,
    )
    if seed is not None:
        torch.manual_seed(seed)
    device = model.device
    prompt_len = batch.input_ids.shape[1]
    start = time.perf_counter()
    # transformers fills every unset option from the checkpoint's generation_config
    # (repetition penalties, top_k, ...); swap in a neutral one so only our options apply
    # (sampling="model": the checkpoint's options fill every knob not given here).
    shipped = model.hf.generation_config
    if sampling == "neutral":
        model.hf.generation_config = neutral_model_config(shipped, eos, tok.pad_token_id)
    try:
        ids, mask, kv = batch.input_ids, batch.attention_mask, {}
        plan = GenerationPlan(prompt_len, pad_left_of(mask).to(device))
        shared = (common_prefix_length(batch) if shared_prefix and fits_window(model, prompt_len + max_new_tokens)
                  else 0)  # pads between prefix and rest count as distance in a sliding window
        if shared:  # [prefix, pads, rest]: the model generates after the prefix's cached keys and values
            tail = after_shared(batch, shared, tok.pad_token_id or 0)
            head = first_tokens(batch, shared)[None, :].expand(ids.shape[0], -1)
            ids, mask = torch.cat([head, tail.input_ids], 1), torch.cat([torch.ones_like(head), tail.attention_mask], 1)
            kv = {cache_kwarg(model): prefix_kv(model, [head[0]], edits=on_prefix).cache([0] * ids.shape[0], shared)}
            plan = GenerationPlan(prompt_len, torch.zeros(ids.shape[0], dtype=torch.long, device=device), cached=shared)
        # rows: the caller's index of each row when this is one chunk of a larger batch
        # (interp.engine.generation_batched), so donor-indexed edits such as Patch line up
        cache: dict = {}
        grabs = [(name, _last_of_prefill(cache, name)) for name in capture]
        with model.hooks([*hooks, *grabs], edits, rows=rows, generation=plan, width=width):
            out = model.hf.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                generation_config=config,
                streamer=streamer,
                **kv,
            )
    finally:
        model.hf.generation_config = shipped
    wait_for_copies(device)  # the captured values' copies (once, not inside the layer loop)
    seconds = time.perf_counter() - start
    sequences = out.sequences.cpu()
    if shared:  # back to the usual layout: left pads, prompt, new tokens
        sequences = torch.cat([batch.input_ids, sequences[:, prompt_len:]], 1)
    texts = tok.batch_decode(sequences[:, prompt_len:], skip_special_tokens=True)
    logits = torch.stack(out.logits, 1).cpu() if return_logits else None
    cache = {name: cache[name] for name in capture}  # in the order asked for
    return Generation(list(batch.texts), texts, sequences, prompt_len, logits, seconds, cache)


def _last_of_prefill(store: dict, name: str) -> HookFn:
    """Callback keeping `name`'s value at the last padded column of the first pass (the
    prefill: prompts are left-padded, so that column is each prompt's last token)."""
    def last(t: torch.Tensor, axis: int) -> torch.Tensor:
        value = t.select(axis, t.shape[axis] - 1).detach()
        return value.clone() if value.device.type == "cpu" else to_host(value)  # waited for after generate

    def grab(x, hook):
        if name not in store:
            axis = hook.site.pos_axis
            store[name] = ExpertSelection(*(last(t, axis) for t in x)) if isinstance(x, ExpertSelection) else last(x, axis)
        return None
    return grab
