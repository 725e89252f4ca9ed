"""Load the tokenizer saved next to a dequantized GGUF model, without rebuilding it.

``interp.loading`` saves the tokenizer built from a GGUF file (``save_pretrained``) into
``<cache>/dequantized/<sha256>/``. ``AutoTokenizer.from_pretrained`` on that folder
instantiates the model's own tokenizer class (``GemmaTokenizer``, ``Qwen2Tokenizer``,
...), whose ``__init__`` rebuilds the BPE model from the vocabulary and merges that
transformers first parses from ``tokenizer.json`` in Python: for Gemma's 262k-token
vocabulary that is most of a cached load (5-10 s on a laptop CPU).

``load_tokenizer`` instead hands ``tokenizer.json`` straight to the ``tokenizers``
library (one native parse) inside the generic fast tokenizer class, with the special
tokens, chat template and settings of ``tokenizer_config.json``. The Rust tokenizer is
the same file, so encodings, decodings and special tokens are identical
(tests/models/test_cached_tokenizer.py compares them with ``AutoTokenizer`` on every zoo model).
Folders this module does not recognise load through ``AutoTokenizer`` as before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# tokenizer_config.json keys that describe the file itself, not the tokenizer's settings
_NOT_SETTINGS = {"tokenizer_class", "backend", "is_local", "local_files_only", "auto_map",
                 "name_or_path", "tokenizer_file"}


def load_tokenizer(folder: str | os.PathLike):
    """The tokenizer saved in ``folder`` (``tokenizer.json`` + ``tokenizer_config.json``)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    tokenizer_file = folder / "tokenizer.json"
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if (config is None or not tokenizer_file.is_file() or config.get("backend", "tokenizers") != "tokenizers"
            or "added_tokens_decoder" in config or "auto_map" in config):
        return AutoTokenizer.from_pretrained(str(folder))
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    settings = {key: value for key, value in config.items() if key not in _NOT_SETTINGS}
    template = folder / "chat_template.jinja"
    if template.is_file():
        settings["chat_template"] = template.read_text(encoding="utf-8")
    tokenizer = TokenizersBackend(tokenizer_file=str(tokenizer_file), name_or_path=str(folder), **settings)
    tokenizer.init_kwargs["tokenizer_class"] = config.get("tokenizer_class")
    return tokenizer
