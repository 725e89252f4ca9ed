"""Which knobs shape the next-token distribution in `generate`, decided by steerlens.

transformers fills every option a `GenerationConfig` leaves unset (None) first from the
checkpoint's `generation_config.json`, then from its own defaults (transformers 5.x:
top_k=50), so an unset knob silently truncates or penalises the distribution. steerlens
decides them all:

- `sampling="neutral"` (the default): greedy when temperature is 0, else plain sampling
  from softmax(logits / temperature), optionally cut by `top_p`. Every knob with an "off"
  value is set to it (`NEUTRAL`), and the checkpoint's generation config is swapped for an
  empty one during the call, so the knobs whose only "off" value is None (`OFF_WHEN_NONE`)
  fall back to transformers' defaults, which are None.
- `sampling="model"`: the checkpoint's `generation_config.json` decides every knob the
  arguments do not (`top_p` only when given; temperature and greedy-or-sampled always come
  from `temperature`), then transformers' defaults (top_k=50 among them).

`describe` is the one line the CLI prints so a reader knows which was used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import GenerationConfig

SAMPLING = ("neutral", "model")

# knob -> its "off" value (transformers' logits processors skip these values); the warpers
# (top_k ... eta_cutoff) act only when sampling, so they are set only then (transformers warns
# about sampling flags on a greedy call)
WARPERS = ("top_k", "typical_p", "epsilon_cutoff", "eta_cutoff")
NEUTRAL = {
    "top_k": 0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "min_length": 0,
    "num_beams": 1,
    "num_return_sequences": 1,
    "remove_invalid_values": False,
    "renormalize_logits": False,
}
# knobs that are off only when None: kept None by swapping the checkpoint's generation config
OFF_WHEN_NONE = ("min_p", "top_h", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens",
                 "forced_bos_token_id", "forced_eos_token_id", "sequence_bias", "exponential_decay_length_penalty",
                 "guidance_scale", "watermarking_config", "penalty_alpha", "dola_layers", "prompt_lookup_num_tokens",
                 "force_words_ids", "constraints", "stop_strings", "max_time")


def check_sampling(sampling: str, temperature: float, top_p: float | None) -> None:
    """ValueError for an unknown `sampling`, a negative temperature or top_p outside (0, 1]."""
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}, got {sampling!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def decoding_config(sampling: str, temperature: float, top_p: float | None, **fixed) -> GenerationConfig:
    """The `GenerationConfig` for one `generate` call; `fixed` are the non-distribution
    options (max_new_tokens, eos/pad ids, output flags)."""
    from transformers import GenerationConfig

    sample = temperature > 0
    knobs: dict = {"do_sample": sample}
    if sample:
        knobs["temperature"] = temperature
    if sampling == "neutral":
        known = vars(GenerationConfig())  # transformers releases differ in which knobs exist
        knobs.update({k: v for k, v in NEUTRAL.items() if k in known and (sample or k not in WARPERS)
                      and not (k == "min_length" and fixed.get("min_new_tokens"))})  # min_new_tokens wins
        if sample:
            knobs["top_p"] = 1.0 if top_p is None else top_p
    elif top_p is not None and sample:
        knobs["top_p"] = top_p
    return GenerationConfig(**fixed, **knobs)


def neutral_model_config(shipped: GenerationConfig, eos, pad) -> GenerationConfig:
    """What stands in for the checkpoint's generation config under `sampling="neutral"`:
    only its special token ids, so it fills no knob."""
    from transformers import GenerationConfig

    return GenerationConfig(bos_token_id=shipped.bos_token_id, eos_token_id=eos, pad_token_id=pad)


def describe(sampling: str, temperature: float, top_p: float | None, shipped: GenerationConfig | None = None) -> str:
    """One line saying how tokens were chosen, e.g. for the CLI's stderr."""
    if sampling == "model":
        set_by_model = {k: getattr(shipped, k) for k in ("top_k", "top_p", "min_p", "typical_p", "repetition_penalty",
                                                          "no_repeat_ngram_size") if shipped is not None
                        and getattr(shipped, k, None) is not None}
        shown = ", ".join(f"{k}={v}" for k, v in set_by_model.items()) or "none set; transformers defaults"
        how = "greedy" if temperature == 0 else f"temperature {temperature}"
        return f"sampling: model ({how}; checkpoint's generation_config: {shown})"
    if temperature == 0:
        return "sampling: neutral (greedy; no penalties, no suppressed tokens)"
    cut = f", top-p {top_p}" if top_p is not None and top_p < 1 else ""
    return (f"sampling: neutral (softmax(logits / {temperature}){cut}; top-k, min-p, typical-p, penalties and "
            "token bans off)")
