"""Behaviour measures shared by analyses and steering: the keyword refusal classifier
(`refusal`) and perplexity (`perplexity`)."""
