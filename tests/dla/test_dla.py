"""Direct logit attribution: exact identities, TransformerLens cross-check, a planted head, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import FAMILIES, MOE, tiny_model

import interp
from interp.cli import main
from interp.dla.directions import (
    refusal_direction, refusal_token_ids, single_token_id, stack_directions, token_direction, vector_direction,
)
from interp.dla.attribution import DLAConfig, DLAResult, dla
from interp.dla.decompose import decompose, head_dla
from interp.runs.results import load_run

PROMPTS = ["The cat sat on the mat.", "Hi!", "A longer prompt, with commas; and more."]
REL = 1e-4


def _hf_last(model, prompts):
    """Independent reference: HF's own pre-cap logits and returned logits at the last token (float64)."""
    batch = model.tokenize(prompts)
    with torch.inference_mode():
        out = model.hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids(), output_hidden_states=True)
    pre_cap = model.hf.lm_head(out.hidden_states[-1][:, -1]).double()  # hidden_states[-1] is final-normed
    return pre_cap, out.logits[:, -1].double()


def _close(a, b, scale):
    assert (a - b).abs().max().item() <= REL * max(scale, 1e-3), (a, b)


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma2", "gemma3", "gpt2"])
def test_attributions_sum_to_hf_logit_difference(family):
    model = tiny_model(family)
    result = dla(model, PROMPTS, "a", "e")
    pre_cap, returned = _hf_last(model, PROMPTS)
    a, e = single_token_id(model, "a"), single_token_id(model, "e")
    expected = pre_cap[:, a] - pre_cap[:, e]
    _close(result.attributed[:, 0], expected, expected.abs().max().item())
    assert result.sum_check <= REL * max(expected.abs().max().item(), 1e-3)
    if family == "gemma2":  # soft-capped: HF returns cap * tanh(pre / cap); DLA explains the pre-cap value
        cap = model.config.final_logit_softcapping
        torch.testing.assert_close(torch.tanh(pre_cap / cap) * cap, returned, rtol=0, atol=1e-5)
        assert "soft-capped" in result.summary()["softcap"]
    else:
        _close(result.hf_value, returned[:, a] - returned[:, e], expected.abs().max().item())


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in ("llama", "qwen2", "gemma2", "gemma3", "gpt2")])
def test_identity_holds_for_every_other_family(family):
    model = tiny_model(family)
    dec = decompose(model, PROMPTS, token_direction(model, "x"), neurons=family not in MOE or family == "deepseek_v3")
    scale = dec.model_value.abs().max().item()
    _close(dec.attributed, dec.model_value, scale)
    _close(dec.heads.sum(-1) + dec.attn_bias, dec.attn_out, scale)


@pytest.mark.parametrize("family", ["gemma3", "olmo2", "gpt2"])
def test_heads_and_neurons_sum_to_their_sublayer_through_sandwich_norms(family):
    model = tiny_model(family)
    dec = decompose(model, PROMPTS, token_direction(model, "a", "b"), positions=[-1, -2, 0], neurons=True)
    scale = dec.attn_out.abs().max().item()
    _close(dec.heads.sum(-1) + dec.attn_bias, dec.attn_out, scale)
    _close(dec.neurons.sum(-1) + dec.mlp_bias, dec.mlp, scale)
    _close(dec.attributed, dec.model_value, dec.model_value.abs().max().item())


def test_token_set_and_free_vector_directions_match_their_logit_values():
    model = tiny_model("qwen2")
    pre_cap, _ = _hf_last(model, PROMPTS)
    ids = [single_token_id(model, c) for c in "abc"]
    result = dla(model, PROMPTS, ["a", "b", "c"], "z")
    expected = pre_cap[:, ids].mean(-1) - pre_cap[:, single_token_id(model, "z")]
    _close(result.attributed[:, 0], expected, expected.abs().max().item())
    vector = torch.randn(model.d_model, generator=torch.Generator().manual_seed(0))
    dec = decompose(model, PROMPTS, vector_direction(model, vector))
    _close(dec.attributed, dec.model_value, dec.model_value.abs().max().item())


