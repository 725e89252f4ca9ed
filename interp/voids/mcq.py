"""Multiple-choice questions for the LAC evaluation (`interp.voids.evaluation`): task files,
zero-shot prompts in the MMLU style, and reading the answer letter.

Built-in task `mcq_basic` (interp/data/mcq_basic.jsonl) is our own small set: 48 easy
4-option questions written for steerlens (12 each of arithmetic, capital cities, basic
science, word meanings; answers balanced over A-D). It is not MMLU and too small for fine
differences: one question is 2.1 points. Any JSONL file with `question`, `choices` (2-26
strings) and `answer` (a letter, or a 0-based index) can be passed instead.

Answer reading: `logits` takes the argmax over the letter tokens at the last prompt token
(each letter scored by the larger logit of " A" and "A", whichever are single tokens, so
the same code works with and without a chat template); `generate` decodes greedily and
takes the first standalone capital letter among the choices, as the paper extracts the
option from generated text (no letter = wrong).
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import torch

from ..runs.prompts import read_records

DATA = Path(__file__).parent.parent / "data"  # interp/data
LETTERS = string.ascii_uppercase
INSTRUCTION = "The following is a multiple choice question. Answer with the letter of the correct option."


def task_path(name: str) -> Path:
    """A built-in task name (a file in interp/data) or a path to a JSONL file."""
    for candidate in (DATA / f"{name}.jsonl", DATA / f"mcq_{name}.jsonl"):
        if candidate.is_file():
            return candidate
    path = Path(name)
    if path.is_file():
        return path
    builtin = sorted(p.stem for p in DATA.glob("mcq_*.jsonl"))
    raise ValueError(f"unknown task '{name}': use a built-in task ({', '.join(builtin)}) or a JSONL file with "
                     "question, choices and answer")


def load_questions(name: str, limit: int | None = None) -> list[dict]:
    """Records {question, choices, answer (letter), ...} of a task, checked."""
    path = task_path(name)
    records = read_records(path, required=("question", "choices", "answer"))
    out = []
    for n, record in enumerate(records, start=1):
        choices = record["choices"]
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS) or \
                not all(isinstance(c, str) and c for c in choices):
            raise ValueError(f"{path}: question {n}: choices must be a list of 2-26 non-empty strings")
        if not isinstance(record["question"], str) or not record["question"].strip():
            raise ValueError(f"{path}: question {n}: empty question text")
        answer = record["answer"]
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer = LETTERS[answer] if 0 <= answer < len(choices) else None
        if answer not in LETTERS[: len(choices)]:
            raise ValueError(f"{path}: question {n}: answer must be one of {LETTERS[: len(choices)]} "
                             f"or an index 0..{len(choices) - 1}, got {record['answer']!r}")
        out.append({**record, "answer": answer})
    return out[:limit] if limit else out


def mc_prompt(record: dict, chat: bool) -> str:
    """Zero-shot prompt; with a chat template the model answers in its own turn."""
    options = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(record["choices"]))
    body = f"{INSTRUCTION}\n\nQuestion: {record['question']}\n{options}\n"
    if chat:
        return body + "Reply with the letter only."
    return body + "Answer:"


def letter_token_ids(model, n_choices: int) -> list[list[int]]:
    """For each letter, the ids of its single-token spellings (" A", "A")."""
    tok = model.tokenizer
    out = []
    for letter in LETTERS[:n_choices]:
        ids = []
        for text in (f" {letter}", letter):
            encoded = tok.encode(text, add_special_tokens=False)
            if len(encoded) == 1 and encoded[0] not in ids:
                ids.append(encoded[0])
        if not ids:
            raise ValueError(f"the tokenizer has no single token for the answer letter {letter!r}")
        out.append(ids)
    return out


def letters_from_logits(logits: torch.Tensor, letter_ids: list[list[int]]) -> list[str]:
    """logits [b, vocab] at the last prompt token -> predicted letter per row."""
    scores = torch.stack([logits[:, ids].amax(-1) for ids in letter_ids], -1)  # [b, n_choices]
    return [LETTERS[i] for i in scores.argmax(-1).tolist()]


def letter_from_text(text: str, n_choices: int) -> str | None:
    match = re.search(rf"\b([{LETTERS[:n_choices]}])\b", text)
    return match.group(1) if match else None
