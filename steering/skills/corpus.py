"""A skill corpus: texts (or prompt + response pairs) with ids and metadata, read from JSONL.

Accepted records, one JSON object per line (a plain-text file is one text per line):

    {"text": "..."}                                      a text, pooled as the model reads it
    {"prompt": "...", "response": "..."}                 a pair: the prompt through the chat
                                                         template (when the tokenizer has one and
                                                         `template` is "auto" or "chat"), then
                                                         the response; "plain" joins them with a
                                                         blank line
    optional "id" (str or int; default: the line's index) and any other scalar fields
    (e.g. "category"), kept as metadata for colouring figures and for selection reports.

Files must be UTF-8 (`interp.runs.prompts` names the line of a bad byte). The corpus for the
offline zoo run is the model's own answers to `steering/data/skills_prompts.jsonl` (60
original prompts: 20 arithmetic word problems, 20 code requests, 20 prose requests),
made by `make_corpus` with greedy generation through the engine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from interp.runs.prompts import PromptFileError, read_records

PROMPTS_FILE = "skills_prompts.jsonl"
TEMPLATES = ("auto", "chat", "plain")
_RESERVED = ("id", "text", "prompt", "response")


@dataclass
class SkillCorpus:
    """Texts to pool, with an id, an optional prompt/response split and metadata per text."""

    ids: list[str]
    texts: list[str]  # the text, or the response of a pair
    prompts: list[str | None]  # the prompt of a pair, None for a plain text
    metadata: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)  # the original records (for export)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pairs(self) -> bool:
        return any(p is not None for p in self.prompts)

    def model_texts(self, model, template: str = "auto") -> tuple[list[str], bool]:
        """(the strings the model reads, whether they already carry their template and
        special tokens, i.e. are tokenized with `formatted=True`)."""
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got '{template}'")
        if not self.is_pairs:
            return list(self.texts), False
        has_template = bool(getattr(model.tokenizer, "chat_template", None))
        if template == "chat" and not has_template:
            raise ValueError("template 'chat': this tokenizer has no chat template; use --template plain")
        if template == "plain" or not has_template:
            return [_plain(p, t) for p, t in zip(self.prompts, self.texts)], False
        return [model.chat_prompt(p) + t if p is not None else t for p, t in zip(self.prompts, self.texts)], True

    def display_texts(self) -> list[str]:
        """What a person reads for each item (prompt and response for pairs)."""
        return [_plain(p, t) for p, t in zip(self.prompts, self.texts)]

    def frame(self) -> pd.DataFrame:
        """id, text (as displayed), n_chars and every metadata field, one row per item."""
        texts = self.display_texts()
        frame = pd.DataFrame({"id": self.ids, "text": texts, "n_chars": [len(t) for t in texts]})
        keys = list(dict.fromkeys(k for m in self.metadata for k in m))
        for key in keys:
            frame[key] = [None if m.get(key) is None else str(m.get(key)) for m in self.metadata]
        return frame


def _plain(prompt: str | None, text: str) -> str:
    return text if prompt is None else f"{prompt}\n\n{text}"


def read_corpus(path: str | Path) -> SkillCorpus:
    """Read a corpus file (see the module docstring); errors name the file and line."""
    records = read_records(path, required=())
    return corpus_from_records(records, where=str(path))


def corpus_from_records(records: list[dict], where: str = "corpus") -> SkillCorpus:
    ids, texts, prompts, metadata = [], [], [], []
    for n, record in enumerate(records):
        if "text" in record:
            text, prompt = record["text"], None
        elif "prompt" in record and "response" in record:
            text, prompt = record["response"], record["prompt"]
            if not isinstance(prompt, str) or not prompt:
                raise PromptFileError(f"{where}: record {n + 1}: 'prompt' must be a non-empty string")
        else:
            raise PromptFileError(f"{where}: record {n + 1}: needs 'text', or 'prompt' and 'response' "
                                  f"(has {sorted(record)})")
        if not isinstance(text, str) or not text.strip():
            raise PromptFileError(f"{where}: record {n + 1}: the text is empty or not a string")
        ids.append(str(record.get("id", n)))
        texts.append(text)
        prompts.append(prompt)
        metadata.append({k: v for k, v in record.items()
                         if k not in _RESERVED and isinstance(v, (str, int, float, bool))})
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise PromptFileError(f"{where}: id '{dup}' appears more than once; ids must be unique")
    return SkillCorpus(ids, texts, prompts, metadata, list(records))


def default_prompts() -> list[dict]:
    """The shipped mixed prompt set: {id, prompt, category} records."""
    text = resources.files("steering").joinpath(f"data/{PROMPTS_FILE}").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def make_corpus(model, prompts: list[dict] | None = None, *, max_new_tokens: int = 48, chat: bool | None = None,
                batch_size: int = 8, progress: bool = True) -> list[dict]:
    """The model's own greedy responses to `prompts` ({prompt, ...} records; default: the
    shipped set) as {id, prompt, response, ...metadata} records, generated by the engine."""
    prompts = default_prompts() if prompts is None else list(prompts)
    if not prompts or any(not isinstance(p.get("prompt"), str) or not p["prompt"] for p in prompts):
        raise ValueError("every prompt record needs a non-empty 'prompt' string")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    chat = bool(getattr(model.tokenizer, "chat_template", None)) if chat is None else chat
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]["prompt"]))  # similar lengths pad little
    responses: dict[int, str] = {}
    for start in tqdm(range(0, len(order), batch_size), desc="responses", disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        out = model.generate([prompts[i]["prompt"] for i in rows], chat=chat, max_new_tokens=max_new_tokens)
        responses.update(zip(rows, out.texts))
    records = []
    for i, p in enumerate(prompts):
        response = responses[i].strip() or "(empty response)"
        records.append({"id": str(p.get("id", i)), **{k: v for k, v in p.items() if k != "id"}, "response": response})
    return records


def write_jsonl(records: list[dict], path: str | Path) -> Path:
    """Write records atomically (a temp file renamed into place): never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
