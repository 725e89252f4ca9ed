"""Evaluation tasks that need no download: each item has a prompt, the right answer and a
wrong one, so the same items give AUSteer's contrastive triples and a test accuracy.

- `arithmetic`: one-step word problems generated from templates (add, subtract, multiply)
  with exact integer answers; scored by the first integer the model generates.
- `yesno`: "Is a hammer a tool?" built from hand-written category lists
  (steering/data/yesno_categories.json), half yes and half no; scored by the first word.
- `compare`: "Is 47 larger than 82?" with random two-digit numbers, half yes, half no.

Prompts are zero-shot raw text ending in "Answer:"; the answer continues it after a space.
Items are generated from a seed, and `split` gives disjoint train / val / test sets (no
prompt appears in two splits), so steering is fitted on train, tuned on val, reported on test.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class TaskItem:
    prompt: str  # ends with "Answer:"
    answer: str  # canonical right answer, e.g. "7" or "yes"
    wrong: str  # one wrong answer, for contrastive triples


@dataclass
class Task:
    name: str
    items: list[TaskItem]
    kind: str  # "number" | "yesno"
    max_new_tokens: int

    def split(self, n_train: int, n_val: int, n_test: int, seed: int = 0) -> dict[str, list[TaskItem]]:
        """Disjoint train / val / test lists drawn from the shuffled items."""
        if min(n_train, n_val, n_test) < 0:
            raise ValueError("split sizes must be >= 0")
        need = n_train + n_val + n_test
        if need > len(self.items):
            raise ValueError(f"task '{self.name}' has {len(self.items)} items; asked for {need} "
                             f"({n_train} train + {n_val} val + {n_test} test)")
        items = list(self.items)
        random.Random(seed).shuffle(items)
        return {"train": items[:n_train], "val": items[n_train:n_train + n_val],
                "test": items[n_train + n_val:need]}

    def parse(self, generated: str) -> str | None:
        """The model's answer in canonical form, or None if it gave none."""
        if self.kind == "number":
            match = re.search(r"-?\d+", generated)
            return str(int(match.group())) if match else None
        match = re.search(r"[a-z]+", generated.lower())
        return match.group() if match else None

    def is_correct(self, generated: str, item: TaskItem) -> bool:
        return self.parse(generated) == item.answer


def triples(items: list[TaskItem]) -> list[tuple[str, str, str]]:
    """(prompt, right continuation, wrong continuation) for each item."""
    return [(item.prompt, " " + item.answer, " " + item.wrong) for item in items]


def _prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


# ---- arithmetic -------------------------------------------------------------------------
_NAMES = ["Tom", "Anna", "Sam", "Maria", "Ben", "Lucy", "Omar", "Mia", "Jack", "Sara", "Leo", "Emma"]
_OBJECTS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "coins", "shells", "cards", "eggs"]
_TEMPLATES: list[tuple[str, Callable[[int, int], int]]] = [
    ("{n} has {a} {o}. {n} buys {b} more. How many {o} does {n} have now?", lambda a, b: a + b),
    ("{n} has {a} {o} and gives {b} of them to a friend. How many {o} does {n} have left?", lambda a, b: a - b),
    ("There are {a} {o} in a box and {b} {o} on the table. How many {o} are there in total?", lambda a, b: a + b),
    ("{n} had {a} {o} and lost {b} of them. How many {o} does {n} have now?", lambda a, b: a - b),
    ("{n} has {a} bags with {b} {o} in each bag. How many {o} does {n} have?", lambda a, b: a * b),
]


def arithmetic_task(n_items: int = 600, seed: int = 0) -> Task:
    rng = random.Random(seed)
    items, seen = [], set()
    while len(items) < n_items:
        template, op = rng.choice(_TEMPLATES)
        multiply = "in each bag" in template
        a = rng.randint(2, 6) if multiply else rng.randint(5, 20)
        b = rng.randint(2, 6) if multiply else rng.randint(1, a - 1)
        question = template.format(n=rng.choice(_NAMES), o=rng.choice(_OBJECTS), a=a, b=b)
        if question in seen:
            continue
        seen.add(question)
        answer = op(a, b)
        wrong = answer + rng.choice([-3, -2, -1, 1, 2, 3])
        wrong = wrong if wrong >= 0 else answer + 1
        items.append(TaskItem(_prompt(question + " Answer with a number."), str(answer), str(wrong)))
    return Task("arithmetic", items, "number", max_new_tokens=4)


# ---- yes / no ---------------------------------------------------------------------------
def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def yesno_task(seed: int = 0) -> Task:
    data = json.loads(resources.files("steering").joinpath("data/yesno_categories.json").read_text())
    rng = random.Random(seed)
    items = []
    for category, members in data.items():
        others = [(c, m) for c, ms in data.items() if c != category for m in ms]
        for member in members:
            for noun, truth in ((member, "yes"), (rng.choice(others)[1], "no")):
                question = f"Is {_article(noun)} {noun} {_article(category)} {category}?"
                items.append(TaskItem(_prompt(question + " Answer yes or no."), truth,
                                      "no" if truth == "yes" else "yes"))
    return Task("yesno", items, "yesno", max_new_tokens=2)


def compare_task(n_items: int = 600, seed: int = 0) -> Task:
    rng = random.Random(seed)
    items, seen = [], set()
    while len(items) < n_items:
        a, b = rng.sample(range(10, 100), 2)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        truth = "yes" if a > b else "no"
        items.append(TaskItem(_prompt(f"Is {a} larger than {b}? Answer yes or no."), truth,
                              "no" if truth == "yes" else "yes"))
    return Task("compare", items, "yesno", max_new_tokens=2)


TASKS: dict[str, Callable[[], Task]] = {"arithmetic": arithmetic_task, "yesno": yesno_task,
                                         "compare": compare_task}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}': use one of {', '.join(TASKS)} (or --data FILE)")
    return TASKS[name]()


def task_from_file(path: str) -> Task:
    """A task from JSONL records with `prompt`, `answer`, `wrong` (numbers or words)."""
    from interp.runs.prompts import read_records

    records = read_records(path, required=("prompt", "answer", "wrong"))
    items = [TaskItem(str(r["prompt"]), str(r["answer"]).strip().lower(), str(r["wrong"]).strip().lower())
             for r in records]
    numeric = all(re.fullmatch(r"-?\d+", i.answer) for i in items)
    return Task(str(path), items, "number" if numeric else "yesno", max_new_tokens=4 if numeric else 2)
