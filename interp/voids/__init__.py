"""LAC voids ("Void in Language Models"): the rule (`rule`), void maps per token and phase
(`maps`), multiple-choice evaluation with layer skipping (`evaluation`, `mcq`)."""
