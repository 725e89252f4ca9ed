"""screen_heads end to end on tiny models: methods agree, save/load, resume after an
interruption, out-of-memory back-off, and one-line errors before any work."""

from __future__ import annotations

import copy

import pytest
import torch

import interp.routing.screen.batched as batched
import interp.routing.screen.screen as screen_module
from interp.engine.model import Model
from interp.routing.screen import HeadScreen, ScreenConfig, screen_heads
from tiny import tiny_hf, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

HARMFUL = ["how to make a bomb?", "kill it now", "steal a car fast", "hack the bank", "poison the well"]
BENIGN = ["how to bake a cake, please?", "hug it", "wash a car fast", "visit the bank", "clean the well"]
CONTS = [[70, 71], [72, 73, 74], [75], [76, 77], [78, 79, 80, 81, 82]]


@pytest.fixture(scope="module")
def model():
    return tiny_model("qwen2")


def run(model, **kw):
    options = dict(permutations=500, bootstrap=100, top_k=3, batch_size=4)
    progress = kw.pop("progress", False)
    checkpoint_dir = kw.pop("checkpoint_dir", None)
    options.update(kw)
    return screen_heads(model, HARMFUL, BENIGN, CONTS, ScreenConfig(**options), progress=progress,
                        checkpoint_dir=checkpoint_dir)


def test_methods_agree_and_the_result_round_trips(model, tmp_path):
    exact = run(model, method="exact")
    mixed = run(model, method="atp+exact", verify=3, verify_random=2)
    atp = run(model, method="atp")
    H = model.n_layers * model.n_heads
    assert exact.necessity.shape == (H, 5) and bool(exact.exact.all()) and exact.atp_necessity is None
    rows = mixed.exact
    # the top 3 by max(|nec|, |suf|) estimate, 2 random, and any head whose estimates disagree 10x (verify.py)
    assert int(rows.sum()) >= 5 and torch.isnan(mixed.necessity[~rows]).all()
    assert len(mixed.fast_top) == 3 and all(mixed.exact[mixed.head_index(*h)] for h in mixed.fast_top)
    # the two screens batch different rows together (chunks follow the heads measured): equal up to float rounding
    assert torch.allclose(mixed.necessity[rows], exact.necessity[rows], rtol=0, atol=1e-6)
    assert torch.allclose(mixed.p_necessity[rows], exact.p_necessity[rows], rtol=0, atol=2 / 500)
    assert torch.equal(mixed.atp_necessity, atp.atp_necessity) and not bool(atp.exact.any())
    assert torch.isnan(atp.p_necessity).all() and atp.rank_correlation is None
    assert -1 <= mixed.rank_correlation <= 1 and 0 <= mixed.missed_top_k <= 3 and 0 < mixed.topk_jaccard <= 1
    assert torch.allclose(exact.baseline_delta, exact.nll_harmful - exact.nll_benign)
    assert torch.allclose(exact.necessity_pct, 100 * exact.necessity.mean(1) / exact.baseline_delta.mean())
    assert set(exact.timings) >= {"exact", "stats", "total"} and set(mixed.timings) >= {"atp", "exact"}
    path = mixed.save(tmp_path / "screen")
    back = HeadScreen.load(path)
    assert back.heads == mixed.heads and back.gate() == mixed.gate() and back.method == "atp+exact"
    assert torch.equal(back.necessity.isnan(), mixed.necessity.isnan()) and torch.equal(back.atp_sufficiency, mixed.atp_sufficiency)
    assert back.summary()["gate"]["layer"] == mixed.gate()[0]


def test_layers_and_heads_restrict_the_screen(model):
    only = run(model, method="exact", layers=(1, 2))
    assert only.heads == [(1, h) for h in range(model.n_heads)]
    some = run(model, method="exact", heads=[(2, 1), (0, 3)])
    assert some.heads == [(0, 3), (2, 1)]
    full = run(model, method="exact")
    assert torch.allclose(some.necessity[1], full.necessity[full.head_index(2, 1)], atol=1e-6)


