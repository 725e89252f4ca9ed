"""Reasoning traces and their steps: problems with known answers, JSONL traces, step
segmentation and the token that ends each step.

A trace is a question and a chain-of-thought response. Steps are the response split at a
separator ("\\n\\n" in RISE, arXiv 2512.23988 section 3); each step keeps its text and its
character span in the full text the model reads (prompt, possibly chat-templated, then
response).

The token that ends a step is the token covering the LAST character of the separator that
follows the step (the last step, with no separator after it, ends at the token covering its
own last character). That token is found from the tokenizer's offsets mapping, so it is the
right one when the tokenizer merges "\\n\\n" with neighbouring characters (".\\n\\n" as one
token), splits it ("\\n", "\\n") or the text starts with a chat template's special tokens.
During generation the same tokens are the ones that carry a separator (see
`saes.intervene`), so captured and steered positions agree.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

SEPARATOR = "\n\n"
ANSWER_RE = re.compile(r"(?:answer(?: is)?\s*[:=]?\s*|\\boxed\{|=\s*)(-?\d[\d,]*)", re.IGNORECASE)
INSTRUCTION = ("Solve the problem. Reason step by step, separate steps with a blank line, "
               "and end with 'The answer is N'.")


@dataclass
class Problem:
    """A question with a known integer answer (None when read from traces without one)."""

    question: str
    answer: int | None = None
    kind: str = "given"


@dataclass
class Step:
    """One reasoning step: its text and where it sits in the trace's full text."""

    index: int
    text: str
    start: int  # character span of the step text in the full text
    end: int
    end_char: int  # the character whose token ends the step (separator's last, else step's last)
    label: str = "other"


@dataclass
class Trace:
    """A question, its formatted prompt, the response and its steps."""

    question: str
    prompt: str  # the text the model reads before the response (chat template applied if any)
    response: str
    answer: int | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.prompt + self.response

    @property
    def predicted(self) -> int | None:
        return extract_answer(self.response)

    @property
    def correct(self) -> bool | None:
        return None if self.answer is None else self.predicted == self.answer


# ---- problems ---------------------------------------------------------------------------
_NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana")
_ITEMS = ("apples", "books", "coins", "pencils", "stamps", "marbles")


def make_problems(n: int, seed: int = 0) -> list[Problem]:
    """`n` programmatic problems with known answers: two-operand arithmetic and multi-step
    word problems (buy, give away, share), alternating; reproducible from `seed`."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    rng = random.Random(seed)
    out: list[Problem] = []
    for i in range(n):
        if i % 2 == 0:
            a, b, c = rng.randint(12, 99), rng.randint(2, 9), rng.randint(5, 60)
            out.append(Problem(f"What is {a} * {b} + {c}?", a * b + c, "arithmetic"))
        else:
            name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
            boxes, per, gave, friends = rng.randint(2, 6), rng.randint(3, 12), rng.randint(1, 5), rng.randint(2, 4)
            total = boxes * per - gave
            total -= total % friends  # keep the share whole
            gave = boxes * per - total
            out.append(Problem(
                f"{name} buys {boxes} boxes of {item} with {per} {item} in each box, gives {gave} away, "
                f"and shares the rest equally among {friends} friends. How many {item} does each friend get?",
                total // friends, "word"))
    return out


def read_traces_jsonl(path: str | Path) -> list[tuple[str, str, int | None]]:
    """(question, response, answer or None) per line of a JSONL with `question` and
    `response` (optional integer `answer`). Raises ValueError naming the bad line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: problems file not found")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
            raise ValueError(f"{path}:{number}: each line needs a 'question' string (and 'response' for traces)")
        answer = obj.get("answer")
        rows.append((obj["question"], obj.get("response"), int(answer) if answer is not None else None))
    if not rows:
        raise ValueError(f"{path}: no problems in file")
    return rows


def extract_answer(text: str) -> int | None:
    """The last integer stated as an answer ("The answer is 42", "\\boxed{42}", "= 42")."""
    found = ANSWER_RE.findall(text)
    if not found:
        return None
    try:
        return int(found[-1].replace(",", ""))
    except ValueError:
        return None


def format_prompt(model, question: str, chat: bool) -> str:
    """The text before the response: the chat template with the instruction, or a plain
    'Question: ... Answer:' prompt for base models."""
    if chat:
        return model.chat_prompt(f"{question}\n\n{INSTRUCTION}")
    return f"{INSTRUCTION}\n\nQuestion: {question}\nAnswer: Let's think step by step.\n\n"


# ---- steps ------------------------------------------------------------------------------
def split_steps(prompt: str, response: str, separator: str = SEPARATOR) -> list[Step]:
    """Steps of `response` (stripped of empty pieces) with spans in `prompt + response`."""
    if not separator:
        raise ValueError("the step separator must not be empty")
    base = len(prompt)
    steps: list[Step] = []
    pos = 0
    while pos <= len(response):
        hit = response.find(separator, pos)
        stop = len(response) if hit < 0 else hit
        piece = response[pos:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            start, end = base + pos + lead, base + pos + len(piece.rstrip())
            end_char = base + hit + len(separator) - 1 if hit >= 0 else end - 1
            steps.append(Step(len(steps), response[start - base:end - base], start, end, end_char))
        if hit < 0:
            break
        pos = hit + len(separator)
    return steps


def check_steps(traces: list[Trace], separator: str) -> None:
    """Raise ValueError when no trace has two steps (the separator never occurs)."""
    if not any(len(t.steps) > 1 for t in traces):
        raise ValueError(f"no trace contains the step separator {separator!r}: every response is one step. "
                         "Check the traces or pass --separator with what separates their steps")


def step_end_tokens(tokenizer, text: str, steps: list[Step], add_special_tokens: bool = False
                    ) -> tuple[list[int], list[int]]:
    """(token ids of `text`, index of the token ending each step) from the offsets mapping.

    Raises ValueError for a tokenizer without offsets (a slow tokenizer)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("step positions need a fast tokenizer (offsets mapping); load the model's fast tokenizer")
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    ends = []
    for step in steps:
        ends.append(_token_at(offsets, step.end_char))
    return ids, ends


def token_at_char(tokenizer, text: str, char: int, add_special_tokens: bool = False) -> int:
    """Index of the token of `text` covering character `char` (e.g. where the response starts)."""
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    return _token_at(list(enc["offset_mapping"]), char)


def _token_at(offsets, char: int) -> int:
    """Index of the token whose span covers `char` (the last such token; special tokens,
    with empty spans, never match). Falls back to the last token starting at or before it."""
    best = None
    for i, (a, b) in enumerate(offsets):
        if a <= char < b:
            best = i
    if best is not None:
        return best
    for i, (a, b) in enumerate(offsets):
        if b > a and a <= char:
            best = i
    if best is None:
        raise ValueError(f"no token covers character {char}")
    return best
