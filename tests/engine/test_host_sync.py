"""No host synchronisation inside the forward pass: captures and edits add no `.item()`,
`.cpu()`, `.tolist()`, `int(tensor)`, `bool(tensor)` ... to what the model itself does.

On a GPU each of those waits for every queued kernel; inside the layer loop that serialises
the pass. The calls are counted while `model.hf` runs (a plain forward is the baseline:
transformers' own mask code may synchronise, steerlens must add nothing), with torch's
methods patched; captures go to the CPU through `interp.engine.transfer.to_host`
(pinned, non-blocking on CUDA) and are waited for once per batch, after the forward.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from tiny import tiny_model

from interp.engine.edits import Add, Patch, ProjectOut, Zero
from interp.engine.transfer import to_host

pytestmark = pytest.mark.usefixtures("one_thread")
SYNCING = ("item", "tolist", "cpu", "numpy", "__int__", "__float__", "__bool__", "__index__")
PROMPTS = ["alpha beta", "gamma", "delta epsilon zeta"]


@contextlib.contextmanager
def count_syncs(model):
    counts = {"n": 0, "what": []}
    inside = {"on": False}
    originals = {name: getattr(torch.Tensor, name) for name in SYNCING}

    def wrap(name):
        def method(self, *args, **kwargs):
            if inside["on"]:
                counts["n"] += 1
                counts["what"].append(name)
            return originals[name](self, *args, **kwargs)
        return method

    def enter(*_args, **_kwargs):
        inside["on"] = True

    def leave(*_args, **_kwargs):
        inside["on"] = False

    handles = [model.hf.register_forward_pre_hook(enter, prepend=True),
               model.hf.register_forward_hook(leave, always_call=True)]
    real_sync = torch.cuda.synchronize
    torch.cuda.synchronize = wrap_sync = lambda *a, **k: (counts.__setitem__("n", counts["n"] + inside["on"]),
                                                          real_sync(*a, **k) if torch.cuda.is_available() else None)
    for name in SYNCING:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)
        torch.cuda.synchronize = real_sync
        for handle in handles:
            handle.remove()
        del wrap_sync


def test_captures_and_edits_add_no_host_sync_to_the_forward():
    model = tiny_model("llama")
    sites = [f"blocks.{layer}.{s}" for layer in range(model.n_layers)
             for s in ("hook_resid_post", "attn.hook_z", "ln1.hook_scale")]
    v = torch.randn(model.d_model)
    _, donor = model.run_with_cache(PROMPTS, sites=["blocks.0.hook_resid_post"])
    edits = [Add("blocks.0.hook_resid_post", vector=v, alpha=2.0), ProjectOut("blocks.1.hook_resid_post", direction=v),
             Zero("blocks.1.attn.hook_z", heads=[1], positions=[0, -1]),
             Patch("blocks.0.hook_resid_post", donor=donor["blocks.0.hook_resid_post"],
                   donor_mask=donor.attention_mask, positions="last")]
    with count_syncs(model) as plain:
        model.forward(PROMPTS)
    for positions in ("all", "last", [0, -1]):
        with count_syncs(model) as traced:
            model.run_with_cache(PROMPTS, sites=sites, positions=positions, edits=edits, to_cpu=True,
                                 dtype=torch.float32, batch_size=2)
        baseline = 2 * plain["n"] if plain["n"] else 0  # two batches of the same prompts
        assert traced["n"] <= baseline, (positions, traced["what"], plain["what"])


def test_to_host_is_a_cpu_tensor_with_the_same_values():
    x = torch.randn(3, 4)
    assert torch.equal(to_host(x), x) and to_host(x).device.type == "cpu"


def test_edit_vectors_are_copied_once_per_device_and_version():
    from interp.engine.transfer import on_device

    v = torch.randn(8)
    half = on_device(v, v.device, torch.float16)
    assert half.dtype == torch.float16 and on_device(v, v.device, torch.float16) is half
    v.mul_(2)  # an in-place change is seen
    assert torch.equal(on_device(v, v.device, torch.float16), (v).half())
    assert on_device(v, v.device, torch.float32) is v
    with torch.inference_mode():
        w = torch.randn(4)
    assert torch.equal(on_device(w, w.device, torch.float64), w.double())


def test_steered_generation_adds_no_host_sync_to_its_forward_passes():
    model = tiny_model("llama")
    v = torch.randn(model.d_model)
    edits = [Add("blocks.1.hook_resid_post", vector=v, alpha=2.0, positions="last+generated"),
             Zero("blocks.0.attn.hook_z", heads=[0], positions="generated")]
    with count_syncs(model) as plain:
        model.generate(PROMPTS, max_new_tokens=4, stop_at_eos=False)
    with count_syncs(model) as steered:
        model.generate(PROMPTS, edits=edits, max_new_tokens=4, stop_at_eos=False)
    assert steered["n"] == plain["n"], (steered["what"], plain["what"])
    with count_syncs(model) as captured:  # capture= copies are waited for after generate, not per layer
        model.generate(PROMPTS, max_new_tokens=4, stop_at_eos=False,
                       capture=["blocks.0.attn.hook_z", "blocks.1.hook_resid_post", "blocks.1.attn.hook_pattern"])
    assert captured["n"] == plain["n"], (captured["what"], plain["what"])
