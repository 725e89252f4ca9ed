"""Activation store (sharded safetensors, resume) and the core CLI commands."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.cli import main
from interp.engine.store import ActivationStore, StoreError, capture_to_store

PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota kappa lambda"]


@pytest.fixture(scope="module")
def model():
    return tiny_model("qwen2")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("tiny-qwen2")
    save_tiny(model, path)
    return path


def test_store_rows_equal_in_memory_capture(model, tmp_path):
    site = "blocks.1.hook_resid_post"
    store = capture_to_store(model, PROMPTS, [site], tmp_path / "s", batch_size=2, progress=False)
    assert store.complete and len(store.index["shards"]) == 3
    values, prompt_index, position = store.load(site)
    _, cache = model.run_with_cache(PROMPTS, sites=[site])
    expected = torch.cat([cache.real(site, i) for i in range(len(PROMPTS))])
    torch.testing.assert_close(values, expected)
    lengths = model.tokenize(PROMPTS).lengths
    assert prompt_index.tolist() == [i for i, n in enumerate(lengths) for _ in range(n)]
    assert position.tolist() == [p for n in lengths for p in range(n)]


def test_store_resumes_after_interruption(model, tmp_path):
    site = "blocks.0.hook_mlp_out"
    calls = {"n": 0}
    original = model.run_with_cache

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    model.run_with_cache = flaky
    try:
        with pytest.raises(KeyboardInterrupt):
            capture_to_store(model, PROMPTS, [site], tmp_path / "s", positions="last", batch_size=2, progress=False)
    finally:
        del model.run_with_cache
    partial = ActivationStore(tmp_path / "s")
    assert not partial.complete and len(partial.index["shards"]) == 1
    assert not list((tmp_path / "s").glob("*.tmp"))
    store = capture_to_store(model, PROMPTS, [site], tmp_path / "s", positions="last", batch_size=2, progress=False)
    assert store.complete
    values, prompt_index, _ = store.load(site)
    _, cache = model.run_with_cache(PROMPTS, sites=[site], positions="last")
    assert prompt_index.tolist() == list(range(len(PROMPTS)))
    torch.testing.assert_close(values, cache[site])


def test_store_refuses_a_different_capture(model, tmp_path):
    capture_to_store(model, PROMPTS, ["blocks.0.hook_resid_post"], tmp_path / "s", progress=False)
    with pytest.raises(StoreError, match="holds a different capture .*sites"):
        capture_to_store(model, PROMPTS, ["blocks.1.hook_resid_post"], tmp_path / "s", progress=False)


def test_cli_sites_and_trace(folder, tmp_path, capsys):
    assert main(["sites", "--model", str(folder), "--json"]) == 0
    sites = json.loads(capsys.readouterr().out)
    assert {"site": "blocks.0.hook_resid_post", "layer": 0} .items() <= sites[1].items() or any(
        s["site"] == "blocks.0.hook_resid_post" for s in sites)
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n\n")
    code = main(["trace", "--model", str(folder), "--prompts", str(prompts), "--sites", "blocks.*.hook_resid_post",
                 "--out", str(tmp_path / "trace"), "--json", "--batch-size", "2"])
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["prompts"] == len(PROMPTS) and summary["sites"] == 3 and summary["family"] == "qwen2"
    assert "trace" in captured.err or summary["store"].endswith("trace")
    assert ActivationStore(tmp_path / "trace").complete


@pytest.mark.parametrize("argv, message", [
    (["trace", "--sites", "blocks.*.hook_nope"], "no site matches 'blocks.*.hook_nope'"),
    (["trace", "--positions", "first"], "--positions must be"),
    (["trace", "--batch-size", "zero"], "--batch-size must be"),
    (["sites", "--layer", "7"], "--layer 7 out of range"),
])
def test_cli_bad_input_is_one_line(folder, capsys, argv, message):
    assert main([*argv, "--model", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("steerlens: error: ") and message in err[0]


def test_cli_unknown_model_is_one_line(capsys):
    assert main(["sites", "--model", "no-such-model-anywhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'no-such-model-anywhere'" in err[0]


def test_cli_models_lists_the_zoo(capsys):
    assert main(["models", "--json"]) == 0
    aliases = {row["alias"] for row in json.loads(capsys.readouterr().out)}
    assert {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"} <= aliases
