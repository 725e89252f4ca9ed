"""The error loading and the zoo raise (its own module, so neither imports the other for it)."""


class ModelLoadError(ValueError):
    """A model could not be resolved or loaded; the message says what to do, in one line."""