def test_refusal_direction_is_mean_opener_logit_minus_benign_token():
    model = tiny_model("llama")
    pre_cap, _ = _hf_last(model, PROMPTS)
    refusal = refusal_token_ids(model)
    assert single_token_id(model, "I") in refusal and single_token_id(model, " ") in refusal  # char tokenizer
    benign = single_token_id(model, "S")
    direction = refusal_direction(model, benign)
    expected = pre_cap[:, refusal].mean(-1) - pre_cap[:, benign]
    _close(decompose(model, PROMPTS, direction).attributed[:, 0], expected, expected.abs().max().item())
    per_pair = refusal_direction(model, [benign, "T", "U"])
    assert per_pair.vector.shape == (3, model.d_model)


def test_fast_head_dla_equals_full_decomposition_and_handles_per_prompt_directions():
    model = tiny_model("gemma2")
    directions = [token_direction(model, c, "q") for c in "abc"]
    fast = head_dla(model, PROMPTS, stack_directions(directions), batch_size=2)  # [3, L, H]
    for i, direction in enumerate(directions):
        full = decompose(model, [PROMPTS[i]], direction).heads[0, 0]
        torch.testing.assert_close(fast[i], full, rtol=0, atol=1e-10)


def test_head_dla_matches_transformer_lens_logit_attrs_on_gpt2():
    """TransformerLens with fold_ln=True only: its apply_ln_to_stack divides by the cached
    scale and centres but does not multiply by ln_final.w, which it expects folded into W_U.
    No other processing: center_unembed would shift single-token logits, fold_value_biases
    would move b_V out of the heads, center_writing_weights is a no-op after centring."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

    model = tiny_model("gpt2")
    c = model.hf.config
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_ctx=c.n_positions, d_head=c.n_embd // c.n_head, n_heads=c.n_head,
        d_mlp=c.n_inner, d_vocab=c.vocab_size, act_fn="gelu_new", normalization_type="LN", eps=c.layer_norm_epsilon,
        positional_embedding_type="standard", original_architecture="GPT2LMHeadModel", device="cpu")
    tl = HookedTransformer(cfg)
    tl.load_and_process_state_dict(convert_gpt2_weights(model.hf, cfg), fold_ln=True, center_writing_weights=False,
                                   center_unembed=False, fold_value_biases=False, refactor_factored_attn_matrices=False)
    prompts = ["The cat sat on", "Hi there, bob!"]  # equal token lengths: no padding on either side
    batch = model.tokenize(prompts)
    assert batch.attention_mask.all()
    a, b = single_token_id(model, "a"), single_token_id(model, "b")
    with torch.inference_mode():
        _, cache = tl.run_with_cache(batch.input_ids)
        stack = cache.stack_head_results(layer=-1, pos_slice=-1)  # [L*H, batch, d_model]
        tl_attr = cache.logit_attrs(stack, tokens=torch.tensor([a, a]), incorrect_tokens=torch.tensor([b, b]),
                                    pos_slice=-1)  # [L*H, batch]
    ours = head_dla(model, prompts, token_direction(model, a, b))  # [batch, L, H]
    expected = tl_attr.T.reshape(ours.shape).double()
    assert (ours - expected).abs().max().item() <= REL * expected.abs().max().item()


def test_planted_head_ranks_first_for_its_token():
    model = tiny_model("qwen2")  # v_proj has a bias: zero W_V and z of the head is that bias everywhere
    layer, head, token = 1, 2, single_token_id(model, "Q")
    attn = model.hf.model.layers[layer].self_attn
    d, kv = model.d_head, head // (model.n_heads // model.n_kv_heads)
    with torch.no_grad():
        attn.v_proj.weight[kv * d:(kv + 1) * d] = 0.0
        const = attn.v_proj.bias[kv * d:(kv + 1) * d]
        w_u = model.hf.lm_head.weight[token]
        attn.o_proj.weight[:, head * d:(head + 1) * d] = 30.0 * torch.outer(w_u, const) / const.pow(2).sum()
    result = dla(model, PROMPTS, "Q")
    assert result.top_components(1)[0]["component"] == f"L{layer}H{head}"
    assert all(result.per_prompt["top_head"] == f"L{layer}H{head}")
    assert result.sum_check <= REL * result.model_value.abs().max().item()


def test_result_saves_loads_and_makes_figures(tmp_path):
    model = tiny_model("gpt2")
    result = dla(model, PROMPTS, "a", "b", neurons=True, heads=["1.2"], top_k=5)
    assert set(result.figures()) == {"head_heatmap", "layer_bars", "top_neurons"}
    summary = result.summary()
    assert len(summary["top"]) == 5 and "L1H2" in result.per_prompt.columns
    values = [abs(r["value"]) for r in summary["top"]]
    assert values == sorted(values, reverse=True)
    again = load_run(result.save(tmp_path / "run"))
    assert isinstance(again, DLAResult)
    torch.testing.assert_close(again.head_attr, result.head_attr)
    assert again.top_components(5) == result.top_components(5)


# ---- bad input ------------------------------------------------------------------------------

def test_multi_token_target_names_its_pieces():
    model = tiny_model("llama")
    with pytest.raises(ValueError, match=r"not a single token: it splits into \[' ', 'P', 'a'.*--target-id"):
        token_direction(model, " Paris")
    with pytest.raises(ValueError, match="out of range"):
        token_direction(model, 10_000)
    with pytest.raises(ValueError, match="share token ids"):
        token_direction(model, "a", ["a", "b"])


def test_out_of_range_heads_and_bad_options_are_refused():
    model = tiny_model("llama")
    with pytest.raises(ValueError, match="layer 7 out of range"):
        DLAConfig(target="a", heads=["7.0"]).check_model(model)
    with pytest.raises(ValueError, match="head 9 out of range"):
        DLAConfig(target="a", heads=["1.9"]).check_model(model)
    with pytest.raises(ValueError, match="no target"):
        DLAConfig().validate()
    with pytest.raises(ValueError, match="out of range for the shortest prompt"):
        dla(model, PROMPTS, "a", positions=[-40])
    with pytest.raises(ValueError, match="dense MLPs"):
        decompose(tiny_model("mixtral"), PROMPTS, token_direction(model, "a"), neurons=True)


def test_cli_matches_the_api_and_rejects_bad_input(tiny_llama_folder, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    assert main(["dla", "--model", str(tiny_llama_folder), "--prompts", str(prompts), "--target", "a", "--contrast", "e",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = dla(interp.load(str(tiny_llama_folder)), PROMPTS, "a", "e")  # the model exactly as the CLI loads it
    assert printed["top"] == api.summary()["top"] and printed["sum_check"] < 1e-6
    assert (tmp_path / "run" / "figures" / "head_heatmap.html").is_file()
    assert main(["dla", "--model", str(tiny_llama_folder), "--prompts", str(prompts), "--target-id", "13",
                 "--out", str(tmp_path / "run2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"][0][0] == 13
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    cases = [(["--prompts", str(empty), "--target", "a"], "no prompts"),
             (["--prompts", str(prompts), "--target", " Paris"], "splits into"),
             (["--prompts", str(prompts), "--target", "a", "--heads", "3.0"], "layer 3 out of range"),
             (["--prompts", str(prompts), "--target", "a", "--heads", "0.4"], "head 4 out of range")]
    for extra, message in cases:
        assert main(["dla", "--model", str(tiny_llama_folder), *extra]) == 2
        assert message in capsys.readouterr().err
