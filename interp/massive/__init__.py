"""Massive activations: where they are (`activations`), which sublayer writes them and what
zeroing them costs (`origin`), their emergence over training (`emergence`)."""
