"""The RISE step store and SAE checkpoints refuse a resume made under other settings, naming the field."""

from __future__ import annotations

import json

import pytest
from synthetic import SITE, sparse_dictionary, write_store
from tiny import tiny_model

from interp.engine.model import Model
from interp.engine.store import StoreError
from saes.collect import CollectConfig, collect
from saes.train import TrainConfig, train_layer

pytestmark = pytest.mark.usefixtures("one_thread")
TRACES = [("What is 2+3?", "2 plus 3.\n\nWait: 5.\n\nThe answer is 5", 5),
          ("What is 4*2?", "4 times 2.\n\nSo 8.\n\nThe answer is 8", 8)]


def test_rise_store_refuses_another_truncation_or_template(tmp_path):
    model = tiny_model("qwen2")
    problems = tmp_path / "traces.jsonl"
    problems.write_text("\n".join(json.dumps({"question": q, "response": r, "answer": a}) for q, r, a in TRACES))
    collect(model, CollectConfig(layers=[1]), tmp_path / "run", problems_file=str(problems), chat=True,
            progress=False, batch_size=2)
    with pytest.raises(StoreError, match=r"truncation: recorded \d+, now 16"):
        collect(model, CollectConfig(layers=[1], max_tokens=16), tmp_path / "run", problems_file=str(problems),
                chat=True, progress=False, batch_size=2)
    other = Model(model.hf, model.tokenizer, bos="always", info=dict(model.info))
    with pytest.raises(StoreError, match=r"bos: recorded 'default', now 'always'"):
        collect(other, CollectConfig(layers=[1]), tmp_path / "run", problems_file=str(problems), chat=True,
                progress=False, batch_size=2)


def test_sae_checkpoint_refuses_activations_made_otherwise(tmp_path):
    _, samples = sparse_dictionary(n=256)
    write_store(tmp_path / "store", samples)
    config = TrainConfig(d_sae=16, batch_size=32, steps=12, lr=1e-3, checkpoints=2)
    train_layer(tmp_path / "store", SITE, tmp_path / "cut", config, seed=5, stop_after=8, progress=False)
    index_file = tmp_path / "store" / "index.json"
    index = json.loads(index_file.read_text())
    index_file.write_text(json.dumps({**index, "bos": "never"}))  # the store rebuilt under another BOS policy
    with pytest.raises(ValueError, match=r"its activations\) was made under other settings \(bos: recorded None, "
                                         r"now 'never'\)"):
        train_layer(tmp_path / "store", SITE, tmp_path / "cut", config, seed=5, resume=True, progress=False)
    index_file.write_text(json.dumps(index))
    train_layer(tmp_path / "store", SITE, tmp_path / "cut", config, seed=5, resume=True, progress=False)
    assert (tmp_path / "cut" / "cfg.json").is_file()
