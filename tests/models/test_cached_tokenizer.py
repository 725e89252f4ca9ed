"""The tokenizer saved next to a dequantized model loads without being rebuilt, and is the same.

`interp.models.tokenizer_cache.load_tokenizer` must give exactly what `AutoTokenizer` gives on
the same folder: encodings (with and without special tokens, batched with padding),
decodings, special tokens, vocabulary and chat template. Checked on a tiny GGUF here and
on every zoo model under `-m zoo` (where Gemma's 262k-token tokenizer is the slow one).
"""

from __future__ import annotations

import json
import time

import pytest

from interp.models.tokenizer_cache import load_tokenizer

TEXTS = [
    "The capital of France is",
    "  leading spaces, trailing ones  ",
    "tabs\tand\nnewlines\n\n",
    "émojis 🤖, accents and 中文",
    "<bos>special <eos> tokens <start_of_turn>user <|im_start|> <|endoftext|>",
    "def f(x):\n    return x ** 2  # a comment",
]


def assert_same_tokenizer(expected, got) -> None:
    for text in TEXTS:
        assert got(text) == expected(text), text
        assert got(text, add_special_tokens=False) == expected(text, add_special_tokens=False), text
        assert got.tokenize(text) == expected.tokenize(text), text
        ids = expected(text).input_ids
        assert got.decode(ids) == expected.decode(ids)
        assert got.decode(ids, skip_special_tokens=True) == expected.decode(ids, skip_special_tokens=True)
    assert got.special_tokens_map == expected.special_tokens_map
    assert got.all_special_ids == expected.all_special_ids
    assert got.get_vocab() == expected.get_vocab() and len(got) == len(expected)
    assert got.chat_template == expected.chat_template
    expected.padding_side = got.padding_side = "left"  # as interp.loading sets them
    if expected.pad_token is None:
        expected.pad_token, got.pad_token = expected.eos_token, got.eos_token
    assert got(TEXTS, padding=True) == expected(TEXTS, padding=True)
    if expected.chat_template:
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        for tokenize in (False, True):
            assert (got.apply_chat_template(messages, tokenize=tokenize, add_generation_prompt=True)
                    == expected.apply_chat_template(messages, tokenize=tokenize, add_generation_prompt=True))


@pytest.fixture
def tiny_dequantized_folder(tmp_path, monkeypatch):
    from test_loading import write_tiny_gguf

    from interp.models.loading import load_hf

    monkeypatch.setenv("STEERLENS_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "tiny.gguf"
    write_tiny_gguf(gguf)
    _, _, info = load_hf(gguf)
    return tmp_path / "cache" / "dequantized" / info.sha256


def test_tiny_gguf_tokenizer_is_identical(tiny_dequantized_folder):
    from transformers import AutoTokenizer

    assert_same_tokenizer(AutoTokenizer.from_pretrained(str(tiny_dequantized_folder)),
                          load_tokenizer(tiny_dequantized_folder))


def test_folder_it_does_not_recognise_loads_through_auto_tokenizer(tiny_dequantized_folder, monkeypatch):
    import transformers

    config_file = tiny_dequantized_folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["auto_map"] = {"AutoTokenizer": ["custom.Tokenizer", None]}
    config_file.write_text(json.dumps(config))
    sentinel = object()
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *args, **kwargs: sentinel)
    assert load_tokenizer(tiny_dequantized_folder) is sentinel


@pytest.mark.zoo
@pytest.mark.parametrize("alias", ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"])
def test_zoo_tokenizer_is_identical_and_loads_faster(alias, capsys):
    from transformers import AutoTokenizer
    from zoo_models import require

    from interp.models.loading import load_hf
    from interp.models.zoo import ZOO, cache_root

    require(alias)
    folder = cache_root() / "dequantized" / ZOO[alias].sha256
    if not (folder / "config.json").is_file():
        load_hf(alias)  # dequantize once (the user cache keeps it)
    start = time.perf_counter()
    expected = AutoTokenizer.from_pretrained(str(folder))
    rebuilt = time.perf_counter() - start
    start = time.perf_counter()
    got = load_tokenizer(folder)
    cached = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{alias}: tokenizer {rebuilt:.2f} s rebuilt (AutoTokenizer), {cached:.2f} s from tokenizer.json")
    assert_same_tokenizer(expected, got)
