"""Router captures and expert toggles on tiny random models of every MoE family.

What "equal" means for a switched-off expert: the same model with that expert deleted from
the layer (router row, correction bias and fused expert weights removed, E-1 experts), run by
transformers' own code. Its routing renormalises over the remaining experts: with
`norm_topk_prob` the kept top-k weights sum to one; without it (Qwen2-MoE, Qwen3-MoE and OLMoE
defaults) the softmax itself runs over the E-1 experts; GPT-OSS takes a softmax over the
kept top-k logits; DeepSeek-V3 weights are unbiased sigmoid scores.
"""

from __future__ import annotations

import copy

import pytest
import torch
from tiny import MOE, tiny_model

from interp.engine.experts import ExpertToggle, bias_site, expert_toggles, moe_layers, parse_experts, router_of

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = ["Once upon a time", "Hi"]  # padded batch
CASES = [(f, {}) for f in MOE] + [("qwen3_moe", {"norm_topk_prob": True}), ("olmoe", {"norm_topk_prob": True}),
                                   ("deepseek_v3", {"n_group": 2, "topk_group": 1})]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c[0] + "".join(f"-{k}" for k in c[1]))
def model(request):
    family, overrides = request.param
    built = tiny_model(family, **overrides)
    _skip_without_topk_router(built)
    return built


def _skip_without_topk_router(model):
    """Older transformers 5 releases (e.g. 5.5) give DeepSeek-V3 a router that returns logits
    only; toggles and top-k captures then refuse with a one-line error (checked here)."""
    router = router_of(model, moe_layers(model)[0])
    if not hasattr(router, "top_k"):
        with pytest.raises(ValueError, match="upgrade transformers"):
            expert_toggles(model, off=[(moe_layers(model)[0], 0)])
        pytest.skip(f"{type(router).__name__} selects no top-k in this transformers release")


def _experts_module(model, layer):
    path = model.site(bias_site(layer)).module_path.rsplit(".", 1)[0]
    return model.hf.get_submodule(f"{path}.{model.spec.experts}")


def _raw_expert_inputs(model, layer, prompts, edits=()):
    """(ids, weights) the fused experts module actually receives, via a plain torch hook."""
    seen = {}

    def grab(mod, args, kwargs):
        seen["ids"], seen["weights"] = args[1], args[2]

    handle = _experts_module(model, layer).register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model.forward(prompts, edits=edits)
    finally:
        handle.remove()
    return seen["ids"], seen["weights"]


def _real(model, prompts):
    return model.tokenize(prompts).attention_mask.bool()  # [b, p]


def _capture(model, layer, prompts, edits=()):
    _, cache = model.run_with_cache(prompts, [f"blocks.{layer}.moe.hook_selected"], edits=edits, logits=None)
    return cache[f"blocks.{layer}.moe.hook_selected"]


def test_captured_topk_is_what_the_experts_receive(model):
    for layer in moe_layers(model):
        sel = _capture(model, layer, PROMPTS)
        ids, weights = _raw_expert_inputs(model, layer, PROMPTS)
        assert torch.equal(sel.ids.reshape(ids.shape), ids)
        assert torch.equal(sel.weights.reshape(weights.shape), weights)


def test_empty_toggle_reproduces_the_model(model):
    """The engine's re-selection with a zero bias computes what the router computes."""
    layer = moe_layers(model)[-1]
    plain = model.forward(PROMPTS)
    same = model.forward(PROMPTS, edits=[ExpertToggle(bias_site(layer))])
    torch.testing.assert_close(same, plain, rtol=1e-5, atol=1e-5)


