"""RISE's training defaults (issue 37): a TopK SAE by default, the paper's ReLU + L1 values as
`--preset paper`, a default k clamped to the dictionary, and the one-line warning of
`rise analyze` for a dense or mostly dead SAE."""

from __future__ import annotations

import pytest
from synthetic import SITE, sparse_dictionary, write_store

from saes.diagnostics import health_warning
from saes.train import TrainConfig, load_sae, train_layer


def test_paper_preset_keeps_rise_values_and_given_options_win():
    paper = TrainConfig.preset("paper")
    assert (paper.architecture, paper.l1_coefficient, paper.batch_size, paper.lr, paper.warmup) == \
        ("standard", 2e-3, 1024, 1e-4, 0.1)
    assert TrainConfig().architecture == "topk" and TrainConfig.preset("default") == TrainConfig()
    assert TrainConfig.preset("paper", l1_coefficient=1.0).l1_coefficient == 1.0
    with pytest.raises(ValueError, match="--preset must be one of default, paper"):
        TrainConfig.preset("rise")


def test_default_k_is_clamped_to_the_dictionary_and_a_given_k_refused(tmp_path, capsys):
    _, samples = sparse_dictionary(n=64)
    write_store(tmp_path / "store", samples)
    config = TrainConfig(d_sae=16, batch_size=16, steps=2, checkpoints=0)
    sae = load_sae(train_layer(tmp_path / "store", SITE, tmp_path / "sae", config, progress=False))
    assert config.k == 16 and sae.cfg.d_sae == 16
    assert "note: using --k 16 (default --k 32 > 16 latents of the dictionary (--d-sae 16))" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--k 20 is more than the 16 latents of the dictionary"):
        train_layer(tmp_path / "store", SITE, tmp_path / "other", TrainConfig(d_sae=16, k=20, steps=2), progress=False)


def test_health_warning_names_a_dense_or_mostly_dead_sae_in_one_line():
    dense = health_warning({"l0": 617.0, "d_sae": 768, "dead_pct": 2.0}, 15)
    assert dense.startswith("layer 15 SAE is dense (L0 617 of 768 latents, 80% > 20%)") and "\n" not in dense
    assert "mostly dead (90% of latents never fire" in health_warning({"l0": 32.0, "d_sae": 768, "dead_pct": 90.0}, 3)
    assert health_warning({"l0": 153.0, "d_sae": 768, "dead_pct": 50.0}, 3) is None  # 19.9% and exactly half: fine
