"""What made the rows of a resumable artefact, recorded in its header and checked on resume.

A resumed store, skill-vector pool, RISE store, SAE checkpoint or routing checkpoint must
be continued only under the settings that made its first rows; otherwise the early rows
and the later ones silently differ (one with a BOS row, one without). `provenance(...)`
returns the fields that change rows:

    model, model_sha256      the spec and the weights' sha256 (GGUF) or hub commit
    model_dtype, dtype       the weights' dtype and the stored values' dtype
    bos                      the BOS policy ("default" | "always" | "never")
    chat_template_sha256     sha256 of the chat template when chat=True, else None
    token_ids_sha256         sha256 of every prompt's token ids in prompt order; the batches
                             are a fixed function of the plan (lengths, batch size), so equal
                             hashes mean every batch's token ids are equal
    truncation               the cut applied to each text (e.g. its max tokens), or None

`check_provenance(recorded, current, what)` raises `ProvenanceError` naming the first field
that differs and both values, before any work. A header written before a field existed
counts as differing (its rows' provenance is unknown).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

CHUNK = 512  # prompts tokenized at a time for the token hash (bounded memory on large sets)


FIELDS = ("model", "model_sha256", "model_dtype", "dtype", "bos", "chat_template_sha256", "token_ids_sha256",
          "truncation")


class ProvenanceError(ValueError):
    """A resume whose settings differ from those that made the artefact's first rows."""


def text_sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def ids_sha256(rows) -> str:
    """sha256 over rows of token ids (lists or 1-D tensors), in order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(torch.as_tensor(row, dtype=torch.int64).numpy().tobytes() + b"|")
    return digest.hexdigest()


def of_header(header: dict) -> dict:
    """The provenance fields of a stored header (an activation store's index), plus the
    prompts' hash: what an artefact built from that store (an SAE) records of its data."""
    return {k: header.get(k) for k in (*FIELDS, "prompts_sha256", "n_prompts")}


def token_ids_sha256(model, prompts: Sequence[str], *, chat: bool = False, formatted: bool = False,
                     max_tokens: int | None = None) -> str:
    """sha256 over each prompt's token ids as `model.tokenize` makes them (BOS policy and
    chat template applied), each cut to its first `max_tokens` when given."""
    prompts = list(prompts)

    def rows():
        for start in range(0, len(prompts), CHUNK):
            batch = model.tokenize(prompts[start:start + CHUNK], chat=chat, formatted=formatted)
            for ids, mask in zip(batch.input_ids, batch.attention_mask.bool()):
                yield ids[mask][:max_tokens] if max_tokens is not None else ids[mask]
    return ids_sha256(rows())


def dtype_name(dtype: torch.dtype | None) -> str | None:
    return str(dtype).replace("torch.", "") if dtype is not None else None


def provenance(model, prompts: Sequence[str] | None = None, *, chat: bool = False, formatted: bool = False,
               dtype: torch.dtype | None = None, truncation=None) -> dict:
    """The header fields that change an artefact's rows (see the module doc). `prompts`
    None leaves `token_ids_sha256` out (an artefact whose inputs are hashed elsewhere)."""
    template = getattr(model.tokenizer, "chat_template", None) if chat else None
    fields = {
        "model": model.info.get("spec"),
        "model_sha256": model.info.get("sha256") or getattr(model.hf.config, "_commit_hash", None),
        "model_dtype": dtype_name(model.dtype),
        "dtype": dtype_name(dtype),
        "bos": model.bos,
        "chat_template_sha256": text_sha256(template if isinstance(template, str) else None),
        "truncation": truncation,
    }
    if prompts is not None:
        max_tokens = truncation if isinstance(truncation, int) and not isinstance(truncation, bool) else None
        fields["token_ids_sha256"] = token_ids_sha256(model, prompts, chat=chat, formatted=formatted,
                                                      max_tokens=max_tokens)
    return fields


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:20] + "..." + text[-8:]


MISSING = "<not recorded>"


def differences(recorded: dict, current: dict) -> list[str]:
    """'field: recorded A, now B' for each field of `current` that `recorded` holds otherwise."""
    return [f"{key}: recorded {_shown(recorded.get(key, MISSING))}, now {_shown(value)}"
            for key, value in current.items() if recorded.get(key, MISSING) != value]


def check_provenance(recorded: dict, current: dict, what: str) -> None:
    """ProvenanceError naming every field of `current` that `recorded` holds otherwise."""
    diff = differences(recorded, current)
    if diff:
        raise ProvenanceError(f"{what} was made under other settings ({'; '.join(diff)}); resume it with the "
                              "same ones, or start a new one")
