"""Prompt files: both formats, and every bad input with its file:line message."""

from pathlib import Path

import pytest

from interp.runs.prompts import PromptFileError, read_prompts, read_records


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def test_plain_text_one_prompt_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.txt", "The cat sat\n\n  indented  \n\t\nlast without newline")
    assert read_prompts(path) == ["The cat sat", "  indented  ", "last without newline"]


def test_plain_text_keeps_escapes_literal_and_strips_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "p.txt", "a\\nb\r\nsecond\u2028half\r\n")
    assert read_prompts(path) == ["a\\nb", "second\u2028half"]


def test_bom_is_tolerated(tmp_path: Path) -> None:
    assert read_prompts(write(tmp_path, "p.txt", "\ufeffhello\n")) == ["hello"]
    assert read_prompts(write(tmp_path, "p.jsonl", '\ufeff{"text": "hi"}\n')) == ["hi"]


def test_jsonl_records_keep_extra_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pairs.jsonl",
        '\n{"text": "Q", "positive": "yes", "negative": "no"}\n\n{"text": "line\\ntwo"}\n',
    )
    assert read_prompts(path) == ["Q", "line\ntwo"]
    assert read_records(path)[0] == {"text": "Q", "positive": "yes", "negative": "no"}


def test_required_fields_are_checked_with_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.jsonl", '{"positive": "a", "negative": "b"}\n{"positive": "c"}\n')
    assert len(read_records(path, required=("positive",))) == 2
    with pytest.raises(
        PromptFileError, match=r"pairs.jsonl:2: missing required field\(s\) \['negative'\]"
    ):
        read_records(path, required=("positive", "negative"))
    with pytest.raises(PromptFileError, match=r"pairs.jsonl:1: missing .*\['text'\]"):
        read_prompts(path)


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", '{"text": "ok"}\n\n{"text": "oops",}\n')
    with pytest.raises(PromptFileError, match=r"bad.jsonl:3: invalid JSON \(.* at column \d+\)"):
        read_prompts(path)


def test_plain_line_inside_jsonl_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed.jsonl", '{"text": "ok"}\njust text\n')
    with pytest.raises(PromptFileError, match=r"mixed.jsonl:2: invalid JSON"):
        read_prompts(path)


def test_non_object_json_line_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "list.jsonl", '{"text": "ok"}\n["text"]\n')
    with pytest.raises(PromptFileError, match=r"list.jsonl:2: expected a JSON object, got list"):
        read_prompts(path)


def test_text_must_be_a_non_empty_string(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match=r"n.jsonl:1: field 'text' must be a string, got int"):
        read_prompts(write(tmp_path, "n.jsonl", '{"text": 3}\n'))
    with pytest.raises(PromptFileError, match=r"e.jsonl:2: field 'text' is empty"):
        read_prompts(write(tmp_path, "e.jsonl", '{"text": "a"}\n{"text": ""}\n'))


def test_plain_text_cannot_satisfy_other_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "p.txt", "hello\n")
    with pytest.raises(
        PromptFileError, match=r"p.txt: plain-text prompts have no fields \['positive'\]"
    ):
        read_records(path, required=("text", "positive"))


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_empty_file_says_no_prompts(tmp_path: Path, content: str) -> None:
    with pytest.raises(PromptFileError, match=r"empty.txt: no prompts"):
        read_prompts(write(tmp_path, "empty.txt", content))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match=r"nope.txt: prompt file not found"):
        read_prompts(tmp_path / "nope.txt")
    with pytest.raises(PromptFileError, match="is a directory"):
        read_prompts(tmp_path)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.txt", b"ok\ncaf\xe9\n")
    with pytest.raises(PromptFileError, match=r"latin1.txt:2: not valid UTF-8"):
        read_prompts(path)


def test_errors_are_value_errors_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        read_prompts(write(tmp_path, "bad.jsonl", '{"text": \n'))
    assert "\n" not in str(info.value)