def _without_expert(model, layer, expert):
    """A deep copy of the HF model with one expert deleted from one layer."""
    hf = copy.deepcopy(model.hf)
    path = model.site(bias_site(layer)).module_path
    router = hf.get_submodule(path)
    experts = hf.get_submodule(f"{path.rsplit('.', 1)[0]}.{model.spec.experts}")
    total = router.weight.shape[0]
    keep = [e for e in range(total) if e != expert]
    for module in (router, experts):
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if tensor.shape[0] == total:
                sliced = tensor.data[keep].clone()
                setattr(module, name, torch.nn.Parameter(sliced, requires_grad=False)
                        if isinstance(tensor, torch.nn.Parameter) else torch.nn.Buffer(sliced))
        module.num_experts = total - 1
    return hf


def test_off_expert_is_never_selected_and_equals_the_pruned_model(model):
    layer, expert = moe_layers(model)[0], 1
    edits = expert_toggles(model, off=[(layer, expert)])
    sel = _capture(model, layer, PROMPTS, edits)
    real = _real(model, PROMPTS)
    assert not (sel.ids[real] == expert).any()
    ids, _ = _raw_expert_inputs(model, layer, PROMPTS, edits)
    assert not (ids.view(*real.shape, -1)[real] == expert).any()
    toggled = model.forward(PROMPTS, edits=edits)
    if getattr(router_of(model, layer), "num_group", 1) > 1:
        return  # grouped routing: 3 experts do not split into 2 groups, so there is no pruned twin
    pruned = type(model)(_without_expert(model, layer, expert), model.tokenizer, spec=model.spec)
    reference = pruned.forward(PROMPTS)
    torch.testing.assert_close(toggled[real], reference[real], rtol=1e-4, atol=1e-5)
    assert (toggled[real] - model.forward(PROMPTS)[real]).abs().max() > 1e-3  # the toggle did something


def test_forced_on_expert_is_always_selected_with_its_own_weight(model):
    layer = moe_layers(model)[-1]
    plain = _capture(model, layer, PROMPTS)
    real = _real(model, PROMPTS)
    counts = torch.bincount(plain.ids[real].flatten(), minlength=4)
    expert = int(counts.argmin())  # the least used expert
    sel = _capture(model, layer, PROMPTS, expert_toggles(model, on=[(layer, expert)]))
    assert (sel.ids[real] == expert).any(-1).all()
    assert (sel.weights[real] > 0).all()
    if model.spec.family != "gpt_oss" and not getattr(router_of(model, layer), "norm_topk_prob", True):
        # unnormalised softmax routers: a token that already chose it keeps the very same weight
        chose = (plain.ids == expert).any(-1) & real
        before = (plain.weights * (plain.ids == expert))[chose].sum(-1)
        after = (sel.weights * (sel.ids == expert))[chose].sum(-1)
        torch.testing.assert_close(after, before)