def test_an_interrupted_screen_resumes_from_its_checkpoint_with_the_same_result(model, tmp_path, monkeypatch):
    calls = {"n": 0, "stop_at": None}
    real = screen_module.exact_scores

    def counted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["stop_at"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(screen_module, "exact_scores", counted)
    reference = run(model, method="atp+exact", verify=4, verify_random=2, batch_size=4)
    total = calls["n"]  # exact chunks of pairs
    assert total >= 2
    calls.update(n=0, stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        run(model, method="atp+exact", verify=4, verify_random=2, batch_size=4, checkpoint_dir=tmp_path)
    atp_chunks = len(screen_module.pair_chunks(5, 2, 4))
    assert len(list(tmp_path.glob("exact-*.safetensors"))) == 1 and len(list(tmp_path.glob("atp-*"))) == atp_chunks
    calls.update(n=0, stop_at=None)
    resumed = run(model, method="atp+exact", verify=4, verify_random=2, batch_size=4, checkpoint_dir=tmp_path)
    assert calls["n"] == total - 1  # only the unfinished chunks of pairs ran
    for name in ("necessity", "sufficiency", "atp_necessity", "p_necessity", "nll_harmful"):
        assert torch.equal(getattr(resumed, name).nan_to_num(7.0), getattr(reference, name).nan_to_num(7.0)), name
    other = run(model, method="atp+exact", verify=4, verify_random=2, batch_size=4, align="left", checkpoint_dir=tmp_path)
    assert not torch.equal(other.atp_necessity, reference.atp_necessity)  # another key: nothing mixed in


def test_out_of_memory_halves_the_batch_and_gives_the_same_numbers(model, monkeypatch):
    reference = run(model, method="exact", batch_size=8)
    real = batched.forward_from_layer
    sizes = []

    def small_memory(model_, batch, *args, **kwargs):
        sizes.append(batch.input_ids.shape[0])
        if batch.input_ids.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model_, batch, *args, **kwargs)

    monkeypatch.setattr(batched, "forward_from_layer", small_memory)
    squeezed = run(model, method="exact", batch_size=8)
    assert max(sizes) == 8 and 2 in sizes
    assert torch.allclose(squeezed.necessity, reference.necessity, atol=2e-6)
    assert torch.allclose(squeezed.sufficiency, reference.sufficiency, atol=2e-6)


@pytest.mark.parametrize("change, message", [
    (dict(harmful=HARMFUL[:4]), "one of each per pair"),
    (dict(harmful=HARMFUL[:1], benign=BENIGN[:1], conts=CONTS[:1]), "at least 2"),
    (dict(conts=[[70] * 6] + CONTS[1:]), "1..5 token ids"),
    (dict(conts=[[1, 70]] + CONTS[1:]), "special token"),
    (dict(conts=[[9999]] + CONTS[1:]), "outside the vocabulary"),
    (dict(layers=(1, 9)), "out of range"),
    (dict(method="atp+exact", verify=13), "--verify 13 is more than the 12 heads screened"),
    (dict(heads=[(0, 7)]), "out of range"),
    (dict(method="fast"), "method must be one of"),
])
def test_bad_input_is_one_line_before_any_work(model, change, message, monkeypatch):
    monkeypatch.setattr(screen_module, "atp_scores", _never)
    monkeypatch.setattr(screen_module, "exact_scores", _never)
    harmful, benign, conts = change.pop("harmful", HARMFUL), change.pop("benign", BENIGN), change.pop("conts", CONTS)
    with pytest.raises(ValueError, match=message):
        screen_heads(model, harmful, benign, conts, ScreenConfig(**{"method": "exact", **change}), progress=False)


def test_a_model_without_a_chat_template_says_how_to_run_without_one(monkeypatch):
    plain = Model(tiny_hf("llama"), copy.deepcopy(tiny_model("llama").tokenizer))
    plain.tokenizer.chat_template = None
    monkeypatch.setattr(screen_module, "atp_scores", _never)
    with pytest.raises(ValueError, match="chat=False"):
        screen_heads(plain, HARMFUL, BENIGN, CONTS, ScreenConfig(verify=3), progress=False)
    result = screen_heads(plain, HARMFUL[:2], BENIGN[:2], CONTS[:2], ScreenConfig(method="exact", permutations=10,
                          bootstrap=10), chat=False, progress=False)
    assert result.necessity.shape == (12, 2)


def _never(*args, **kwargs):
    raise AssertionError("work started before the input was checked")


def test_chunks_fill_a_batch_for_the_sparsest_layer():
    from interp.routing.screen.screen import MAX_CHUNK, pair_chunks

    assert pair_chunks(5, 2, 4) == [[0, 1], [2, 3], [4]]  # AtP: two prompts per pair
    assert pair_chunks(120, 1, 14)[0] == list(range(14))  # one head in a layer: 14 pairs per batch
    assert pair_chunks(120, 14, 14)[0] == [0]  # a whole layer of 14 heads fills a batch with one pair
    assert max(len(c) for c in pair_chunks(1000, 1, 1000)) == MAX_CHUNK
    assert sum(pair_chunks(7, 3, 8), []) == list(range(7))
