"""Acceptance of issue 31 (slow; `pytest -m zoo`): with the paper options, `steerlens austeer
fit` selects exactly the authors' units on the shipped arithmetic task (32 triples,
SmolLM2-135M-Instruct) at k = 8 and k = 32 for all three sites.

The reference is independent of the engine: each text runs alone through the Hugging Face
model (the tokenizer's own special tokens, no padding, as steer.py's `obtain_act`), raw
PyTorch hooks read o_proj's input, the MLP output and the decoder-layer output at the last
token, and the authors' rule (`reference_units`, written from their description) picks
the units.
"""

import json

import pytest
import torch
from austeer_reference import reference_units

import interp
from interp.cli import main
from steering.austeer import REFUSAL_STRING
from steering.tasks import get_task, triples

pytestmark = pytest.mark.zoo
SMOL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smol():
    from zoo_models import require

    require(SMOL)
    return interp.load(SMOL, device="cpu", dtype="float32")


SITES = ("attention", "ffn", "layer")


def _reference_activations(model, texts: list[str]) -> dict[str, torch.Tensor]:
    """site -> [N, L, width] last-token activations, one text per forward, read by raw hooks."""
    layers = model.hf.model.layers
    seen: dict[tuple[str, int], torch.Tensor] = {}

    def keep(site, layer):
        def hook(module, args, output=None):
            value = args[0] if site == "attention" else output
            value = value[0] if isinstance(value, tuple) else value
            seen[site, layer] = value[0, -1].detach().float().clone()
        return hook

    handles = []
    for layer, block in enumerate(layers):
        handles.append(block.self_attn.o_proj.register_forward_pre_hook(keep("attention", layer)))
        handles.append(block.mlp.register_forward_hook(keep("ffn", layer)))
        handles.append(block.register_forward_hook(keep("layer", layer)))
    rows: dict[str, list[torch.Tensor]] = {site: [] for site in SITES}
    try:
        with torch.no_grad():
            for text in texts:
                model.hf(input_ids=model.tokenizer(text, return_tensors="pt").input_ids)
                for site in SITES:
                    rows[site].append(torch.stack([seen[site, layer] for layer in range(len(layers))]))
    finally:
        for handle in handles:
            handle.remove()
    return {site: torch.stack(rows[site]) for site in SITES}


@pytest.fixture(scope="module")
def reference(smol):
    """site -> (right, wrong) activations of the authors' positive and negative texts."""
    train = triples(get_task("arithmetic").split(32, 0, 0, seed=0)["train"])
    positives = [right if REFUSAL_STRING in right else prompt + right for prompt, right, _ in train]
    right = _reference_activations(smol, positives)
    wrong = _reference_activations(smol, [prompt + wrong for prompt, _, wrong in train])
    return {site: (right[site], wrong[site]) for site in SITES}


@pytest.mark.parametrize("site", SITES)
def test_paper_options_select_the_authors_units(smol, reference, site, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("steering.cli_vectors.load_model", lambda args: smol)
    right, wrong = reference[site]
    for k in (8, 32):
        out = tmp_path / f"{site}-{k}.safetensors"
        assert main(["austeer", "fit", "--task", "arithmetic", "--n-train", "32", "--site", site, "--k", str(k),
                     "--tie-break", "paper", "--capture-dtype", "float16", "--positive-text", "paper",
                     "--out", str(out), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        chosen = [(layer, dim) for layer, dim, _ in summary["config"]["selected"]]
        assert chosen == reference_units(right, wrong, k)