def test_per_row_toggle_equals_that_row_alone(model):
    layer = moe_layers(model)[0]
    rowwise = [ExpertToggle(bias_site(layer), off=[0], rows=[0]), ExpertToggle(bias_site(layer), off=[2], rows=[1])]
    both = model.forward(PROMPTS, edits=rowwise)
    for row, expert in ((0, 0), (1, 2)):
        alone = model.forward([PROMPTS[row]], edits=expert_toggles(model, off=[(layer, expert)]))
        n = alone.shape[1]
        torch.testing.assert_close(both[row, -n:], alone[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("prompts", [PROMPTS[:1], PROMPTS], ids=["one", "padded"])
def test_generation_with_toggles_equals_the_uncached_run(model, prompts):
    layers = moe_layers(model)
    edits = expert_toggles(model, off=[(layers[0], 0)], on=[(layers[-1], 3)])
    kw = dict(edits=edits, max_new_tokens=5, return_logits=True, stop_at_eos=False)
    cached = model.generate(prompts, **kw)
    uncached = model.generate(prompts, use_cache=False, **kw)
    assert torch.equal(cached.sequences, uncached.sequences)
    torch.testing.assert_close(cached.logits, uncached.logits, rtol=1e-4, atol=1e-4)
    # and one forward pass over the final sequences gives the same step logits
    mask = (torch.arange(cached.sequences.shape[1]) >= (cached.sequences[:, : cached.prompt_len] == 0).sum(-1, keepdim=True)).long()
    from interp.engine.model import TokenBatch
    batch = TokenBatch(cached.sequences, mask, list(prompts))
    full = model.forward(batch, edits=edits)[:, cached.prompt_len - 1 : -1]
    torch.testing.assert_close(cached.logits, full, rtol=1e-4, atol=1e-4)


def test_bad_toggles_are_refused_before_running():
    model = tiny_model("qwen3_moe")
    with pytest.raises(ValueError, match="expert out of range"):
        expert_toggles(model, off=[(0, 4)])
    with pytest.raises(ValueError, match="layer 7 has no router"):
        expert_toggles(model, on=[(7, 0)])
    with pytest.raises(ValueError, match="top_k=2"):
        expert_toggles(model, on=[(0, 0), (0, 1), (0, 2)])
    with pytest.raises(ValueError, match="fewer than top_k"):
        expert_toggles(model, off=[(0, 0), (0, 1), (0, 2)])
    with pytest.raises(ValueError, match="both switched off and forced on"):
        expert_toggles(model, off=[(0, 1)], on=[(0, 1)])
    with pytest.raises(ValueError, match="LAYER:EXPERT"):
        parse_experts("3-17")
    assert parse_experts("3:17, 5:2") == [(3, 17), (5, 2)]
    with pytest.raises(ValueError, match="no mixture-of-experts layers"):
        expert_toggles(tiny_model("llama"), off=[(0, 0)])
    deepseek = tiny_model("deepseek_v3")
    if hasattr(router_of(deepseek, moe_layers(deepseek)[0]), "top_k"):
        with pytest.raises(ValueError, match="layer 0 has no router"):  # DeepSeek-V3's first layer is dense
            expert_toggles(deepseek, off=[(0, 1)])


def test_per_row_toggles_follow_caller_rows_in_chunked_generation():
    model = tiny_model("qwen3_moe")
    layer = moe_layers(model)[0]
    prompts = ["Hi", "Once upon a time", "The end"]
    edits = [ExpertToggle(bias_site(layer), off=[0, 1], rows=[1]), ExpertToggle(bias_site(layer), on=[3], rows=[2])]
    kw = dict(edits=edits, max_new_tokens=4, stop_at_eos=False)
    whole = model.generate(prompts, **kw)
    chunked = model.generate(prompts, batch_size=1, **kw)  # each chunk sees its caller row index
    assert chunked.texts == whole.texts
    alone = [model.generate([p], edits=expert_toggles(model, off=off, on=on), max_new_tokens=4, stop_at_eos=False).texts[0]
             for p, off, on in zip(prompts, ([], [(layer, 0), (layer, 1)], []), ([], [], [(layer, 3)]))]
    assert whole.texts == alone


def test_router_logits_capture_is_the_routers_linear_map_in_every_release(model):
    """`hook_router_logits` holds raw logits (some transformers 5 releases return softmax
    probabilities as the router's first output): the router's linear map of its own input."""
    layer = moe_layers(model)[0]
    router = router_of(model, layer)
    seen = {}

    def grab(mod, args):
        seen["x"] = args[0]

    handle = router.register_forward_pre_hook(grab)
    try:
        _, cache = model.run_with_cache(PROMPTS, [f"blocks.{layer}.moe.hook_router_logits"], positions="all")
    finally:
        handle.remove()
    logits = cache[f"blocks.{layer}.moe.hook_router_logits"]
    bias = getattr(router, "bias", None)
    expected = torch.nn.functional.linear(seen["x"].float(), router.weight.float(), bias)
    assert torch.allclose(logits.reshape(-1, logits.shape[-1]).float(), expected.reshape(-1, logits.shape[-1]),
                          atol=1e-5)
    assert (logits < 0).any()  # logits, not probabilities
