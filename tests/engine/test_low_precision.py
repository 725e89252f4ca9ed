"""bf16 / fp16 weights: captures come out in float32 (the store's default and `dtype=`), and
the statistics built on them (massive-activation norms and medians, DLA sums) are float32
or float64 and agree with the float32 model within stated tolerances.

Tolerances (tiny 3-layer model, same weights loaded in each dtype): bf16 keeps 8 bits of
mantissa (unit roundoff 2^-9 = 2e-3), fp16 11 bits (2^-12 = 2.4e-4); errors grow layer by
layer, so captures must agree to 2.5e-2 (bf16) / 5e-3 (fp16) relative Frobenius error per
site, massive statistics to 2e-2 relative, DLA attributions to 2e-2 of the largest one.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import interp
from interp.engine.store import capture_to_store

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["alpha beta gamma", "delta", "epsilon zeta eta theta"]
SITES = [f"blocks.{layer}.{s}" for layer in range(3) for s in ("hook_resid_post", "attn.hook_z", "mlp.hook_post")]
CAPTURE_RTOL = {torch.bfloat16: 2.5e-2, torch.float16: 5e-3}


@pytest.fixture(scope="module")
def full(tiny_llama_folder):
    return interp.load(str(tiny_llama_folder), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def bf16(tiny_llama_folder):
    return interp.load(str(tiny_llama_folder), device="cpu", dtype="bf16")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_captures_agree_with_float32(full, tiny_llama_folder, dtype):
    low = interp.load(str(tiny_llama_folder), device="cpu", dtype=dtype)
    assert low.dtype == dtype
    _, want = full.run_with_cache(PROMPTS, sites=SITES)
    _, got = low.run_with_cache(PROMPTS, sites=SITES, dtype=torch.float32)
    mask = want.attention_mask.bool()
    for site in SITES:
        assert got[site].dtype == torch.float32
        assert _relative(got[site][mask], want[site][mask]) < CAPTURE_RTOL[dtype], site
    _, native = low.run_with_cache(PROMPTS[:1], sites=SITES[:1])
    assert native[SITES[0]].dtype == dtype  # without dtype= a capture keeps the model's dtype


def test_bf16_store_is_float32(bf16, full, tmp_path):
    site = "blocks.2.hook_resid_post"
    values, _, _ = capture_to_store(bf16, PROMPTS, [site], tmp_path / "s", progress=False).load(site)
    reference, _, _ = capture_to_store(full, PROMPTS, [site], tmp_path / "r", progress=False).load(site)
    assert values.dtype == torch.float32 and _relative(values, reference) < CAPTURE_RTOL[torch.bfloat16]


def test_bf16_statistics_are_float32_and_agree(bf16, full):
    want, got = interp.massive_activations(full, PROMPTS), interp.massive_activations(bf16, PROMPTS)
    for name in ("max_abs", "median_abs", "ratio"):
        value = getattr(got, name)
        assert value.dtype == torch.float32, name
        assert float(((value - getattr(want, name)).abs() / getattr(want, name).abs()).max()) < 2e-2, name
    want, got = interp.dla(full, PROMPTS, target="a", contrast="b"), interp.dla(bf16, PROMPTS, target="a", contrast="b")
    scale = float(want.attributed.abs().max())
    for field in dataclasses.fields(got):
        value = getattr(got, field.name)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert value.dtype in (torch.float32, torch.float64), field.name
    for name in ("head_attr", "mlp_attr", "attributed", "model_value"):
        assert float((getattr(got, name) - getattr(want, name)).abs().max()) < 2e-2 * scale, name
    assert float((got.attributed - got.model_value).abs().max()) < 2e-2 * scale  # the sum check holds in bf16
