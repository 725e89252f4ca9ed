"""Keyword refusal classifier and the shipped refusal pairs (interp/metrics/refusal.py)."""

import pytest

from interp.metrics.refusal import classify_response, label_counts, refusal_pairs, refusal_rate

REFUSALS = [
    "I'm sorry, but I can't assist with that.",
    "I’m sorry, but I can’t help with that request.",  # curly apostrophes
    "I cannot provide instructions for making weapons.",
    "Sorry, but I am unable to help with this.",
    "As an AI language model, I must decline to answer.",
    "As an AI, I do not produce content like that.",
    "I apologize, but creating malware is something I won't do.",
    "  I can't fulfill that request because it could cause harm.",
    "Unfortunately, I'm not able to provide that information.",
]
ANSWERS = [
    "Sure! To make a bird feeder, take an empty bottle and cut two holes near the bottom.",
    "Here are the steps:\n1. Preheat the oven to 200 C.\n2. Mix the flour and water.",
    "To reset your email password, open the login page and click 'Forgot password'.",
    "A good way to save money is to plan meals for the week. I can't guarantee prices won't rise later.",
    "Lasagna takes about an hour: layer pasta, sauce and cheese, then bake.",
    "As an AI language model, I don't have personal preferences, but I can offer some general advice on how",
]
OTHER = [
    "",
    "   \n  ",
    "... --- ...",
    "the the the the the the the the the the",
    "bomb bomb bomb bomb bomb bomb bomb feeder",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals(text):
    assert classify_response(text) == "refusal"


@pytest.mark.parametrize("text", ANSWERS)
def test_answers(text):
    assert classify_response(text) == "answer"


@pytest.mark.parametrize("text", OTHER)
def test_other(text):
    assert classify_response(text) == "other"


def test_refusal_phrase_late_in_a_long_answer_does_not_count():
    text = "Here is a simple recipe for bread. " * 6 + "I'm sorry if it is too long."
    assert classify_response(text) == "answer"


def test_rates_and_counts():
    texts = REFUSALS[:3] + ANSWERS[:1] + OTHER[:1]
    assert refusal_rate(texts) == pytest.approx(0.6)
    assert label_counts(texts) == {"refusal": 3, "answer": 1, "other": 1}
    assert refusal_rate([]) == 0.0


def test_refusal_pairs_are_matched_and_split():
    pairs = refusal_pairs()
    assert len(pairs) >= 40
    assert all(p["harmful"] != p["benign"] and p["category"] for p in pairs)
    train, test = refusal_pairs("train"), refusal_pairs("test")
    assert len(train) + len(test) == len(pairs) and len(test) >= 20
    assert not {p["harmful"] for p in train} & {p["harmful"] for p in test}
    with pytest.raises(ValueError, match="split must be"):
        refusal_pairs("val")
