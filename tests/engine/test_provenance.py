"""A resumable artefact made under other settings is refused before any work, naming the field and both values.

Activation store (`capture_to_store`, `steerlens trace --resume`), pooled skill vectors
and the routing run's fingerprint and screen checkpoints; the RISE store and SAE
checkpoints are tested in tests/saes/test_rise_provenance.py.
"""

from __future__ import annotations

import pytest
import torch
from tiny import save_tiny, tiny_model

from interp.cli import main
from interp.engine.model import Model
from interp.engine.provenance import ProvenanceError, check_provenance, provenance
from interp.engine.store import ActivationStore, StoreError, capture_to_store

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota kappa lambda"]
SITE = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model():
    return tiny_model("llama")


def _interrupted_store(model, path, monkeypatch, **kwargs) -> None:
    """A store cut after its first shard (the second batch raises)."""
    calls = {"n": 0}
    real = Model.run_with_cache

    def flaky(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(Model, "run_with_cache", flaky)
        with pytest.raises(KeyboardInterrupt):
            capture_to_store(model, PROMPTS, [SITE], path, batch_size=2, progress=False, **kwargs)
    assert len(ActivationStore(path).index["shards"]) == 1


def _no_forward(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a resume that differs ran a forward pass")
    monkeypatch.setattr(Model, "run_with_cache", fail)


def test_store_resumed_under_another_bos_policy_is_refused_before_any_work(model, tmp_path, monkeypatch):
    _interrupted_store(model, tmp_path / "s", monkeypatch)
    never = Model(model.hf, model.tokenizer, bos="never", info=dict(model.info))
    with monkeypatch.context() as patch:
        _no_forward(patch)
        with pytest.raises(StoreError, match=r"bos: recorded 'default', now 'never'.*token_ids_sha256: recorded"):
            capture_to_store(never, PROMPTS, [SITE], tmp_path / "s", batch_size=2, progress=False)
        with pytest.raises(StoreError, match=r"dtype: recorded 'float32', now 'bfloat16'"):
            capture_to_store(model, PROMPTS, [SITE], tmp_path / "s", batch_size=2, progress=False,
                             dtype=torch.bfloat16)
    assert len(ActivationStore(tmp_path / "s").index["shards"]) == 1  # nothing written
    store = capture_to_store(model, PROMPTS, [SITE], tmp_path / "s", batch_size=2, progress=False)
    assert store.complete and store.index["bos"] == "default"


def test_store_resumed_under_another_chat_template_is_refused(model, tmp_path, monkeypatch):
    _interrupted_store(model, tmp_path / "s", monkeypatch, chat=True)
    other = Model(model.hf, model.tokenizer.__class__.from_pretrained(save_tiny(model, tmp_path / "m")),
                  info=dict(model.info))
    other.tokenizer.chat_template = model.tokenizer.chat_template.replace("<assistant>", "<bot>")
    with monkeypatch.context() as patch:
        _no_forward(patch)
        with pytest.raises(StoreError, match=r"chat_template_sha256: recorded '[0-9a-f]+.*', now '"):
            capture_to_store(other, PROMPTS, [SITE], tmp_path / "s", batch_size=2, progress=False, chat=True)


def test_trace_resume_with_another_bos_is_one_line(model, tmp_path, capsys):
    folder = save_tiny(model, tmp_path / "model")
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS))
    base = ["trace", "--model", str(folder), "--prompts", str(prompts), "--sites", SITE, "--out",
            str(tmp_path / "store"), "--batch-size", "2"]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--resume", "--bos", "never"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bos: recorded 'default', now 'never'" in err[0]


def test_pooled_skill_vectors_refuse_another_bos_policy(model, tmp_path):
    from steering.skills.pooling import pool_to_store

    texts = [f"text number {i}" for i in range(6)]
    pool_to_store(model, texts, [1], tmp_path / "p", batch_size=4, progress=False)
    always = Model(model.hf, model.tokenizer, bos="never", info=dict(model.info))
    with pytest.raises(StoreError, match=r"bos: recorded 'default', now 'never'"):
        pool_to_store(always, texts, [1], tmp_path / "p", batch_size=4, resume=True, progress=False)
    with pytest.raises(StoreError, match=r"truncation: recorded 256, now 64"):
        pool_to_store(model, texts, [1], tmp_path / "p", batch_size=4, resume=True, progress=False, max_tokens=64)


def test_routing_fingerprint_records_the_bos_policy_and_token_ids(model):
    from interp.routing.pairs import load_pairs
    from interp.routing.config import RoutingConfig
    from interp.routing.pipeline import _fingerprint

    pairs = load_pairs()[:4]
    never = Model(model.hf, model.tokenizer, bos="never", info=dict(model.info))
    a = _fingerprint(model, pairs, RoutingConfig(), True, 0)
    b = _fingerprint(never, pairs, RoutingConfig(), True, 0)
    assert (a["bos"], b["bos"]) == ("default", "never")
    assert a["chat_template_sha256"] and a["token_ids_sha256"] == b["token_ids_sha256"]  # chat: the template's own
    c = _fingerprint(never, pairs, RoutingConfig(), False, 0)
    assert c["token_ids_sha256"] != _fingerprint(model, pairs, RoutingConfig(), False, 0)["token_ids_sha256"]


def test_check_provenance_names_each_field_and_both_values(model):
    made = provenance(model, PROMPTS, dtype=torch.float32)
    assert set(made) >= {"bos", "chat_template_sha256", "token_ids_sha256", "truncation", "dtype", "model_sha256"}
    check_provenance(made, provenance(model, PROMPTS, dtype=torch.float32), "x")
    with pytest.raises(ProvenanceError, match=r"x was made under other settings \(dtype: recorded 'float32', "
                                             r"now 'float16'\)"):
        check_provenance(made, provenance(model, PROMPTS, dtype=torch.float16), "x")
